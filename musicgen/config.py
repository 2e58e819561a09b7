"""One dataclass per concern. Each is saved as JSON inside the outputs it shapes
(vocabulary, checkpoint, sidecar) so a file rebuilds its own settings."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from JSON, ignoring unknown keys so old files still load."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class EncodingConfig:
    """How a score becomes events. See musicgen/tokens/encoding.py for the scheme."""

    steps_per_quarter: int = 12  # 12 holds sixteenths (3 steps) and eighth triplets (4 steps)
    max_shift_steps: int = 48  # one Shift token moves at most this far; longer gaps use several
    max_duration_steps: int = 96  # longer notes are clipped (counted per file)
    max_silence_quarters: float = 16.0  # longer silences are shortened (counted per file)
    pitch_min: int = 21
    pitch_max: int = 108
    velocity_bins: int = 8  # 0 switches velocity off (decoded notes get default_velocity)
    default_velocity: int = 80
    programs: str = "note"  # "note": each note keeps its program; "main": the piece's main one
    include_drums: bool = False
    tempo_bins: int = 24
    tempo_min: float = 30.0
    tempo_max: float = 240.0
    time_signatures: bool = True

    def __post_init__(self) -> None:
        if self.steps_per_quarter < 1:
            raise ValueError("steps_per_quarter must be at least 1")
        if self.max_shift_steps < 1 or self.max_duration_steps < 1:
            raise ValueError("max_shift_steps and max_duration_steps must be at least 1")
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise ValueError("need 0 <= pitch_min <= pitch_max <= 127")
        if not 0 <= self.velocity_bins <= 127:
            raise ValueError("velocity_bins must be in 0..127")
        if self.programs not in ("note", "main"):
            raise ValueError("programs must be 'note' or 'main'")
        if not (0 < self.tempo_min < self.tempo_max) or self.tempo_bins < 1:
            raise ValueError("need 0 < tempo_min < tempo_max and tempo_bins >= 1")

    @property
    def max_silence_steps(self) -> int:
        return int(round(self.max_silence_quarters * self.steps_per_quarter))

    def tempo_values(self) -> list[float]:
        """Bin centres, spaced evenly in log tempo (perceived tempo is ratio-like)."""
        if self.tempo_bins == 1:
            return [round(math.sqrt(self.tempo_min * self.tempo_max), 2)]
        lo, hi = math.log(self.tempo_min), math.log(self.tempo_max)
        step = (hi - lo) / (self.tempo_bins - 1)
        return [round(math.exp(lo + i * step), 2) for i in range(self.tempo_bins)]

    def velocity_values(self) -> list[int]:
        """Bin centres over 1..127."""
        n = self.velocity_bins
        if n == 0:
            return []
        width = 127 / n
        return [int(round(1 + width * (i + 0.5))) for i in range(n)]


@dataclass(frozen=True)
class IngestConfig:
    val_fraction: float = 0.1
    workers: int = 0  # 0 = all cores
    file_timeout: float = 20.0  # seconds per file before its worker is killed
    chunk_size: int = 32

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in [0, 1)")
        if self.file_timeout <= 0:
            raise ValueError("file_timeout must be positive")


MODEL_NAMES = ("gru", "gru-attn", "transformer")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one core. `name` picks the core from the registry."""

    name: str = "gru"
    vocab_size: int = 0
    d_model: int = 256
    n_layers: int = 2
    n_heads: int = 4  # transformer only
    d_ff: int = 0  # transformer feed-forward width; 0 means 4 * d_model
    dropout: float = 0.1
    tie_embeddings: bool = True
    max_len: int = 512  # training context; the transformer's rotary positions are relative
    attn_window: int = 0  # gru-attn memory kept when generating; 0 means max_len

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.d_model < 1 or self.n_layers < 1:
            raise ValueError("d_model and n_layers must be at least 1")
        if self.name == "transformer" and self.d_model % self.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 256
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_steps: int = -1  # -1: set by epochs/max_time
    epochs: int = 20
    max_time: float = 0.0  # wall-clock budget in minutes; 0 = none
    grad_clip: float = 1.0
    transpose: int = 5  # random shift of all pitches within +-transpose semitones
    steps_per_epoch: int = 0  # 0: one pass over the training tokens
    val_every: float = 1.0
    patience: int = 5
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.seq_len < 2 or self.batch_size < 1:
            raise ValueError("seq_len must be >= 2 and batch_size >= 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if self.transpose < 0:
            raise ValueError("transpose must be >= 0")


LENGTH_UNITS = ("bars", "seconds", "notes", "tokens")


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling and length settings of `musicgen generate`; saved in every song's sidecar."""

    num_samples: int = 1
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 0.95  # 1 = off
    seed: int = 0
    unit: str = "bars"  # one of LENGTH_UNITS; counts new music, not the primer
    length: float = 16
    primer: str | None = None
    primer_bars: int | None = None
    tempo: float | None = None
    program: int | None = None
    use_cache: bool = True

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if not self.top_k >= 0:
            raise ValueError(f"top_k must be >= 0 (0 means off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1] (1 means off), got {self.top_p}")
        if self.unit not in LENGTH_UNITS:
            raise ValueError(f"length unit must be one of {', '.join(LENGTH_UNITS)}")
        if not self.length > 0:
            raise ValueError("length must be positive")
        if self.num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        if self.tempo is not None and not 1 <= self.tempo <= 1000:
            raise ValueError("tempo must be between 1 and 1000 quarter notes per minute")
        if self.program is not None and not 0 <= self.program <= 127:
            raise ValueError("program must be a General MIDI program 0..127")
        if self.primer_bars is not None and self.primer_bars < 1:
            raise ValueError("primer_bars must be at least 1")


__all__ = [
    "EncodingConfig",
    "IngestConfig",
    "ModelConfig",
    "TrainConfig",
    "GenerateConfig",
    "LENGTH_UNITS",
    "MODEL_NAMES",
    "to_dict",
    "from_dict",
    "field",
]
