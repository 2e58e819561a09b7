"""What Lightning calls back during a run: atomic checkpoint writes, last.ckpt after every
validation and at the end, and a save on Ctrl-C, so that --resume always has the whole,
latest state."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, Checkpoint

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


class ScoreTheStart(Callback):
    """A fine-tune's starting weights, scored on every validation piece before the first
    step (Lightning's sanity check), so the run can say what training on the corpus
    gained, or that it gained nothing there. best.ckpt stays the best trained weights even
    then: on 10 pop songs the gru-attn's base read the held-out songs better than its
    5-minute fine-tune (10.779 against 11.354 bits/note), and the base's songs were
    further from them (7 overlap areas of 13 reached 0.7, the fine-tune's 9; docs/results.md).
    """

    def __init__(self):
        self.bpn: float | None = None  # the starting weights' validation bits/note

    def state_dict(self) -> dict:  # in last.ckpt: a resumed run reports where it started
        return {"bpn": self.bpn}

    def load_state_dict(self, state_dict: dict) -> None:
        self.bpn = state_dict.get("bpn")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking and self.bpn is None:
            bpn = trainer.callback_metrics.get("val_bpn")
            if bpn is not None:
                self.bpn = float(bpn)
