"""How a config field is declared (`opt`: its default, help and command-line spelling),
read from JSON, checked, and written back as command-line arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import field
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from JSON, ignoring unknown keys so old files still load."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def opt(
    default: Any,
    help: str,
    flag: str | None = None,
    cli: bool = True,
    short: str | None = None,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] | None = None,
) -> Any:
    """A config field that is also a command-line option: `--<flag>` (default: the field's
    name with dashes), this default and this help. The CLI is built from these
    (musicgen/cli/options.py `config_options`) and a config is written back as the
    arguments that make it again (`command_args`), so a setting is one edit here.
    `parse` reads the option's text into the value; `show` writes the value as text."""
    meta = {"help": help, "flag": flag, "cli": cli, "short": short, "parse": parse, "show": show}
    return field(default=default, metadata=meta)


def flag_of(fld: dataclasses.Field, cfg: Any = None) -> str:
    """`--name`; a field whose flag depends on another's value (the length's unit) gives
    it as a function of the config."""
    flag = fld.metadata.get("flag") or fld.name
    if callable(flag):
        flag = flag(cfg)
    return "--" + flag.replace("_", "-")


def command_args(cfg: Any, only: Iterable[str] | None = None) -> list[str]:
    """The command-line arguments that give `cfg`'s values of its option fields (those of
    `only`, if given), in field order: a flag turned away from its default, and every
    other value that is set."""
    wanted = None if only is None else set(only)
    out: list[str] = []
    for fld in dataclasses.fields(cfg):
        meta = fld.metadata
        if not meta.get("cli") or (wanted is not None and fld.name not in wanted):
            continue
        value, flag = getattr(cfg, fld.name), flag_of(fld, cfg)
        if isinstance(value, bool):
            if value != fld.default:
                out.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            show = meta.get("show") or (lambda v: f"{v:g}" if isinstance(v, float) else str(v))
            out += [flag, show(value)]
    return out


def _check_types(cfg: Any) -> None:
    """Fields hold what their annotations say (a config read from JSON may not)."""
    kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
    for f in dataclasses.fields(cfg):
        value, want = getattr(cfg, f.name), kinds.get(str(f.type))
        if want and (not isinstance(value, want) or (isinstance(value, bool) and bool not in want)):
            raise ValueError(f"{f.name} must be {f.type}, got {value!r}")
