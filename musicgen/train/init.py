"""Where a run's weights start (`--init`), decided here and nowhere else.

    base     the shipped base of the model's family (checkpoints/base/<family>),
             fine-tuned on the user's music: the default
    scratch  fresh weights, sized for the corpus and the budget
    CKPT     any musicgen checkpoint or exported model of the same family

A fine-tune keeps its starting point's architecture and vocabulary (every token of the
encoding, so any corpus maps into it: data/remap.py); only its context, dropout and the
training settings are the run's own. As nanoGPT's `init_from`, one switch, one code path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from musicgen.checkpoint import LoadedModel, load_model
from musicgen.errors import MusicgenError
from musicgen.models.adapt import freeze

# A base records the version of the recipe that made it; a fine-tune refuses another. It
# moves when the token space or what a base is trained on changes meaning.
BASE_VERSION = 1
INITS = ("base", "scratch")  # and any path


def base_root() -> Path:
    env = os.environ.get("MUSICGEN_BASES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "checkpoints" / "base"


def base_path(family: str) -> Path | None:
    folder = base_root() / family
    ok = (folder / "model.safetensors").exists() and (folder / "musicgen.json").exists()
    return folder if ok else None


@dataclass
class Start:
    """A run's starting weights: None from scratch."""

    kind: str  # "scratch", "base" or "checkpoint"
    model: LoadedModel | None = None
    note: str = ""  # what the run says about it

    def to_dict(self) -> dict:
        """What every checkpoint of the run records of where it started."""
        if self.model is None:
            return {"kind": self.kind}
        path = self.model.path
        weights = path / "model.safetensors" if path.is_dir() else path
        return {
            "kind": self.kind,
            "path": str(path),
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "float32_sha256": self.model.meta.get("float32_sha256"),  # export --float16's
            "base_version": (self.model.meta.get("base") or {}).get("version"),
        }


def resolve_init(init: str, family: str) -> Start:
    """The starting point `init` names for a model of `family`; one-line errors for a
    checkpoint of another family or a base of another version."""
    if init == "scratch":
        return Start("scratch", note="training from scratch (--init scratch)")
    if init == "base":
        path = base_path(family)
        if path is None:
            return Start(
                "scratch", note=f"no base for {family} in {base_root()}: training from scratch"
            )
        kind = "base"
    else:
        path, kind = Path(init), "checkpoint"
        if not path.exists():
            raise MusicgenError(
                f"--init {init}: no checkpoint there (give base, scratch or a path)"
            )
    model = load_model(path)
    if model.model_cfg is None or model.model_cfg.name != family:
        name = model.model_cfg.name if model.model_cfg else "non-neural"
        raise MusicgenError(f"--init {path} holds a {name} model, not {family}")
    base = model.meta.get("base")
    if kind == "base" and (not isinstance(base, dict) or base.get("version") != BASE_VERSION):
        got = base.get("version") if isinstance(base, dict) else None
        raise MusicgenError(
            f"{path} is a base of version {got}; this musicgen fine-tunes bases of version "
            f"{BASE_VERSION} (rebuild them with scripts/train_base.sh)"
        )
    params = sum(p.numel() for p in model.core.parameters())
    return Start(
        kind,
        model,
        f"fine-tuning from {path} ({model.model_cfg.d_model} wide, "
        f"{model.model_cfg.n_layers} layers, {params / 1e6:.2f} M parameters)",
    )


def initial_weights(core, start: Start, freeze_what: str = "none") -> list[str]:
    """`core` (just built) takes its starting weights: the starting point's, or its own
    fresh ones from scratch; a fine-tune keeps `freeze_what` of them as they are
    (models/adapt.py). The names frozen."""
    if start.model is None:
        return []
    core.load_state_dict(start.model.core.state_dict())
    return freeze(core, start.model.model_cfg.n_layers, freeze_what)
