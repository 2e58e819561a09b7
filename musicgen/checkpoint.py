"""Loading checkpoints safely: weights-only, never unpickling code.

Two forms load: a Lightning `.ckpt` (torch zip, read with weights_only=True)
and an exported folder of `model.safetensors` plus `musicgen.json`. Both carry
the model config, the vocabulary and the encoding settings, so either is
enough to generate.
"""

from __future__ import annotations

import json
import pickle
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from musicgen import __version__
from musicgen.config import EncodingConfig, ModelConfig, from_dict, to_dict
from musicgen.errors import CheckpointError, MusicgenError
from musicgen.fsutil import atomic_write_bytes, atomic_write_json
from musicgen.models.registry import build_core
from musicgen.tokens.vocab import Vocabulary

META_KEY = "musicgen"


@dataclass
class LoadedModel:
    core: nn.Module
    model_cfg: ModelConfig
    vocab: Vocabulary
    meta: dict
    path: Path

    @property
    def encoding(self) -> EncodingConfig:
        return self.vocab.cfg


def versions() -> dict[str, str]:
    import lightning

    return {
        "musicgen": __version__,
        "torch": str(torch.__version__),
        "lightning": str(lightning.__version__),
        "python": platform.python_version(),
    }


def read_checkpoint_dict(path: str | Path) -> dict:
    """torch.load with weights_only=True; a pickled code payload is refused."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"refused to load {path}: it holds pickled objects other than weights "
            f"(possibly code), and musicgen only loads weights ({first[:120]})"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint: {msg[:200]}") from None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    path = Path(path)
    if path.is_dir() or path.suffix == ".safetensors":
        return _load_exported(path if path.is_dir() else path.parent, device)
    ckpt = read_checkpoint_dict(path)
    if not isinstance(ckpt, dict) or META_KEY not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a musicgen checkpoint (no model settings inside)")
    meta = ckpt[META_KEY]
    state = {k.removeprefix("core."): v for k, v in ckpt["state_dict"].items() if k.startswith("core.")}
    return _build(meta, state, path, device)


def _build(meta: dict, state: dict, path: Path, device) -> LoadedModel:
    try:
        vocab = Vocabulary.from_json(meta["vocab"])
        model_cfg = from_dict(ModelConfig, meta["model"])
    except (KeyError, TypeError, ValueError, MusicgenError) as exc:
        raise CheckpointError(f"{path}: model settings are damaged ({exc})") from None
    if model_cfg.vocab_size != len(vocab):
        raise CheckpointError(
            f"{path}: the vocabulary has {len(vocab)} tokens but the model was built for {model_cfg.vocab_size}"
        )
    core = build_core(model_cfg)
    try:
        core.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0][:160]})") from None
    core.to(device).eval()
    return LoadedModel(core, model_cfg, vocab, meta, path)


def export_model(ckpt_path: str | Path, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write `model.safetensors` + `musicgen.json`: loadable without torch.load at all."""
    from safetensors.torch import save

    ckpt = read_checkpoint_dict(ckpt_path)
    if META_KEY not in ckpt:
        raise CheckpointError(f"{ckpt_path} is not a musicgen checkpoint")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k.removeprefix("core."): v.contiguous() for k, v in ckpt["state_dict"].items() if k.startswith("core.")}
    # tied weights share storage; safetensors wants each tensor once
    seen: dict[int, str] = {}
    tensors, aliases = {}, {}
    for k, v in state.items():
        ptr = v.data_ptr()
        if ptr in seen:
            aliases[k] = seen[ptr]
        else:
            seen[ptr] = k
            tensors[k] = v.clone()
    atomic_write_bytes(out / "model.safetensors", save(tensors))
    meta = dict(ckpt[META_KEY])
    meta["aliases"] = aliases
    meta.update(extra or {})
    atomic_write_json(out / "musicgen.json", meta)
    return out


def _load_exported(folder: Path, device) -> LoadedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta_path, weights = folder / "musicgen.json", folder / "model.safetensors"
    if not meta_path.exists() or not weights.exists():
        raise CheckpointError(f"{folder} has no model.safetensors + musicgen.json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        state = load_file(weights)
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read model in {folder}: {str(exc)[:200]}") from None
    for alias, target in meta.get("aliases", {}).items():
        state[alias] = state[target]
    return _build(meta, state, folder, device)


def dataset_meta(vocab: Vocabulary, data_dir: str | Path) -> dict:
    return {
        "format": "musicgen-checkpoint",
        "version": 1,
        "vocab": vocab.to_json(),
        "encoding": to_dict(vocab.cfg),
        "data": str(data_dir),
        "versions": versions(),
    }
