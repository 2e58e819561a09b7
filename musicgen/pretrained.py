"""Where the shipped pretrained models live, and which one is the default.

They are exported folders (model.safetensors + musicgen.json) under
`checkpoints/pretrained/<model>/`, trained on the bundled Bach corpus; see
checkpoints/README.md for the commands that reproduce them.
"""

from __future__ import annotations

import os
from pathlib import Path

from musicgen.errors import CheckpointError

# the best on the held-out chorales first (checkpoints/README.md): gru-attn 3.041 bits/note,
# gru 3.170, transformer 3.290
DEFAULT_ORDER = ("gru-attn", "gru", "transformer")


def pretrained_root() -> Path:
    env = os.environ.get("MUSICGEN_PRETRAINED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "checkpoints" / "pretrained"


def pretrained_models() -> dict[str, Path]:
    root = pretrained_root()
    return {
        name: root / name
        for name in DEFAULT_ORDER
        if (root / name / "model.safetensors").exists() and (root / name / "musicgen.json").exists()
    }


def default_checkpoint() -> Path:
    models = pretrained_models()
    if not models:
        raise CheckpointError(
            f"no checkpoint given and no pretrained model found in {pretrained_root()}; "
            "pass a checkpoint, e.g. checkpoints/gru/best.ckpt"
        )
    return next(iter(models.values()))
