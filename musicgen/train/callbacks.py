"""What Lightning calls back during a run: atomic checkpoint writes, last.ckpt after every
validation and at the end, and a save on Ctrl-C, so that --resume always has the whole,
latest state."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint

from musicgen.fsutil import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file, fsync, rename: never half a checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: torch.save(checkpoint, fh))


class SaveLast(Checkpoint):
    """last.ckpt, the whole state --resume continues from: written after every validation
    and after the run's last batch.

    Lightning's ModelCheckpoint(save_last=True) writes last.ckpt only at a validation that
    also wrote best.ckpt, so once the validation loss stopped improving a killed run would
    resume from that old step; and at the end of a run it writes last.ckpt after the fit
    loop has counted the unfinished epoch as done, so a run resumed from it (--resume
    --max-steps N with a larger N) would skip the rest of that epoch. Here the final save
    comes after the last batch, while the epoch is still open. A `Checkpoint` subclass, so
    Lightning runs it after the Timer (which decides on the same hook whether --max-time is
    up) and after ModelCheckpoint (whose best score it saves).
    """

    def __init__(self, path: Path):
        self.path = path
        self.saved_at = -1

    def on_validation_end(self, trainer, pl_module) -> None:
        # again even if the last batch just saved: the validation changed the best score
        if not trainer.sanity_checking:
            self._save(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.should_stop or 0 <= trainer.max_steps <= trainer.global_step:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # a stop decided at an epoch's end (the last epoch, early stopping): saved already,
        # unless no validation came after the last batch
        if self.saved_at != trainer.global_step:
            self._save(trainer)

    def _save(self, trainer) -> None:
        # every process takes the same branch (saving is collective): it depends on state
        # they share, not on whether the file is visible to this one
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path, weights_only=False)  # full state: --resume needs it
            self.saved_at = trainer.global_step


class SaveOnInterrupt(Callback):
    """Ctrl-C: save last.ckpt before Lightning exits, so --resume can continue."""

    def __init__(self, path: Path):
        self.path = path
        self.saved = False

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.global_step > 0:
            trainer.save_checkpoint(self.path, weights_only=False)  # full state: --resume needs it
            self.saved = True
            print(f"\ninterrupted: saved {self.path}; continue with --resume", flush=True)


class KeepTheStart(Callback):
    """A fine-tune is never worse than where it started: the starting weights are validated
    before the first step (Lightning's sanity check, run on every validation piece) and
    saved as best.ckpt with their score, so a later validation replaces them only by
    beating them. On a few pieces unlike the base's music the first steps can lose more
    than the rest of the budget wins back (10 pop songs: the transformer's fine-tune read
    the held-out songs at 17.0 bits/note from its first validation on, its base at 14.6).
    """

    def __init__(self, ckpt_cb: ModelCheckpoint):
        self.ckpt_cb = ckpt_cb
        self.score: float | None = None  # the monitored loss of the starting weights
        self.bpn = float("nan")  # and their bits/note, for the run's report

    def state_dict(self) -> dict:  # in last.ckpt: a resumed run reports where it started
        return {"score": self.score, "bpn": self.bpn}

    def load_state_dict(self, state_dict: dict) -> None:
        self.score, self.bpn = state_dict["score"], state_dict["bpn"]

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking or self.score is not None:
            return
        score = trainer.callback_metrics.get(self.ckpt_cb.monitor)
        if score is None:
            return
        bpn = trainer.callback_metrics.get("val_bpn")
        self.bpn = float(bpn) if bpn is not None else float("nan")
        cb = self.ckpt_cb
        path = cb.format_checkpoint_name({}) if cb.dirpath else None
        if path is None:
            return
        trainer.save_checkpoint(path, weights_only=False)  # collective: every process
        score = score.detach().clone()
        # the state ModelCheckpoint keeps of its best file (and saves in last.ckpt): later
        # validations compare against it as against any best it wrote itself
        cb.best_k_models = {path: score}
        cb.kth_best_model_path = cb.best_model_path = path
        cb.kth_value = cb.best_model_score = score
        self.score = float(score)
