"""The import layers: each part of musicgen imports only from the layers below it.

    errors text -> config | fsutil -> midi -> analysis | tokens -> data | models
    -> checkpoint pretrained -> train | generate | ngram -> evaluate -> listen | live -> cli -> __main__

Parts of one layer (split by |) do not import each other either, so measures stay
below everything that measures, and generation never reaches into listening. Every
import counts, those inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "musicgen"

LAYERS = (
    ("", "errors", "text"),  # "": musicgen itself (its __version__)
    ("config", "fsutil"),
    ("midi",),
    ("analysis", "tokens"),
    ("data", "models"),
    ("checkpoint", "pretrained"),
    ("train", "generate", "ngram"),
    ("evaluate",),
    ("listen", "live"),
    ("cli",),
    ("__main__",),
)
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """ "musicgen.generate.songs" -> "generate"; "musicgen" -> ""."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every musicgen import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("musicgen")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("musicgen"):
                # `from musicgen import x` imports the part x
                if module == "musicgen":
                    found += [(node.lineno, f"musicgen.{a.name}") for a in node.names]
                else:
                    found.append((node.lineno, module))
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        me = part_of(module_name(path))
        if me not in LAYER:
            bad.append(f"{path}: part {me!r} has no layer (add it to LAYERS)")
            continue
        for line, module in imports(path):
            other = part_of(module)
            if other == me or other not in LAYER:
                continue
            if LAYER[other] >= LAYER[me] and not (other == "" and module == "musicgen"):
                bad.append(
                    f"{path.relative_to(root.parent)}:{line}: {me or 'musicgen'} imports {module}"
                )
    return bad


def test_every_import_runs_down_the_layers():
    assert violations() == []


def test_an_upward_import_is_caught(tmp_path):
    """The check itself: a generation module that imports listening is reported."""
    fake = tmp_path / "musicgen"
    (fake / "generate").mkdir(parents=True)
    (fake / "listen").mkdir()
    (fake / "generate" / "songs.py").write_text(
        "def f():\n    from musicgen.listen.metrics import piece_metrics\n"
    )
    (fake / "listen" / "metrics.py").write_text("from musicgen.generate import songs\n")
    (fake / "analysis").mkdir()
    (fake / "analysis" / "bars.py").write_text("from ..tokens import space\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, fake
    try:
        found = violations(fake)
    finally:
        PACKAGE = saved
    assert found == [
        "musicgen/analysis/bars.py:1: analysis imports musicgen.tokens",
        "musicgen/generate/songs.py:2: generate imports musicgen.listen.metrics",
    ]


@pytest.mark.parametrize("module", ["musicgen.generate.songs", "musicgen"])
def test_part_of(module):
    assert part_of(module) in LAYER
