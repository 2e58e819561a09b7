"""Ingestion, the model, training and the hardware it runs on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from musicgen.config.fields import _check_types, opt


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
VOCABULARIES = ("corpus", "full")
FREEZE = ("none", "embedding", "lower")  # what a fine-tune keeps of its start (models/adapt.py)
# The peak learning rate, from scratch or fine-tuning a base, and the warm-ups of each. A
# fine-tune on a CPU gets a few dozen steps a minute, so a long warm-up spends its budget
# at a low rate:
# on 100 folk tunes for 5 min (benchmarks/finetune.py, 2026-12-06) the gru fine-tune
# reached 3.044 bits/note with 5e-4 and 100 steps' warm-up, 2.802 with 1e-3 and 10, 2.681
# with 2e-3 and 10 (from scratch: 2.812).
PEAK_LR = 2e-3
SCRATCH_WARMUP = 100
FINETUNE_WARMUP = 10


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
    lr: float | None = opt(
        None,
        f"Peak learning rate (AdamW) [default: {PEAK_LR:g}].",
    )
    weight_decay: float = opt(0.01, "AdamW weight decay on matrices.")
    warmup_steps: int | None = opt(
        None,
        f"Linear warm-up steps before cosine decay [default: {SCRATCH_WARMUP} from scratch, {FINETUNE_WARMUP} fine-tuning].",
        flag="warmup",
    )
    max_steps: int = opt(-1, "Optimizer steps (-1 = no limit).")
    epochs: int = opt(
        20,
        "Passes over the training tokens; 0 = until --max-time or --max-steps [default: 20, or no limit when --max-time is given].",
    )
    max_time: float = opt(
        0.0,
        "Wall-clock budget: minutes (5), or 90s, 1h30m, DD:HH:MM:SS (0 = none); the LR schedule ends with it.",
    )
    probe_minutes: float = opt(
        0.0, "Minutes of --max-time the sizing probe took before training began.", cli=False
    )
    grad_clip: float = opt(1.0, "Gradient norm clip (0 = off).")
    transpose: int = opt(
        5, "Each piece transposed by one random amount within +-N semitones per epoch."
    )
    steps_per_epoch: int = opt(0, "Batches per epoch (0 = one pass over the training music).")
    val_every: float = opt(1.0, "Validate every N batches (N > 1) or this fraction of an epoch.")
    patience: int = opt(5, "Early stopping: validations without improvement (0 = off).")
    log_every: int = opt(
        10, "Log the training loss and learning rate every N steps (OUT/logs, OUT/tb)."
    )
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
    init: str = opt(
        "base",
        "Where the weights start: base (the shipped base of the model's family, fine-tuned on your music), scratch, or a checkpoint of the same family.",
    )
    freeze: str = opt(
        "none",
        "Fine-tuning: the starting point's weights kept as they are: none, embedding (the token embedding), or lower (the embedding and the lower half of the layers).",
    )
    vocab: str = opt(
        "corpus",
        "The tokens a model from scratch learns: corpus (those the corpus uses) or full (every token of the encoding, as a base needs so that any corpus maps into it).",
    )
    controls: float = opt(
        0.8,
        "Share of training windows that carry control tokens (the key and each bar's density, polyphony, register and dynamics, each kept with even odds), so generation can be steered; 0 = none.",
    )

    def peak_lr(self) -> float:
        """The learning rate given, or the default."""
        if self.lr is not None:
            return self.lr
        return PEAK_LR

    def warmup(self, fine_tuning: bool) -> int:
        """The warm-up given, or the default for a run from scratch or a fine-tune."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return FINETUNE_WARMUP if fine_tuning else SCRATCH_WARMUP

    def __post_init__(self) -> None:
        if not 0.0 <= self.infill <= 1.0:
            raise ValueError(f"infill must be a share in [0, 1], got {self.infill}")
        if not 0.0 <= self.controls <= 1.0:
            raise ValueError(f"controls must be a share in [0, 1], got {self.controls}")
        if self.infill_bars < 1:
            raise ValueError("infill_bars must be >= 1")
        if self.log_every < 1:
            raise ValueError("log_every must be >= 1")
        if self.seq_len < 2 or self.batch_size < 1:
            raise ValueError("seq_len must be >= 2 and batch_size >= 1")
        if self.lr is not None and not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.freeze not in FREEZE:
            raise ValueError(f"freeze must be one of {', '.join(FREEZE)}, got {self.freeze!r}")
        if self.vocab not in VOCABULARIES:
            raise ValueError(f"vocab must be one of {', '.join(VOCABULARIES)}, got {self.vocab!r}")
        if self.transpose < 0 or self.transpose > 12:
            raise ValueError("transpose must be in 0..12")
        if (
            (self.warmup_steps or 0) < 0
            or self.weight_decay < 0
            or self.grad_clip < 0
            or self.max_time < 0
            or self.probe_minutes < 0
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

    @property
    def train_minutes(self) -> float:
        """The part of --max-time left for training (0: no budget). The budget covers the whole
        command, sizing's probe included; the config keeps it as asked, so that resuming with
        the same --max-time is no change."""
        if self.max_time <= 0:
            return 0.0
        return max(self.max_time - self.probe_minutes, 0.05)


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
