"""The training and validation sets a data module hands Lightning: random windows,
whole pieces walked window by window, held-out pieces in chunks, and the batch sampler
that resumes where a run stopped."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
)

from musicgen.data.augment import IGNORE, Filler, Transposer  # noqa: F401
from musicgen.data.controls import BarControls
from musicgen.errors import MusicgenError


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
        controls: BarControls | None = None,
    ):
        if len(tokens) < seq_len + 1:
            raise MusicgenError(
                f"the training split has {len(tokens)} tokens, fewer than one window of {seq_len + 1}; "
                "use a smaller --seq-len or more music"
            )
        self.tokens, self.seq_len, self.length = tokens, seq_len, length
        self.transpose, self.seed, self.epoch = transposer, seed, 0
        self.filler, self.infill, self.controls = filler, infill, controls

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
        w = self.transpose(w, off)
        if self.controls is not None:  # after transposition: the key and register move too
            w = self.controls.window(w, off, self.transpose.starts, self.transpose.shift, rng)
        t = torch.from_numpy(w)
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
        controls: BarControls | None = None,
    ):
        self.raw_docs, self.starts = docs, np.asarray(starts, dtype=np.int64)
        self.docs = docs  # this epoch's pieces: moved by their amounts, with their controls
        self.seq_len, self.pad_id, self.lanes = seq_len, pad_id, lanes
        self.transpose, self.seed = transposer, seed
        self.filler, self.controls = filler, controls
        per = per_device or lanes
        self.fill = [filler is not None and r % per < fill_lanes for r in range(lanes)]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.transpose.set_epoch(epoch)
        self.docs = self.raw_docs
        if self.controls is not None:  # a piece keeps one draw of controls for the epoch
            self.docs = [
                self.controls.piece(
                    self.transpose.piece(np.asarray(d, dtype=np.int64), k),
                    k,
                    int(self.transpose.shift[k]),
                    np.random.default_rng((self.seed, epoch, k, 17)),
                )
                for k, d in enumerate(self.raw_docs)
            ]
        self.windows = [max(1, -(-(len(d) - 1) // self.seq_len)) for d in self.docs]
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
            if self.controls is None:  # else the epoch's pieces are moved already
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


class ResumableLoader(DataLoader):
    """One epoch's training batches, which Lightning knows as resumable: it saves
    `state_dict()` in every checkpoint and hands it back to `load_state_dict` when a run
    resumes, before the first batch is drawn.

    The state is the epoch and how many of its batches were trained. The count is read from
    the trainer's step counter (`steps`) when the checkpoint is written, not from the batches
    drawn so far: Lightning fetches a batch ahead, so the sampler is always one ahead of
    training. Each optimizer step trains exactly one batch (no gradient accumulation).
    """

    def __init__(self, *args, epoch: int, steps: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch, self.steps = epoch, steps
        self.first_step = steps()  # the step at which this epoch's first batch is trained

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches": self.steps() - self.first_step}

    def load_state_dict(self, state: dict) -> None:
        done = int(state.get("batches", 0))
        # Another epoch's state (the run was saved after its epoch ended) skips nothing. All of
        # this epoch's batches done (saved after a validation on its last batch) skips them all:
        # Lightning may still ask for a batch before it closes the epoch, and must get none.
        if state.get("epoch") == self.epoch and 0 < done <= len(self.batch_sampler):
            self.batch_sampler.skip = done
            self.first_step -= done


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
