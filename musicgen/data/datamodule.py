"""Training windows and validation chunks for Lightning.

Training draws random windows of `seq_len + 1` tokens from the training range
of the memory-mapped array (windows may span two pieces; BOS/EOS mark the
seam), each transposed by a random number of semitones that keeps every pitch
in range. Validation covers every token of every held-out piece exactly once,
piece by piece from its BOS, so the figure is comparable with the n-gram
baseline's.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    SequentialSampler,
)

from musicgen.config import TrainConfig
from musicgen.data.dataset import TokenDataset
from musicgen.errors import MusicgenError

IGNORE = -100


def transpose_window(window: np.ndarray, pitch_start: int, pitch_count: int, max_shift: int, rng) -> np.ndarray:
    """Shift every Pitch token by one random amount that keeps all of them in range."""
    if max_shift == 0:
        return window
    is_pitch = (window >= pitch_start) & (window < pitch_start + pitch_count)
    if not is_pitch.any():
        return window
    p = window[is_pitch]
    lo = max(-max_shift, pitch_start - int(p.min()))
    hi = min(max_shift, pitch_start + pitch_count - 1 - int(p.max()))
    if lo > hi:
        return window
    shift = int(rng.integers(lo, hi + 1))
    if shift:
        window = window.copy()
        window[is_pitch] += shift
    return window


class TrainWindows(Dataset):
    """`length` random windows; item i is a pure function of (seed, epoch, i)."""

    def __init__(self, tokens: np.ndarray, seq_len: int, length: int, pitch_start: int, pitch_count: int, transpose: int, seed: int):
        if len(tokens) < seq_len + 1:
            raise MusicgenError(
                f"the training split has {len(tokens)} tokens, fewer than one window of {seq_len + 1}; "
                "use a smaller --seq-len or more music"
            )
        self.tokens, self.seq_len, self.length = tokens, seq_len, length
        self.pitch = (pitch_start, pitch_count)
        self.transpose, self.seed, self.epoch = transpose, seed, 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        off = int(rng.integers(0, len(self.tokens) - self.seq_len))
        w = np.asarray(self.tokens[off : off + self.seq_len + 1], dtype=np.int64)
        w = transpose_window(w, *self.pitch, self.transpose, rng)
        t = torch.from_numpy(w)
        return t[:-1], t[1:]


class EvalChunks(Dataset):
    """Every piece cut into windows of seq_len targets; padded targets are ignored."""

    def __init__(self, docs: list[np.ndarray], seq_len: int, pad_id: int):
        self.items: list[tuple[np.ndarray | None, int, int]] = []
        for doc in docs:
            for s in range(0, max(len(doc) - 1, 0), seq_len):
                self.items.append((doc, s, min(s + seq_len + 1, len(doc))))
        self.seq_len, self.pad_id = seq_len, pad_id

    def padded_to(self, multiple: int) -> EvalChunks:
        """A copy whose length is a multiple of `multiple`, filled with chunks that score nothing.

        A DistributedSampler evens the ranks out by repeating chunks, which would
        count some tokens twice; empty chunks (all targets ignored) count none.
        """
        out = EvalChunks([], self.seq_len, self.pad_id)
        out.items = list(self.items) + [(None, 0, 0)] * (-len(self.items) % max(multiple, 1))
        return out

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        doc, s, e = self.items[i]
        x = np.full(self.seq_len, self.pad_id, dtype=np.int64)
        y = np.full(self.seq_len, IGNORE, dtype=np.int64)
        if doc is not None:
            w = np.asarray(doc[s:e], dtype=np.int64)
            x[: len(w) - 1] = w[:-1]
            y[: len(w) - 1] = w[1:]
        return torch.from_numpy(x), torch.from_numpy(y)


class ResumableBatchSampler(BatchSampler):
    """Batches in order, whose next pass can start some batches in.

    Training items are a pure function of (seed, epoch, index), so a run resumed
    in the middle of an epoch skips the batches it already trained on and sees
    exactly what an unbroken run sees; a plain loader would replay the epoch's
    first batches and never reach its last ones.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool = False):
        super().__init__(sampler, batch_size, drop_last)
        self.skip = 0

    def __iter__(self):
        skip, self.skip = self.skip, 0
        for k, batch in enumerate(super().__iter__()):
            if k >= skip:
                yield batch


class MusicDataModule(L.LightningDataModule):
    def __init__(self, data_dir, cfg: TrainConfig):
        super().__init__()
        self.ds = TokenDataset.open(data_dir)
        self.cfg = cfg
        v = self.ds.vocab
        train = self.ds.split_tokens("train")
        per_epoch = cfg.steps_per_epoch * cfg.batch_size if cfg.steps_per_epoch else max(len(train) // cfg.seq_len, cfg.batch_size)
        self.train_set = TrainWindows(train, cfg.seq_len, per_epoch, v.pitch_start, v.pitch_count, cfg.transpose, cfg.seed)
        val_docs = self.ds.documents("val")
        # A corpus too small to hold files out still gets a validation number, but says so.
        self.val_is_held_out = bool(val_docs)
        if not val_docs:
            val_docs = self.ds.documents("train")[:1]
        self.val_set = EvalChunks(val_docs, cfg.seq_len, v.pad_id)

    def set_epoch(self, epoch: int) -> None:
        self.train_set.epoch = epoch

    def _placement(self) -> tuple[int, int]:
        """(world size, this process's rank); samplers are made here, not by Lightning."""
        if self.trainer is None:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _loader(self, ds, batches: BatchSampler) -> DataLoader:
        return DataLoader(
            ds,
            batch_sampler=batches,
            num_workers=self.cfg.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.cfg.num_workers > 0,
        )

    @staticmethod
    def _sampler(ds, world: int, rank: int):
        # In order: training items are already random windows, validation covers every chunk once.
        if world > 1:
            return DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False, drop_last=False)
        return SequentialSampler(ds)

    def train_dataloader(self) -> DataLoader:
        world, rank = self._placement()
        batches = ResumableBatchSampler(self._sampler(self.train_set, world, rank), self.cfg.batch_size)
        if self.trainer is not None:
            self.set_epoch(self.trainer.current_epoch)
            # Every epoch is len(batches) optimizer steps: steps beyond the finished epochs
            # were taken in this one before the run stopped (0 unless resuming mid-epoch).
            done = self.trainer.global_step - self.trainer.current_epoch * len(batches)
            batches.skip = done if 0 < done < len(batches) else 0
        return self._loader(self.train_set, batches)

    def val_dataloader(self) -> DataLoader:
        world, rank = self._placement()
        ds = self.val_set.padded_to(world) if world > 1 else self.val_set
        return self._loader(ds, BatchSampler(self._sampler(ds, world, rank), self.cfg.batch_size, drop_last=False))
