"""What training does to a window before the model sees it: each piece moved by one
random interval per epoch (`Transposer`), and a share of windows rearranged to teach
infilling (`Filler`)."""

from __future__ import annotations

import numpy as np
import torch

from musicgen.errors import MusicgenError
from musicgen.tokens.fill import MIN_CONTEXT, Timeline, context_room, layout, training_cuts
from musicgen.tokens.space import BOS, IGNORE  # noqa: F401


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
