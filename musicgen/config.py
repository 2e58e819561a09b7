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


def opt(
    default: Any, help: str, flag: str | None = None, cli: bool = True, short: str | None = None
) -> Any:
    """A config field that is also a command-line option: `--<flag>` (default: the field's
    name with dashes), this default and this help. The CLI is built from these
    (musicgen/cli.py `config_options`), so a setting is one edit here."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli, "short": short})


TIME_MODES = ("auto", "beats", "seconds")


def _check_types(cfg: Any) -> None:
    """Fields hold what their annotations say (a config read from JSON may not)."""
    kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
    for f in dataclasses.fields(cfg):
        value, want = getattr(cfg, f.name), kinds.get(str(f.type))
        if want and (not isinstance(value, want) or (isinstance(value, bool) and bool not in want)):
            raise ValueError(f"{f.name} must be {f.type}, got {value!r}")


@dataclass(frozen=True)
class EncodingConfig:
    """How a score becomes tokens. See musicgen/tokens/encoding.py for the scheme.

    `time` picks the clock: "beats" counts steps of 1/steps_per_quarter of a quarter
    note (scores, sequenced music: the tempo map and bars are kept), "seconds"
    counts steps of 1/steps_per_second s (played music with one nominal tempo),
    "auto" lets ingestion decide per corpus (musicgen/tokens/timebase.py).
    Settings named *_quarters apply in beats mode, *_seconds in seconds mode.
    """

    time: str = opt(
        "auto",
        "Clock: beats (a grid of 1/48 quarter, tempo map and bars kept), seconds (10 ms steps, for played music), or auto (chosen per corpus).",
    )
    steps_per_quarter: int = (
        48  # 32nds are 6 steps, sixteenth triplets 8; any onset within 1/96 quarter
    )
    steps_per_second: int = 100  # 10 ms: any onset within 5 ms
    max_shift_quarters: float = (
        4.0  # one Shift token moves at most this far; longer gaps use several
    )
    max_shift_seconds: float = 1.0
    # Durations are exact up to the first limit, then lose one bit of resolution per doubling
    # (error at most 1/2 step x 2^k), up to the second, where longer notes are clipped (counted).
    exact_duration_quarters: float = 2.0
    max_duration_quarters: float = opt(
        8.0,
        "Longest note in beats mode, in quarters; longer ones are clipped (counted).",
        flag="max-duration",
    )
    exact_duration_seconds: float = 1.0
    max_duration_seconds: float = 8.0
    max_silence_quarters: float = 16.0  # longer silences are shortened (counted)
    max_silence_seconds: float = 8.0
    pitch_min: int = 21
    pitch_max: int = 108
    velocity_bins: int = opt(32, "Velocity levels kept; 0 drops velocity.")
    # A note within this many velocity units of its instrument's current level keeps it
    # without a new Vel token (played music changes velocity on nearly every note).
    velocity_tolerance: int = 4
    default_velocity: int = 80
    programs: str = opt(
        "note", "Keep each note's instrument (note), or map all to the piece's main one (main)."
    )
    drums: bool = opt(True, "Keep drum-channel notes (each drum key a token of its own).")
    tempo_min: float = 20.0
    tempo_max: float = 400.0
    tempo_step: float = (
        0.01  # neighbouring Tempo tokens differ by 1%, so every tempo is kept within 0.5%
    )
    time_signatures: bool = True

    def __post_init__(self) -> None:
        _check_types(self)
        if self.time not in TIME_MODES:
            raise ValueError(f"time must be one of {', '.join(TIME_MODES)}, got {self.time!r}")
        if self.steps_per_quarter < 1 or self.steps_per_second < 1:
            raise ValueError("steps_per_quarter and steps_per_second must be at least 1")
        for unit in ("quarters", "seconds"):
            shift, exact, longest = (
                getattr(self, f"{k}_{unit}")
                for k in ("max_shift", "exact_duration", "max_duration")
            )
            if self.steps(shift, unit) < 1 or self.steps(exact, unit) < 1 or longest < exact:
                raise ValueError(
                    f"need max_shift_{unit} and exact_duration_{unit} of at least one step, and max_duration_{unit} >= exact_duration_{unit}"
                )
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise ValueError("need 0 <= pitch_min <= pitch_max <= 127")
        if not 0 <= self.velocity_bins <= 127:
            raise ValueError("velocity_bins must be in 0..127")
        if self.velocity_tolerance < 0:
            raise ValueError("velocity_tolerance must be >= 0")
        if self.programs not in ("note", "main"):
            raise ValueError("programs must be 'note' or 'main'")
        if not (0 < self.tempo_min < self.tempo_max) or not 0 < self.tempo_step < 1:
            raise ValueError("need 0 < tempo_min < tempo_max and 0 < tempo_step < 1")

    def steps(self, amount: float, unit: str) -> int:
        """`amount` quarters or seconds in steps of that unit's clock."""
        per = self.steps_per_quarter if unit == "quarters" else self.steps_per_second
        return int(round(amount * per))

    @property
    def unit(self) -> str:
        """The unit steps count in: "quarters" (beats mode) or "seconds"."""
        if self.time == "auto":
            raise ValueError(
                "the time mode is not decided yet (time='auto'); see musicgen.tokens.timebase"
            )
        return "quarters" if self.time == "beats" else "seconds"

    @property
    def steps_per_unit(self) -> int:
        return self.steps_per_quarter if self.unit == "quarters" else self.steps_per_second

    def bar_steps(self, num: int = 4, den: int = 4) -> int:
        """Steps in one bar of num/den (beats; 4/4 before any time signature), or of the
        nominal 2-second bar of played music (seconds: one 4/4 bar at 120 qpm)."""
        if self.unit == "quarters":
            return num * 4 * self.steps_per_quarter // den
        return 2 * self.steps_per_second

    def limit(self, name: str) -> int:
        """A limit of the decided clock in steps: max_shift, exact_duration, max_duration, max_silence."""
        return self.steps(getattr(self, f"{name}_{self.unit}"), self.unit)

    def tempo_values(self) -> list[float]:
        """Tempo token values, spaced by `tempo_step` in log tempo (perceived tempo is ratio-like),
        anchored at 120 qpm, MIDI's default, so a file that never sets a tempo keeps it exactly."""
        ratio = math.log(1.0 + self.tempo_step)
        lo = math.ceil(math.log(self.tempo_min / 120.0) / ratio - 1e-9)
        hi = math.floor(math.log(self.tempo_max / 120.0) / ratio + 1e-9)
        return [round(120.0 * math.exp(k * ratio), 2) for k in range(lo, hi + 1)]

    def velocity_values(self) -> list[int]:
        """Level centres over 1..127."""
        n = self.velocity_bins
        if n == 0:
            return []
        width = 127 / n
        return sorted({int(round(1 + width * (i + 0.5))) for i in range(n)})

    def duration_values(self) -> list[int]:
        """Every duration a Dur token can stand for, in steps of the decided clock."""
        exact, longest = self.limit("exact_duration"), self.limit("max_duration")
        values = list(range(1, exact + 1))
        step, top = 2, exact
        while top < longest:
            top = min(2 * top, longest)
            values += list(range(values[-1] + step, top + 1, step))
            step *= 2
        if values[-1] != longest:
            values.append(longest)
        return values

    def resolved(self, time: str) -> EncodingConfig:
        return dataclasses.replace(self, time=time)


@dataclass(frozen=True)
class IngestConfig:
    val_fraction: float = opt(0.1, "Share of files held out for validation, decided by path.")
    workers: int = opt(0, "Worker processes; 0 uses every core.")
    file_timeout: float = opt(20.0, "Seconds one file may take before it is skipped.")
    chunk_size: int = opt(32, "Files handed to a worker at a time.", cli=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in [0, 1)")
        if not self.file_timeout > 0:
            raise ValueError("file_timeout must be positive")
        if self.workers < 0 or self.chunk_size < 1:
            raise ValueError("workers must be >= 0 and chunk_size >= 1")


MODEL_NAMES = ("gru", "gru-attn", "transformer")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one core. `name` picks the core from the registry."""

    name: str = opt("gru", "Which core to train.", flag="model")
    vocab_size: int = opt(0, "Set from the dataset's vocabulary.", cli=False)
    d_model: int = opt(256, "Hidden / model width.", flag="hidden")
    n_layers: int = opt(2, "GRU or transformer layers.", flag="layers")
    n_heads: int = opt(4, "Attention heads (transformer).", flag="heads")
    d_ff: int = opt(0, "Transformer feed-forward width; 0 means 4 x the width.", cli=False)
    dropout: float = opt(0.1, "Dropout rate.")
    tie_embeddings: bool = opt(True, "Share input embedding and output layer weights.")
    max_len: int = opt(
        512, "The context it learns (set from --seq-len); rotary positions are relative.", cli=False
    )
    attn_window: int = opt(0, "gru-attn memory kept when generating; 0 means max_len.", cli=False)

    def __post_init__(self) -> None:
        _check_types(self)
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.d_model < 1 or self.n_layers < 1 or self.n_heads < 1:
            raise ValueError("d_model, n_layers and n_heads must be at least 1")
        if self.name == "transformer" and self.d_model % self.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = opt(256, "Training window in tokens.")
    batch_size: int = opt(32, "Windows per batch (per device).")
    lr: float = opt(2e-3, "Peak learning rate (AdamW).")
    weight_decay: float = opt(0.01, "AdamW weight decay on matrices.")
    warmup_steps: int = opt(100, "Linear warm-up steps before cosine decay.", flag="warmup")
    max_steps: int = opt(-1, "Optimizer steps (-1 = no limit).")
    epochs: int = opt(
        20,
        "Passes over the training tokens; 0 = until --max-time or --max-steps [default: 20, or no limit when --max-time is given].",
    )
    max_time: float = opt(
        0.0,
        "Wall-clock budget: minutes (5), or 90s, 1h30m, DD:HH:MM:SS (0 = none); the LR schedule ends with it.",
    )
    grad_clip: float = opt(1.0, "Gradient norm clip (0 = off).")
    transpose: int = opt(
        5, "Each piece transposed by one random amount within +-N semitones per epoch."
    )
    steps_per_epoch: int = opt(0, "Batches per epoch (0 = one pass over the training music).")
    val_every: float = opt(1.0, "Validate every N batches (N > 1) or this fraction of an epoch.")
    patience: int = opt(5, "Early stopping: validations without improvement (0 = off).")
    seed: int = opt(0, "Random seed.")
    num_workers: int = opt(0, "DataLoader worker processes.")
    # Truncated back-propagation through time on whole pieces (musicgen/data/datamodule.py).
    # None: on for the recurrent cores, off for the transformer (see models/registry.py).
    carry_state: bool | None = opt(
        None,
        "Train on whole pieces, the state carried from window to window [default: on for gru and gru-attn, off for the transformer].",
    )

    infill: float = opt(
        0.0,
        "Share of training windows rearranged to teach infilling (before, after, then the middle); 0 = off. `musicgen infill` needs a model trained with it.",
    )
    infill_bars: int = opt(8, "Longest middle, in bars, of a window rearranged for infilling.")

    def __post_init__(self) -> None:
        if not 0.0 <= self.infill <= 1.0:
            raise ValueError(f"infill must be a share in [0, 1], got {self.infill}")
        if self.infill_bars < 1:
            raise ValueError("infill_bars must be >= 1")
        if self.seq_len < 2 or self.batch_size < 1:
            raise ValueError("seq_len must be >= 2 and batch_size >= 1")
        if not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.transpose < 0 or self.transpose > 12:
            raise ValueError("transpose must be in 0..12")
        if (
            self.warmup_steps < 0
            or self.weight_decay < 0
            or self.grad_clip < 0
            or self.max_time < 0
        ):
            raise ValueError("warmup, weight decay, gradient clip and max time must be >= 0")
        if (
            self.epochs < 0
            or self.patience < 0
            or self.steps_per_epoch < 0
            or self.seed < 0
            or self.num_workers < 0
        ):
            raise ValueError("epochs, patience, steps per epoch, seed and workers must be >= 0")
        if not self.val_every > 0:
            raise ValueError(
                f"val_every must be positive (a number of batches, or a fraction of an epoch), got {self.val_every}"
            )


@dataclass(frozen=True)
class HardwareConfig:
    """Passed straight to Lightning, so GPUs, several devices and nodes need no new code."""

    accelerator: str = opt("auto", "Lightning accelerator: cpu, gpu, mps, auto.")
    devices: str = opt("auto", "Lightning devices: a count, a list like 0,1, or auto.")
    num_nodes: int = opt(1, "Machines for multi-node DDP.")
    strategy: str = opt("auto", "Lightning strategy: auto, ddp, ddp_spawn, fsdp ...")
    precision: str = opt(
        "auto", "32-true, bf16-mixed, 16-mixed; auto = bf16-mixed on GPUs that have it."
    )

    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        import torch  # here, not at the top: the command line starts without it

        gpu = self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"

    def lightning_devices(self) -> Any:
        d = str(self.devices)
        return int(d) if d.isdigit() else d


LENGTH_UNITS = ("bars", "seconds", "notes", "tokens")


# The pull of form-aware sampling by default, chosen by benchmarks/form.py (README "Form").
FORM_BIAS = 8.0


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling and length settings of `musicgen generate`; saved in every song's sidecar."""

    num_samples: int = opt(1, "Songs to generate (decoded together as one batch).", cli=False)
    temperature: float = opt(1.0, "Softmax temperature; 0 is greedy.", short="-t")
    top_k: int = opt(0, "Sample from the k likeliest tokens (0 = off).")
    # 0.98, chosen by benchmarks/form.py: a tighter nucleus re-strikes chords (longer repeats
    # than the corpus's), none at all lets off-key notes through (README, Form)
    top_p: float = opt(
        0.98, "Nucleus sampling: the smallest set of tokens whose probability reaches p (1 = off)."
    )
    seed: int = opt(0, "Random seed; the same seed and settings give the same MIDI bytes.")
    unit: str = opt("bars", "One of LENGTH_UNITS; counts new music, not the primer.", cli=False)
    length: float = opt(16, "How much new music, in `unit`s.", cli=False)
    primer: str | None = opt(None, "MIDI file to continue.", cli=False)
    primer_bars: int | None = opt(None, "Use only the primer's first N bars.", cli=False)
    tempo: float | None = opt(
        None, "Play back at this tempo (quarter notes per minute).", cli=False
    )
    program: int | None = opt(
        None, "Play every note with this General MIDI program (0-127).", cli=False
    )
    instruments: tuple[int, ...] | None = opt(
        None, "The line-up (128 = drums); None: the model chooses.", cli=False
    )
    # Repetition-aware sampling (musicgen/repetition.py): logit bonus for the token that followed
    # the last `repeat_context` tokens, at the same place in the bar, earlier in the piece.
    repeat_bias: float = opt(
        0.0,
        "Repetition-aware sampling: a logit bonus for the token that followed the same few tokens, at the same place in the bar, earlier in the piece (0 = off).",
    )
    repeat_context: int = opt(8, "Tokens of context that must match for --repeat-bias.", cli=False)
    # Form-aware sampling (musicgen/recurrence.py): at each bar line a bar comes back, or not,
    # as the corpus's bars do; in one that does, a logit bonus for the token the bar it repeats
    # had next at the same place. None: FORM_BIAS for a model that learnt its corpus's form.
    form_bias: float | None = opt(
        None,
        f"Form-aware sampling: bars come back as the corpus's bars do; the logit bonus towards the bar repeated (default {FORM_BIAS:g} for a model that learnt its corpus's form, else off; 0 = off).",
    )
    use_cache: bool = opt(
        True, "Carry the model's state instead of recomputing the context.", cli=False
    )

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
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
        if not self.repeat_bias >= 0 or self.repeat_context < 1:
            raise ValueError("repeat_bias must be >= 0 and repeat_context at least 1")
        if self.form_bias is not None and not self.form_bias >= 0:
            raise ValueError("form_bias must be >= 0")
        if self.instruments is not None:
            object.__setattr__(
                self, "instruments", tuple(sorted(set(int(p) for p in self.instruments)))
            )
            if not self.instruments or not all(0 <= p <= 128 for p in self.instruments):
                raise ValueError("instruments must be General MIDI programs 0..127 or 128 (drums)")


@dataclass(frozen=True)
class InfillConfig:
    """The passage `musicgen infill` writes again; saved in every sidecar."""

    file: str
    unit: str = "bars"  # "bars": bars start..end, counted from 1; "seconds": [start, end)
    start: float = 1.0
    end: float = 1.0
    candidates: int = opt(
        8,
        "Middles drawn for each version, of which one is kept: drawn by how likely the model finds the music after the span once that middle has been played (1 = the first drawn).",
    )

    def __post_init__(self) -> None:
        if self.unit not in ("bars", "seconds"):
            raise ValueError("an infill span is in bars or seconds")
        if not 1 <= self.candidates <= 64:
            raise ValueError("candidates must be between 1 and 64")

    def args(self) -> list[str]:
        """The options of `musicgen infill` that name this task."""
        span = (
            ["--bars", f"{int(self.start)}-{int(self.end)}"]
            if self.unit == "bars"
            else ["--seconds", f"{self.start:g}-{self.end:g}"]
        )
        return [*span, "--candidates", str(self.candidates)]


@dataclass(frozen=True)
class AccompanyConfig:
    """The part `musicgen accompany` keeps; saved in every sidecar."""

    file: str
    keep: str = "top"  # "top", an instrument's place in the line-up, a program, or a name

    def args(self) -> list[str]:
        """The options of `musicgen accompany` that name this task."""
        return ["--keep", self.keep]


__all__ = [
    "AccompanyConfig",
    "InfillConfig",
    "EncodingConfig",
    "TIME_MODES",
    "IngestConfig",
    "ModelConfig",
    "TrainConfig",
    "FORM_BIAS",
    "GenerateConfig",
    "HardwareConfig",
    "LENGTH_UNITS",
    "MODEL_NAMES",
    "to_dict",
    "from_dict",
    "field",
]
