"""What Lightning calls back during a run: atomic checkpoint writes, the last step saved
at the end, and a save on Ctrl-C, so that --resume always has the whole state."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from musicgen.fsutil import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file, fsync, rename: never half a checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: torch.save(checkpoint, fh))


class SaveLastAtEnd(Callback):
    """last.ckpt holds the final step even when training stops between validations.

    ModelCheckpoint writes last.ckpt only after a validation, so a run whose
    --max-steps (or --max-time) ends between two validations would leave an older
    last.ckpt behind and --resume would silently redo the steps after it.
    """

    def __init__(self, path: Path, ckpt_cb: ModelCheckpoint):
        self.path, self.ckpt_cb = path, ckpt_cb

    def on_train_end(self, trainer, pl_module) -> None:
        # every process must take the same branch (saving is collective), so decide on
        # state they share rather than on whether the file is visible to this one
        saved = getattr(self.ckpt_cb, "_last_global_step_saved", -1)
        if trainer.global_step > 0 and saved != trainer.global_step:
            trainer.save_checkpoint(self.path, weights_only=False)  # full state: --resume needs it


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
