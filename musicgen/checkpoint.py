"""Loading checkpoints safely: weights-only, never unpickling code.

Two forms load: a Lightning `.ckpt` (torch zip, read with weights_only=True)
and an exported folder of `model.safetensors` plus `musicgen.json`. Both carry
the model config, the vocabulary and the encoding settings, so either is
enough to generate.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from musicgen import __version__
from musicgen.config import EncodingConfig, ModelConfig, from_dict, to_dict
from musicgen.errors import CheckpointError, MusicgenError
from musicgen.fsutil import atomic_write_bytes, atomic_write_json
from musicgen.models.registry import build_core
from musicgen.tokens.vocab import VERSION as VOCAB_VERSION
from musicgen.tokens.vocab import Vocabulary

META_KEY = "musicgen"


@dataclass
class LoadedModel:
    core: nn.Module
    model_cfg: ModelConfig | None  # None for a core that is not a neural model (the n-gram)
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
    """torch.load with weights_only=True; a pickled code payload is refused.

    Every failure becomes a CheckpointError: torch raises a zoo of exception types
    for damaged files (KeyError for some garbage, OSError for a truncated zip ...).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint file (an exported model needs model.safetensors + musicgen.json)"
        )
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles it then refuses anyway
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        code = re.search(r"GLOBAL (\S+)", text)
        if code:
            raise CheckpointError(
                f"refused to load {path}: it holds pickled code ({code.group(1)}), not just weights; "
                "musicgen only loads weights, so nothing in it was run"
            ) from None
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable checkpoint ({_NOT_TORCH})") from None
        raise CheckpointError(
            f"refused to load {path}: it holds pickled objects other than weights "
            "(possibly pickled code); musicgen only loads weights"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other failure means a damaged or foreign file
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable checkpoint ({_NOT_TORCH})") from None
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is a damaged checkpoint: {msg[:200]}") from None


_NOT_TORCH = "damaged, truncated, or not a file written by torch.save"


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    path = Path(path)
    if path.is_dir() or path.suffix == ".safetensors":
        return _load_exported(path if path.is_dir() else path.parent, device)
    ckpt = read_musicgen_checkpoint(path)
    meta = ckpt[META_KEY]
    state = {
        k.removeprefix("core."): v for k, v in ckpt["state_dict"].items() if k.startswith("core.")
    }
    return _build(meta, state, path, device)


def read_musicgen_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by `musicgen train`; any other (foreign) checkpoint is refused."""
    ckpt = read_checkpoint_dict(path)
    if (
        not isinstance(ckpt, dict)
        or not isinstance(ckpt.get(META_KEY), dict)
        or not isinstance(ckpt.get("state_dict"), dict)
    ):
        raise CheckpointError(f"{path} is not a musicgen checkpoint (no model settings inside)")
    return ckpt


def _build(meta: dict, state: dict, path: Path, device) -> LoadedModel:
    version = meta.get("vocab", {}).get("version") if isinstance(meta.get("vocab"), dict) else None
    if isinstance(version, int) and 1 <= version < VOCAB_VERSION:  # a real earlier release
        raise CheckpointError(
            f"{path} was trained by an older musicgen (representation v{version}); "
            f"this version reads v{VOCAB_VERSION}: ingest the music again and retrain"
        )
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
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the model ({str(exc).splitlines()[0][:160]})"
        ) from None
    try:
        core.to(device).eval()
    except (RuntimeError, ValueError, TypeError) as exc:
        raise MusicgenError(
            f"cannot use device {str(device)!r}: {str(exc).splitlines()[0][:160]}"
        ) from None
    return LoadedModel(core, model_cfg, vocab, meta, path)


def export_model(
    ckpt_path: str | Path, out_dir: str | Path, extra: dict | None = None, float16: bool = False
) -> Path:
    """Write `model.safetensors` + `musicgen.json`: loadable without torch.load at all.

    `float16` stores the floating-point weights in half the bytes (the shipped models: the
    repository carries six); loading casts them back to the model's float32, so only the
    rounding of each weight to 11 significant bits remains."""
    from safetensors.torch import save

    ckpt = read_musicgen_checkpoint(ckpt_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {
        k.removeprefix("core."): v.contiguous()
        for k, v in ckpt["state_dict"].items()
        if k.startswith("core.")
    }
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
    full = save(tensors)
    meta = dict(ckpt[META_KEY])
    meta["data"] = _portable(meta.get("data"))  # an exported model travels: no absolute local paths
    if isinstance(meta.get("init"), dict) and meta["init"].get("path"):
        meta["init"] = {**meta["init"], "path": _portable(meta["init"]["path"])}
    meta["aliases"] = aliases
    meta["stored_as"] = "float16" if float16 else "float32"
    if float16:
        half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
        for k, v in half.items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise CheckpointError(f"{ckpt_path}: {k} has weights beyond float16's range")
        # the file the float32 export would have been: a run that began from it (a base
        # stored in float32 before) may still resume from this one (train/resume.py)
        meta["float32_sha256"] = hashlib.sha256(full).hexdigest()
        full = save(half)
    atomic_write_bytes(out / "model.safetensors", full)
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read model in {folder}: {str(exc)[:200]}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("aliases", {}), dict):
        raise CheckpointError(f"{meta_path} is not a musicgen model description")
    for alias, target in meta.get("aliases", {}).items():
        if target not in state:
            raise CheckpointError(f"{weights} has no tensor {target!r} for {alias!r}")
        state[alias] = state[target]
    return _build(meta, state, folder, device)


def dataset_meta(vocab: Vocabulary, data_dir: str | Path) -> dict:
    return {
        "format": "musicgen-checkpoint",
        "version": 1,
        "vocab": vocab.to_json(),
        "encoding": to_dict(vocab.cfg),
        "data": str(Path(data_dir).resolve()),  # evaluate finds it from any working folder
        "versions": versions(),
    }


def _portable(data: str | None) -> str | None:
    """A path (a dataset, a base) inside the current folder becomes relative to it."""
    if not data:
        return data
    try:
        return Path(data).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return data
