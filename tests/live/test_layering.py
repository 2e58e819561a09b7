"""live/'s transport (ports, clock, scheduler, listening, recording) imports from musicgen
no more than errors, midi, fsutil (and the version), and never torch, so the scheduler
cannot reach a model; only the performer and the session loop that cues it know one."""

import ast
import subprocess
import sys
from pathlib import Path

import musicgen.live

LIVE = Path(musicgen.live.__file__).parent
ALLOWED = ("musicgen.errors", "musicgen.midi", "musicgen.fsutil", "musicgen.live")
MODEL_SIDE = ("performer", "session", "accompanist")  # they drive the decoder: above generation
TRANSPORT = [p for p in sorted(LIVE.glob("*.py")) if p.stem not in MODEL_SIDE]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_live_imports_only_the_layers_below_it():
    for path in TRANSPORT:
        for name in _imports(path):
            if name == "musicgen" or not name.startswith("musicgen"):
                assert name.split(".")[0] not in ("torch", "lightning"), (path.name, name)
                continue
            assert name.startswith(ALLOWED), f"{path.name} imports {name}"
            assert name.removeprefix("musicgen.live.") not in MODEL_SIDE, (path.name, name)


def test_importing_live_loads_no_torch():
    mods = ", ".join(f"musicgen.live.{p.stem}" for p in TRANSPORT if p.stem != "__init__")
    code = f"import sys, {mods}; print('torch' in sys.modules)"
    root = LIVE.parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
