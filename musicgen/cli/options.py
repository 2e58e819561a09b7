"""Options shared by commands, built from the config dataclasses (config.opt) so no
setting is restated here; time budgets; YAML defaults."""

from __future__ import annotations

from pathlib import Path

import click

from musicgen.config import (
    CONTROL_OPTIONS,
    LENGTH_UNITS,
    SAMPLING,
    TIME_MODES,
    EncodingConfig,
    GenerateConfig,
)
from musicgen.config.controls import BAR_CONTROLS, key_name, parse_key, parse_levels
from musicgen.config.fields import flag_of
from musicgen.errors import MusicgenError


class Duration(click.ParamType):
    """A time budget in minutes, written as `5`, `90s`, `1h30m` or DD:HH:MM:SS."""

    name = "duration"

    def convert(self, value, param, ctx):
        from musicgen.cli.durations import parse_minutes

        try:
            return parse_minutes(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


NUMBERS = {"int": int, "float": float, "int | None": int, "float | None": float}


class Parsed(click.ParamType):
    """An option whose text a config field reads itself (`opt(parse=...)`); its errors are
    the field's own one-line MusicgenError."""

    def __init__(self, parse, name: str):
        self.parse, self.name = parse, name

    def convert(self, value, param, ctx):
        return value if not isinstance(value, str) else self.parse(value)


def config_options(
    cls,
    types: dict | None = None,
    defaults: dict | None = None,
    only: tuple[str, ...] | None = None,
):
    """Options for the fields of a config dataclass made with `config.opt`: the flag, the
    default and the help come from the field, so the CLI never restates a setting."""
    import dataclasses

    types, defaults = types or {}, defaults or {}

    def decorate(f):
        for fld in reversed(dataclasses.fields(cls)):
            meta = fld.metadata
            if not meta.get("cli") or (only is not None and fld.name not in only):
                continue
            if callable(meta.get("flag")):  # spelt by another field's value: the caller's
                continue
            flag = flag_of(fld)
            decls = [flag, *([meta["short"]] if meta.get("short") else [])]
            default = defaults.get(fld.name, fld.default)
            if isinstance(fld.default, bool) or fld.type in ("bool", "bool | None"):
                f = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    fld.name,
                    default=default,
                    show_default=default is not None,
                    help=meta["help"],
                )(f)
            else:
                kind = types.get(fld.name)
                if kind is None and meta.get("parse"):
                    kind = Parsed(meta["parse"], fld.name)
                kind = kind or NUMBERS.get(str(fld.type), str)
                f = click.option(
                    *decls,
                    fld.name,
                    type=kind,
                    default=default,
                    show_default=default is not None,
                    help=meta["help"],
                )(f)
        return f

    return decorate


def build_config(cls, values: dict, **fixed):
    """A config from the command's values (its own fields only); a bad value is one line."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in names}, **fixed)
    except ValueError as exc:
        raise MusicgenError(str(exc)) from None


LENGTH_HELP = {
    "bars": "Length of new music in bars [default: 16].",
    "seconds": "Length of new music in seconds.",
    "notes": "Length of new music in notes.",
    "tokens": "Length of new music in tokens.",
}


def length_options(f):
    """--bars, --seconds, --notes, --tokens: one option per unit of `GenerateConfig.length`."""
    for unit in reversed(LENGTH_UNITS):
        kind = (
            click.IntRange(1) if unit in ("notes", "tokens") else click.FloatRange(0, min_open=True)
        )
        f = click.option(f"--{unit}", type=kind, help=LENGTH_HELP[unit])(f)
    return f


def length_of(values: dict) -> dict:
    """The unit and length of the one length option given (pops them from `values`)."""
    given = {u: values.pop(u) for u in LENGTH_UNITS if values.get(u) is not None}
    for u in LENGTH_UNITS:
        values.pop(u, None)
    if len(given) > 1:
        raise MusicgenError("give one length: --bars, --seconds, --notes or --tokens")
    unit, length = next(iter(given.items())) if given else ("bars", 16)
    return {"unit": unit, "length": float(length)}


def sampling_options(f):
    """The sampling settings every command that generates takes (generate, compare ...)."""
    return config_options(GenerateConfig, only=SAMPLING)(f)


def plan_option(f):
    """--plan FILE: the controls bar by bar, as YAML (`plan_of`)."""
    return click.option(
        "--plan",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="YAML plan of the controls: 'key: D minor' and 'bars: {1: {density: 1}, 9: {density: 5, dynamics: 4}}' (bars from 1; a level holds until changed).",
    )(f)


def control_options(f):
    """--density, --polyphony, --register, --dynamics, --key, --key-pull, --guidance and --plan."""
    return plan_option(config_options(GenerateConfig, only=CONTROL_OPTIONS)(f))


def plan_of(values: dict) -> dict:
    """`values` with the plan file (popped from them) read into the control settings; a
    control given both ways, or a plan that is not one, is a one-line error."""
    path = values.pop("plan", None)
    if path is None:
        return values
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MusicgenError(f"--plan {path}: cannot read it ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not set(data) <= {"key", "bars"}:
        raise MusicgenError(f"--plan {path}: give 'key' and 'bars' (bar number: levels)")
    bars = data.get("bars") or {}
    if not isinstance(bars, dict) or not all(
        isinstance(b, int) and b >= 1 and isinstance(v, dict) for b, v in bars.items()
    ):
        raise MusicgenError(f"--plan {path}: 'bars' maps bar numbers from 1 to levels")
    out = dict(values)
    last = max(bars, default=0)
    for name in BAR_CONTROLS:
        changes = {b: v[name] for b, v in bars.items() if name in v}
        if not changes:
            continue
        if values.get(name) is not None:
            raise MusicgenError(f"--{name} is given twice: on the command line and in --plan")
        level, per_bar = changes.get(min(changes)), []
        for bar in range(1, last + 1):
            level = changes.get(bar, level)
            per_bar.append(str(level))
        out[name] = parse_levels(",".join(per_bar), name)
    unknown = {k for v in bars.values() for k in v} - set(BAR_CONTROLS)
    if unknown:
        raise MusicgenError(f"--plan {path}: no control called {sorted(unknown)[0]!r}")
    if "key" in data:
        if values.get("key") is not None:
            raise MusicgenError("--key is given twice: on the command line and in --plan")
        out["key"] = key_name(parse_key(str(data["key"])))
    return out


def encoding_options(f):
    """Options shared by every command that encodes music (ingest, tokenize)."""
    choices = {"time": click.Choice(TIME_MODES), "programs": click.Choice(["note", "main"])}
    return config_options(EncodingConfig, types=choices)(f)


def build_encoding(kw: dict) -> EncodingConfig:
    return build_config(EncodingConfig, kw)


def load_yaml_defaults(ctx: click.Context, param: click.Parameter, value):
    """--config FILE: YAML whose keys match the long option names set the defaults."""
    if value is None:
        return value
    import yaml

    try:
        data = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read {value}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{value} must hold a mapping of option names to values")
    # A key is a long option name (`hidden`, `max-steps`, `max_steps`); the parameter
    # behind it may be called differently (--hidden sets d_model, --data sets data_dir).
    names: dict[str, str] = {}
    for p in ctx.command.params:
        if p.name == "config" or not isinstance(p, click.Option):
            continue
        names[p.name] = p.name
        for opt in p.opts:
            if opt.startswith("--"):
                names[opt[2:].replace("-", "_")] = p.name
    defaults = {}
    for key, v in data.items():
        name = names.get(str(key).replace("-", "_"))
        if name is None:
            raise click.BadParameter(f"{value}: unknown option {key!r}")
        defaults[name] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value
