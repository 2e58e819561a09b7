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

import copy

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
from musicgen.tokens.fill import MIN_CONTEXT, Timeline, context_room, layout, training_cuts
from musicgen.tokens.space import BOS

IGNORE = -100


class Transposer:
    """One random transposition per piece and epoch, keeping every pitch of the piece in range.

    With `moved` (the compact id of Start_moved), a moved piece's BOS says so: the model
    learns the keys its corpus is in from the pieces left where they are, and a piece it
    begins with BOS is in one of them, where without the mark augmentation spreads every
    generated piece evenly over the keys."""

    def __init__(
        self,
        tokens: np.ndarray,
        starts: np.ndarray,
        pitch_start: int,
        pitch_count: int,
        max_shift: int,
        seed: int,
        moved: int | None = None,
    ):
        self.starts = np.asarray(starts, dtype=np.int64)  # where each piece begins in `tokens`
        self.pitch = (pitch_start, pitch_count)
        self.max_shift, self.seed, self.moved = max_shift, seed, moved
        lo = np.full(len(starts), pitch_count, dtype=np.int64)
        hi = np.full(len(starts), -1, dtype=np.int64)
        ends = np.append(self.starts[1:], len(tokens))
        for k, (a, b) in enumerate(zip(self.starts.tolist(), ends.tolist(), strict=True)):
            piece = np.asarray(tokens[a:b], dtype=np.int64) - pitch_start
            p = piece[(piece >= 0) & (piece < pitch_count)]
            if len(p):
                lo[k], hi[k] = int(p.min()), int(p.max())
        # the shifts each piece allows: down to its lowest pitch, up to its highest
        self.down = np.minimum(max_shift, lo)
        self.up = np.minimum(max_shift, pitch_count - 1 - hi)
        self.shift = np.zeros(len(starts), dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        if self.max_shift == 0:
            return
        u = np.random.default_rng((self.seed, epoch, 7)).random(len(self.starts))
        self.shift = -self.down + np.floor(u * (self.down + self.up + 1)).astype(
            np.int64
        )  # in [-down, up]

    def piece(self, window: np.ndarray, k: int) -> np.ndarray:
        """Every Pitch token of `window`, all of piece `k`, moved by that piece's shift (and
        its BOS marked if it moved)."""
        start, count = self.pitch
        is_pitch = (window >= start) & (window < start + count)
        out = window.copy()
        out[is_pitch] += self.shift[k]
        if self.moved is not None and self.shift[k]:
            out[out == BOS] = self.moved
        return out

    def __call__(self, window: np.ndarray, offset: int) -> np.ndarray:
        """`window` starts at `offset` in the tokens: every Pitch token moved by its piece's
        shift, and the BOS of a piece that moved marked so."""
        if self.max_shift == 0 or not self.shift.any():
            return window
        start, count = self.pitch
        is_pitch = (window >= start) & (window < start + count)
        is_bos = (window == BOS) if self.moved is not None else np.zeros(len(window), dtype=bool)
        if not is_pitch.any() and not is_bos.any():
            return window
        piece = np.searchsorted(self.starts, offset + np.arange(len(window)), side="right") - 1
        shift = self.shift[np.maximum(piece, 0)]
        out = window.copy()
        out[is_pitch] += shift[is_pitch]
        if self.moved is not None:
            out[is_bos & (shift != 0)] = self.moved
        return out


class Filler:
    """Training windows rearranged for infilling: a random passage of a random piece (by
    length), cut at two of its bar lines 1 to `max_bars` apart and laid out for filling
    (tokens/fill.py `layout`, which crops it as infilling does); padding fills a short one."""

    def __init__(self, docs: list[np.ndarray], vocab, seq_len: int, max_bars: int, transposer):
        self.docs, self.vocab, self.length, self.max_bars = docs, vocab, seq_len + 1, max_bars
        self.transpose = transposer
        self.lines = [Timeline(vocab.to_universal(d), vocab) for d in docs]
        usable = np.array([len(line.bar_lines) >= 2 for line in self.lines])
        if not usable.any():
            raise MusicgenError(
                "--infill needs pieces with at least two bar lines; the training music has none"
            )
        sizes = np.array([len(d) for d in docs], dtype=np.float64) * usable
        self.cumulative = np.cumsum(sizes / sizes.sum())  # pieces drawn by their length

    def window(self, rng) -> tuple[torch.Tensor, torch.Tensor]:
        ids, k = None, 0
        for _ in range(16):
            k = min(int(np.searchsorted(self.cumulative, rng.random())), len(self.docs) - 1)
            ids = self._layout(self.lines[k], rng)
            if ids is not None:
                break
        if ids is None:  # only bars longer than the window came up: a plain window of the piece
            ids = np.asarray(self.docs[k][: self.length], dtype=np.int64)
        else:
            ids = self.vocab.lookup[ids]
        ids = self.transpose.piece(ids, k)
        x = np.full(self.length - 1, self.vocab.pad_id, dtype=np.int64)
        y = np.full(self.length - 1, IGNORE, dtype=np.int64)
        x[: len(ids) - 1], y[: len(ids) - 1] = ids[:-1], ids[1:]
        return torch.from_numpy(x), torch.from_numpy(y)

    def _layout(self, line: Timeline, rng) -> np.ndarray | None:
        """A random passage of the piece rearranged (universal ids), cropped as infilling
        crops it; None if its middle leaves under `MIN_CONTEXT` of the window for context."""
        least = int(self.length * MIN_CONTEXT)
        cuts = training_cuts(line, rng, self.max_bars, self.length - least)
        if cuts is None:
            return None
        a, b = cuts
        before, middle, after = line.parts(a, b)
        gap = b.step - a.step
        if context_room(self.length, len(middle), gap, self.vocab) < least:
            return None  # the token count training_cuts went by was a little short
        return layout(before, middle, after, self.vocab, gap, self.length)


class TrainWindows(Dataset):
    """`length` random windows; item i is a pure function of (seed, epoch, i). With a
    `filler`, a share `infill` of them are rearranged for infilling."""

    def __init__(
        self,
        tokens: np.ndarray,
        seq_len: int,
        length: int,
        transposer: Transposer,
        seed: int,
        filler: Filler | None = None,
        infill: float = 0.0,
    ):
        if len(tokens) < seq_len + 1:
            raise MusicgenError(
                f"the training split has {len(tokens)} tokens, fewer than one window of {seq_len + 1}; "
                "use a smaller --seq-len or more music"
            )
        self.tokens, self.seq_len, self.length = tokens, seq_len, length
        self.transpose, self.seed, self.epoch = transposer, seed, 0
        self.filler, self.infill = filler, infill

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.transpose.set_epoch(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        if self.filler is not None and rng.random() < self.infill:
            return self.filler.window(rng)
        off = int(rng.integers(0, len(self.tokens) - self.seq_len))
        w = np.asarray(self.tokens[off : off + self.seq_len + 1], dtype=np.int64)
        t = torch.from_numpy(self.transpose(w, off))
        return t[:-1], t[1:]


class PieceChunks(Dataset):
    """Pieces read whole, a group at a time: pieces go in groups of `lanes` of similar
    length; item k of a group is a whole batch, chunk k of each of its pieces (padded
    where a piece is over), with a flag saying whether it starts the group. A core that
    carries its state from item to item reads every piece from its BOS with all that came
    before it, as it does when it generates. Items: (x (lanes, T), y (lanes, T), first)."""

    def __init__(self, docs: list[np.ndarray], seq_len: int, pad_id: int, lanes: int):
        self.docs, self.seq_len, self.pad_id, self.lanes = docs, seq_len, pad_id, lanes
        self.group(sorted(range(len(docs)), key=lambda k: -len(docs[k])))

    def group(self, order: list[int]) -> None:
        """Groups of `lanes` consecutive pieces of `order`, and the items that walk them."""
        self.set_groups([order[g : g + self.lanes] for g in range(0, len(order), self.lanes)])

    def set_groups(self, groups: list[list[int]]) -> None:
        self.groups = groups
        self.items: list[tuple[int, int]] = []  # (group, chunk); group -1: an empty batch
        for g, group in enumerate(self.groups):
            longest = max(len(self.docs[k]) for k in group) - 1
            self.items += [(g, c) for c in range(max(1, -(-longest // self.seq_len)))]

    def for_rank(self, world: int, rank: int) -> PieceChunks:
        """The groups of one device, whole; a device with fewer items than another gets
        empty batches (they score nothing), so every device steps as often."""
        out = copy.copy(self)
        per_rank = [[it for it in self.items if it[0] % world == r] for r in range(world)]
        out.items = per_rank[rank] + [(-1, 0)] * (
            max(len(p) for p in per_rank) - len(per_rank[rank])
        )
        return out

    def __len__(self) -> int:
        return len(self.items)

    def window(self, k: int, c: int) -> np.ndarray:
        return np.asarray(
            self.docs[k][c * self.seq_len : (c + 1) * self.seq_len + 1], dtype=np.int64
        )

    def __getitem__(self, i: int):
        g, c = self.items[i]
        group = self.groups[g] if g >= 0 else []
        x = np.full((max(len(group), 1), self.seq_len), self.pad_id, dtype=np.int64)
        y = np.full_like(x, IGNORE)
        for r, k in enumerate(group):
            w = self.window(k, c)
            if len(w) > 1:
                x[r, : len(w) - 1] = w[:-1]
                y[r, : len(w) - 1] = w[1:]
        return torch.from_numpy(x), torch.from_numpy(y), torch.tensor(c == 0)


EvalStreams = PieceChunks  # how validation and `musicgen evaluate` read held-out pieces


class TrainPieces(Dataset):
    """Training on whole pieces (truncated back-propagation through time).

    Each of `lanes` rows walks its own share of the pieces, one after another, a
    window of `seq_len` at a time; a piece's last window is padded, and the next
    one starts on a fresh window, flagged, so the core restarts that row's state
    (`restart_rows`) and reads every piece from its BOS, as when it generates.
    Rows walk different pieces at different places, so a batch is as varied as one
    of random windows. Each epoch deals a new random order of the pieces to the
    lanes (the longest first, each to the lane with least to read) and transposes
    each piece by its amount for the epoch; a lane that runs out begins its share
    again. Item k is step k for every lane: (x (lanes, T), y (lanes, T), fresh (lanes,)).

    With `steps_per_epoch` shorter than a pass, an epoch reads the first steps of its
    plan and the next epoch deals a new one: every piece still comes up, but the last
    windows of a long piece come up less often than its first (kept so: an epoch's
    plan depends only on the seed and the epoch, which is what makes resuming exact).

    With a `filler`, the first `fill_lanes` of every `per_device` lanes read windows
    rearranged for infilling instead, a new one each step from a fresh state.
    """

    def __init__(
        self,
        docs: list[np.ndarray],
        starts: np.ndarray,
        seq_len: int,
        pad_id: int,
        lanes: int,
        transposer: Transposer,
        seed: int,
        filler: Filler | None = None,
        fill_lanes: int = 0,
        per_device: int | None = None,
    ):
        self.docs, self.starts = docs, np.asarray(starts, dtype=np.int64)
        self.seq_len, self.pad_id, self.lanes = seq_len, pad_id, lanes
        self.transpose, self.seed = transposer, seed
        self.filler = filler
        per = per_device or lanes
        self.fill = [filler is not None and r % per < fill_lanes for r in range(lanes)]
        self.windows = [max(1, -(-(len(d) - 1) // seq_len)) for d in docs]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.transpose.set_epoch(epoch)
        rng = np.random.default_rng((self.seed, epoch, 11))
        order = sorted(rng.permutation(len(self.docs)).tolist(), key=lambda k: -self.windows[k])
        dealt: list[list[int]] = [[] for _ in range(self.lanes)]
        load = [0] * self.lanes
        walkers = [r for r in range(self.lanes) if not self.fill[r]]
        for k in order if walkers else []:
            lane = min(walkers, key=lambda r: (load[r], r))
            dealt[lane].append(k)
            load[lane] += self.windows[k]
        # each lane reads its pieces in a random order (dealt longest first only for balance)
        shares = [
            [(k, c) for k in rng.permutation(ks).tolist() for c in range(self.windows[k])]
            for ks in dealt
        ]
        self.steps = max(1, max(load))  # every piece read; a lighter lane begins its share again
        self.plan = [
            [share[i % len(share)] if share else (-1, 0) for i in range(self.steps)]
            for share in shares
        ]

    def __len__(self) -> int:
        return self.steps

    def rows(self, k: int, lanes: range) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = np.full((len(lanes), self.seq_len), self.pad_id, dtype=np.int64)
        y = np.full_like(x, IGNORE)
        fresh = np.zeros(len(lanes), dtype=bool)
        for r, lane in enumerate(lanes):
            piece, c = self.plan[lane][k]
            fresh[r] = c == 0
            if self.fill[lane]:
                rng = np.random.default_rng((self.seed, self.epoch, k, lane, 13))
                x[r], y[r] = self.filler.window(rng)
                fresh[r] = True
                continue
            if piece < 0:
                continue
            w = np.asarray(
                self.docs[piece][c * self.seq_len : (c + 1) * self.seq_len + 1], dtype=np.int64
            )
            w = self.transpose(w, int(self.starts[piece]) + c * self.seq_len)
            x[r, : len(w) - 1] = w[:-1]
            y[r, : len(w) - 1] = w[1:]
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(fresh)

    def __getitem__(self, k: int):
        return self.rows(k, range(self.lanes))


class _DeviceRows(Dataset):
    """One device's lanes of a `TrainPieces`: rows [rank * batch, (rank + 1) * batch)."""

    def __init__(self, pieces: TrainPieces, batch: int, rank: int, steps: int):
        self.pieces, self.lanes, self.steps = pieces, range(rank * batch, (rank + 1) * batch), steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, k: int):
        return self.pieces.rows(k % len(self.pieces), self.lanes)


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


class _Batches(Dataset):
    """A dataset whose items are whole batches, read one item per step."""

    def __init__(self, items: Dataset):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]

    @staticmethod
    def collate(batch: list):
        return batch[0]


class MusicDataModule(L.LightningDataModule):
    def __init__(self, data_dir, cfg: TrainConfig, *, streams: bool = False):
        super().__init__()
        self.ds = TokenDataset.open(data_dir)
        self.cfg, self.streams = cfg, streams
        # the vocabulary the model learns: the dataset's, the seams if it learns to fill, and
        # the mark of a piece moved from its own key if training moves pieces
        v = self.ds.vocab.with_fill() if cfg.infill > 0 else self.ds.vocab
        self.vocab = v = v.with_moved() if cfg.transpose > 0 else v
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

    def _loader(self, ds, batches: BatchSampler) -> DataLoader:
        return DataLoader(
            ds,
            batch_sampler=batches,
            collate_fn=_Batches.collate if isinstance(ds, _Batches) else None,
            num_workers=self.cfg.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.cfg.num_workers > 0,
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
        if self.trainer is not None:
            # Every epoch is len(batches) optimizer steps: steps beyond the finished epochs
            # were taken in this one before the run stopped (0 unless resuming mid-epoch).
            done = self.trainer.global_step - self.trainer.current_epoch * len(batches)
            batches.skip = done if 0 < done < len(batches) else 0
        return self._loader(data, batches)

    def val_dataloader(self) -> DataLoader:
        world, rank = self._placement()
        data = _Batches(self.val_set.for_rank(world, rank))
        return self._loader(data, BatchSampler(SequentialSampler(data), 1, drop_last=False))
