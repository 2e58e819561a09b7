"""Training windows and validation chunks for Lightning.

Training reads windows of `seq_len + 1` tokens from the training range of the
memory-mapped array (windows may span two pieces; BOS/EOS mark the seam), in
one of two ways:

* random windows (`TrainWindows`), each on its own: the transformer's default;
* whole pieces (`TrainPieces`, truncated back-propagation through time): a batch
  is the next window of each of a group of pieces, so a core that carries its
  state from batch to batch (`TrainConfig.carry_state`, the GRUs' default) learns
  from all of a piece before each token, starting from nothing at its BOS exactly
  as it does when it generates.

Each piece is transposed by one random number of semitones per epoch that keeps
every pitch in range, the same in every window of it (a carried state would
otherwise hear the key change at each window).

With `TrainConfig.infill` a share of the windows teaches infilling (`Filler`): a
passage of a piece is cut at two bar lines and laid out as before, the gap's
length, after, middle, cropped to the window as infilling crops it (tokens/fill.py). In random-window training each window is rearranged with that
probability; on whole pieces that share of each batch's rows are rearranged
windows, each from its own fresh state, so the rows that walk pieces are never
interrupted.

Validation scores every held-out piece whole, the same way: each piece from its
BOS, chunk after chunk with the state carried, so every token is predicted from
all that came before it (up to the core's own window), as in generation. The figure is comparable with the n-gram
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
from musicgen.data.augment import IGNORE, Filler, Transposer  # noqa: F401
from musicgen.data.controls import BarControls
from musicgen.data.dataset import TokenDataset
from musicgen.data.remap import into_vocabulary
from musicgen.data.windows import (  # noqa: F401
    EvalStreams,
    PieceChunks,
    ResumableBatchSampler,
    ResumableLoader,
    TrainPieces,
    TrainWindows,
    _Batches,
    _DeviceRows,
)
from musicgen.errors import MusicgenError
from musicgen.tokens.vocab import Vocabulary


class MusicDataModule(L.LightningDataModule):
    def __init__(self, data_dir, cfg: TrainConfig, *, streams: bool = False, into=None):
        """`into`: the vocabulary the model learns, when it is not the dataset's own: a
        base's (the dataset is mapped into it, data/remap.py), or "full" for every token
        of the dataset's encoding (a base's own vocabulary)."""
        super().__init__()
        self.ds = TokenDataset.open(data_dir)
        if into == "full":
            into = Vocabulary.full(self.ds.vocab.cfg)
        self.mapped = None  # what mapping the dataset into `into` did, if it did more than ids
        if isinstance(into, Vocabulary):
            self.ds, self.mapped = into_vocabulary(self.ds, into)
        self.cfg, self.streams = cfg, streams
        # the vocabulary the model learns: the dataset's, the seams if it learns to fill, and
        # the mark of a piece moved from its own key if training moves pieces
        v = self.ds.vocab.with_fill() if cfg.infill > 0 else self.ds.vocab
        v = v.with_moved() if cfg.transpose > 0 else v
        self.vocab = v = v.with_controls() if cfg.controls > 0 else v
        lo, _ = self.ds.split_range("train")
        train = self.ds.split_tokens("train")
        starts = np.array(
            [e["offset"] - lo for e in self.ds.index["files"] if e["split"] == "train"],
            dtype=np.int64,
        )
        self.transposer = Transposer(
            train, starts, v.pitch_start, v.pitch_count, cfg.transpose, cfg.seed, v.moved_id
        )
        self.train_docs, self.train_starts = self.ds.documents("train"), starts
        # each bar's controls, measured once on the training pieces
        self.controls = BarControls(self.train_docs, v, cfg.controls) if cfg.controls > 0 else None
        self.filler = (
            Filler(self.train_docs, v, cfg.seq_len, cfg.infill_bars, self.transposer)
            if cfg.infill > 0
            else None
        )
        if streams and self.filler is not None and cfg.batch_size < 2:
            raise MusicgenError(
                "--infill on whole pieces needs --batch-size 2 or more (a row for each kind)"
            )
        if streams:  # its lanes depend on the number of devices: made in train_dataloader
            self.train_set: Dataset = self._pieces(1)
        else:
            per_epoch = (
                cfg.steps_per_epoch * cfg.batch_size
                if cfg.steps_per_epoch
                else max(len(train) // cfg.seq_len, cfg.batch_size)
            )
            self.train_set = TrainWindows(
                train,
                cfg.seq_len,
                per_epoch,
                self.transposer,
                cfg.seed,
                self.filler,
                cfg.infill,
                self.controls,
            )
        val_docs = self.ds.documents("val")
        # A corpus too small to hold files out still gets a validation number, but says so.
        self.val_is_held_out = bool(val_docs)
        if not val_docs:
            val_docs = self.ds.documents("train")[:1]
        self.val_set = EvalStreams(val_docs, cfg.seq_len, v.pad_id, cfg.batch_size)

    def _pieces(self, world: int) -> TrainPieces:
        cfg = self.cfg
        return TrainPieces(
            self.train_docs,
            self.train_starts,
            cfg.seq_len,
            self.vocab.pad_id,
            cfg.batch_size * world,
            self.transposer,
            cfg.seed,
            self.filler,
            self.fill_lanes,
            cfg.batch_size,
            self.controls,
        )

    @property
    def fill_lanes(self) -> int:
        """Rows of each device's batch that read rearranged windows: at least one, and one
        fewer than the batch, so some row always walks the pieces."""
        if self.filler is None:
            return 0
        return min(max(1, round(self.cfg.infill * self.cfg.batch_size)), self.cfg.batch_size - 1)

    def set_epoch(self, epoch: int) -> None:
        self.train_set.set_epoch(epoch)

    def _placement(self) -> tuple[int, int]:
        """(world size, this process's rank); samplers are made here, not by Lightning."""
        if self.trainer is None:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _loader(self, ds, batches: BatchSampler, cls=DataLoader, **extra) -> DataLoader:
        return cls(
            ds,
            batch_sampler=batches,
            collate_fn=_Batches.collate if isinstance(ds, _Batches) else None,
            num_workers=self.cfg.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.cfg.num_workers > 0,
            **extra,
        )

    @staticmethod
    def _sampler(ds, world: int, rank: int):
        # In order: training items are already random windows.
        if world > 1:
            return DistributedSampler(
                ds, num_replicas=world, rank=rank, shuffle=False, drop_last=False
            )
        return SequentialSampler(ds)

    def train_dataloader(self) -> DataLoader:
        world, rank = self._placement()
        if self.trainer is not None:
            self.set_epoch(self.trainer.current_epoch)
        if self.streams:  # every device walks its own lanes; an item is a whole batch
            if self.train_set.lanes != self.cfg.batch_size * world:
                self.train_set = self._pieces(world)
                self.set_epoch(self.trainer.current_epoch if self.trainer is not None else 0)
            steps = self.cfg.steps_per_epoch or len(self.train_set)
            data: Dataset = _Batches(_DeviceRows(self.train_set, self.cfg.batch_size, rank, steps))
            batches = ResumableBatchSampler(SequentialSampler(data), 1)
        else:
            data = self.train_set
            batches = ResumableBatchSampler(self._sampler(data, world, rank), self.cfg.batch_size)
        # Lightning restores where a resumed run stopped in the epoch (ResumableLoader)
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return self._loader(data, batches, ResumableLoader, epoch=epoch, steps=self._steps)

    def _steps(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    def val_dataloader(self) -> DataLoader:
        world, rank = self._placement()
        data = _Batches(self.val_set.for_rank(world, rank))
        return self._loader(data, BatchSampler(SequentialSampler(data), 1, drop_last=False))
