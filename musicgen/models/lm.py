"""The one LightningModule: loss, optimiser, schedule and metrics for every core."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import SumMetric

from musicgen.config import ModelConfig, TrainConfig, to_dict
from musicgen.models.registry import build_core
from musicgen.tokens.space import IGNORE

LN2 = math.log(2.0)
MIN_LR_RATIO = 0.1


class MusicLM(L.LightningModule):
    """Next-token language model around a core chosen by `model_cfg.name`.

    `note_ids` are the Pitch and Drum tokens' ids: each note has exactly one,
    so counting them turns bits per token into bits per note.
    `meta` (vocabulary, encoding, versions) rides along into every checkpoint
    so a checkpoint alone is enough to generate.
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        note_ids: Sequence[int],
        meta: dict,
        control_ids: Sequence[int] = (),
    ):
        super().__init__()
        self.model_cfg, self.train_cfg = model_cfg, train_cfg
        self.note_ids = [int(i) for i in note_ids]
        self.register_buffer(
            "_note_ids", torch.tensor(self.note_ids, dtype=torch.long), persistent=False
        )
        # control tokens are given, never predicted: they are no target of the loss
        self.register_buffer(
            "_control_ids",
            torch.tensor([int(i) for i in control_ids], dtype=torch.long),
            persistent=False,
        )
        self.meta = meta
        self.core = build_core(model_cfg)
        # a fine-tune starts from weights that already know music: a short warm-up
        fine_tuning = (meta.get("init") or {}).get("kind") not in (None, "scratch")
        self.peak_lr = train_cfg.peak_lr()
        self.warmup_steps = train_cfg.warmup(fine_tuning)
        self.val_nats = SumMetric()
        self.val_tokens = SumMetric()
        self.val_notes = SumMetric()
        self.val_correct = SumMetric()
        self._t_start: float | None = None
        # Truncated back-propagation through time: the state the last training batch ended
        # in, detached, which the next batch (the same streams, one window on) starts from.
        self._train_state = None
        self._val_state = None

    def forward(self, tokens: torch.Tensor, state=None):
        return self.core(tokens, state)

    # --- steps -----------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._train_state = None  # new streams each epoch

    def training_step(self, batch, batch_idx):
        x, y, *fresh = batch  # (B, T), (B, T); on whole pieces also (B,): rows that start a piece
        carried = self._train_state if self.train_cfg.carry_state and fresh else None
        if carried is not None:
            carried = None if bool(fresh[0].all()) else self.core.restart_rows(carried, fresh[0])
        logits, state = self.core(x, carried)  # (B, T, V)
        if self.train_cfg.carry_state:
            self._train_state = detach(state)
        if len(self._control_ids):
            y = y.masked_fill(torch.isin(y, self._control_ids), IGNORE)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1), ignore_index=IGNORE
        )
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, first = batch  # one chunk of a group of pieces; `first` restarts the state
        logits, state = self.core(x, None if first else self._val_state)
        self._val_state = detach(state)
        if len(self._control_ids):
            y = y.masked_fill(torch.isin(y, self._control_ids), IGNORE)
        flat_y = y.reshape(-1)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            flat_y,
            ignore_index=IGNORE,
            reduction="sum",
        )
        valid = flat_y != IGNORE
        self.val_nats.update(nll)
        self.val_tokens.update(valid.sum())
        self.val_notes.update(torch.isin(flat_y, self._note_ids).sum())
        self.val_correct.update(
            ((logits.reshape(-1, logits.size(-1)).argmax(-1) == flat_y) & valid).sum()
        )

    def on_validation_epoch_end(self):
        nats, tokens = self.val_nats.compute(), self.val_tokens.compute().clamp(min=1)
        notes = self.val_notes.compute().clamp(min=1)
        self.log("val_loss", nats / tokens, prog_bar=False, sync_dist=False)
        self.log("val_bpt", nats / tokens / LN2)
        self.log("val_bpn", nats / notes / LN2, prog_bar=True)
        self.log("val_acc", self.val_correct.compute() / tokens)
        for m in (self.val_nats, self.val_tokens, self.val_notes, self.val_correct):
            m.reset()

    # --- optimisation ----------------------------------------------------------------
    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.core.named_parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 and "emb" not in name else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.train_cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.peak_lr, betas=(0.9, 0.98))

    def lr_factor(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 10% over the step or time budget."""
        cfg, warmup = self.train_cfg, self.warmup_steps
        if step < warmup:
            return (step + 1) / warmup
        progress = 0.0
        total = (
            self.trainer.estimated_stepping_batches if self._trainer is not None else float("inf")
        )
        if math.isfinite(total) and total > warmup:
            progress = (step - warmup) / (total - warmup)
        if cfg.max_time > 0 and self._trainer is not None:
            progress = max(progress, self._elapsed() / (cfg.train_minutes * 60.0))
        progress = min(max(progress, 0.0), 1.0)
        return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))

    def _elapsed(self) -> float:
        for cb in self.trainer.callbacks:
            if type(cb).__name__ == "Timer":
                return float(cb.time_elapsed("train"))
        if self._t_start is None:
            self._t_start = time.monotonic()
        return time.monotonic() - self._t_start

    def on_train_batch_start(self, batch, batch_idx):
        # Set here rather than with an LRScheduler: the factor may depend on wall time,
        # and a scheduler holding a closure does not survive a weights-only checkpoint.
        factor = self.lr_factor(self.global_step)
        for group in self.optimizers().param_groups:
            group["lr"] = self.peak_lr * factor

    # --- checkpoints -----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["musicgen"] = {
            **self.meta,
            "model": to_dict(self.model_cfg),
            "train": to_dict(self.train_cfg),
            "note_ids": self.note_ids,
            "val_bpn": _metric(self, "val_bpn"),
            "val_bpt": _metric(self, "val_bpt"),
            "global_step": int(self.global_step),
            "world_size": _world_size(
                self
            ),  # devices x nodes: the batch per step is batch_size x this
        }


def detach(state):
    """A core's state (tensors in tuples, dicts) cut from the graph that made it."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, dict):
        return {k: detach(v) for k, v in state.items()}
    if isinstance(state, tuple | list):
        return type(state)(detach(v) for v in state)
    return state


def _world_size(module: L.LightningModule) -> int:
    try:
        return int(module.trainer.world_size)
    except RuntimeError:  # not attached to a trainer
        return 1


def _metric(module: L.LightningModule, name: str) -> float:
    try:
        value = module.trainer.callback_metrics.get(name)
    except RuntimeError:  # not attached to a trainer
        return float("nan")
    return float(value) if value is not None else float("nan")
