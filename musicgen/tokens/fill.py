"""Fill in the middle: a passage rearranged so that a left-to-right model writes it last.

    before Fill_gap <the gap's length in Shifts> Fill_after after Fill_middle middle Fill_end

A causal model trained on some windows laid out so (Bavarian et al. 2022, "Efficient
Training of Language Models to Fill in the Middle") learns to write a middle that
leads into the after-part it has already read; no core changes. The gap's Shifts put
the after-part on the piece's clock, so the model knows how long the middle must be
and on which beat the after-part comes in: without them (the first layout) the
real after-part helped the models no more than none at all. The middle is cut
at bar lines (beats mode: the metre in force; seconds mode: nominal 2-second bars),
or at any step the caller names. The run of Shifts that crosses a cut is spelt again
as two, up to the line and from it, so the middle begins and ends exactly on its
lines and `restore` puts the three parts back as the same music.

Everything here works on universal ids of one piece; the datamodule and `infill.py`
convert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.tokens.space import BOS


@dataclass(frozen=True)
class Cut:
    """Where a piece is cut at `step`: tokens [lo, hi) are the run of Shifts crossing it,
    spelt again as `left` (up to the step) and `right` (from it)."""

    step: int
    lo: int
    hi: int
    left: tuple[int, ...]
    right: tuple[int, ...]


class Timeline:
    """The clock of one piece's tokens: the step before and after each token, the runs
    of Shifts, and the bar lines those runs cross."""

    def __init__(self, uids: np.ndarray, vocab):
        uids = np.asarray(uids, dtype=np.int64)
        self.uids, self.vocab = uids, vocab
        n = len(uids)
        self.before = np.zeros(n, dtype=np.int64)
        self.after = np.zeros(n, dtype=np.int64)
        lines: list[int] = []
        stream = vocab.stream()
        for i, u in enumerate(uids.tolist()):
            self.before[i] = stream.step
            origin, bar = stream.bar_origin, max(stream.bar_steps, 1)
            stream.feed(u)
            self.after[i] = stream.step
            if stream.step > self.before[i]:  # the bar lines this Shift passes or reaches
                first = origin + ((int(self.before[i]) - origin) // bar + 1) * bar
                lines.extend(range(first, stream.step + 1, bar))
        self.bar_lines = np.array(sorted(set(lines)), dtype=np.int64)
        shift = vocab.space.shift.contains(uids)
        # each Shift's run: the first index of its run and one past its last
        self.run_lo = np.arange(n)
        self.run_hi = np.arange(n) + 1
        for i in range(1, n):
            if shift[i] and shift[i - 1]:
                self.run_lo[i] = self.run_lo[i - 1]
        for i in range(n - 2, -1, -1):
            if shift[i] and shift[i + 1]:
                self.run_hi[i] = self.run_hi[i + 1]
        self.shift = shift
        # the body starts after BOS and the line-up header
        self.body = 0
        if n and uids[0] == BOS:
            self.body = 1
            while self.body < n and vocab.space.inst.contains(uids[self.body]):
                self.body += 1

    @property
    def end_step(self) -> int:
        return int(self.after[-1]) if len(self.after) else 0

    def cut(self, step: int) -> Cut:
        """The cut at `step` (0 <= step <= the piece's last step), or the nearest step to it
        that the vocabulary's Shifts can spell on both sides (`Cut.step` says which)."""
        step = int(step)
        if step <= 0:
            return Cut(0, self.body, self.body, (), ())
        i = int(np.searchsorted(self.after, step, side="left"))  # the first token reaching it
        if i >= len(self.uids) or not self.shift[i] or self.before[i] >= step:
            raise ValueError(f"no time passes at step {step} in this piece")
        lo, hi = int(self.run_lo[i]), int(self.run_hi[i])
        t0, t1 = int(self.before[lo]), int(self.after[hi - 1])
        # the nearest step of the run both of whose sides the vocabulary's Shifts spell
        # exactly; its end always qualifies (the run's own spelling)
        for d in range(t1 - t0):
            for s in (step - d, step + d) if d else (step,):
                if s == t1:  # the run ends on the line: its own spelling is the left part
                    return Cut(s, lo, hi, tuple(self.uids[lo:hi].tolist()), ())
                exact = self.vocab.spells_exactly
                if t0 < s < t1 and exact(s - t0) and exact(t1 - s):
                    left, right = self.vocab.spell_gap(s - t0), self.vocab.spell_gap(t1 - s)
                    return Cut(s, lo, hi, tuple(left), tuple(right))
        raise AssertionError("unreachable: the run's end is always a cut")

    def parts(self, a: Cut, b: Cut) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, middle, after): the piece cut at `a` and `b`, in universal ids."""
        u = self.uids
        before = np.concatenate([u[: a.lo], a.left]).astype(np.int64)
        if a.lo == b.lo:  # both cuts in one run of Shifts: the middle is all silence
            middle = np.array(self.vocab.spell_gap(b.step - a.step), dtype=np.int64)
        else:
            middle = np.concatenate([a.right, u[a.hi : b.lo], b.left]).astype(np.int64)
        after = np.concatenate([b.right, u[b.hi :]]).astype(np.int64)
        return before, middle, after


def seams(vocab) -> tuple[int, int, int, int]:
    """Universal ids of Fill_after, Fill_middle, Fill_end, Fill_gap."""
    fill = vocab.space.fill
    return tuple(int(u) for u in fill.id(np.arange(4)))  # type: ignore[return-value]


def rearrange(before, middle, after, vocab, gap: int) -> np.ndarray:
    """before Fill_gap <gap> Fill_after after Fill_middle middle Fill_end (universal ids),
    <gap> being the middle's `gap` steps spelt in Shifts."""
    fa, fm, fe, fg = seams(vocab)
    spelt = vocab.spell_gap(gap)
    parts = [before, [fg], spelt, [fa], after, [fm], middle, [fe]]
    return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])


def restore(ids, vocab) -> np.ndarray:
    """The piece a rearranged sequence stands for: before, middle, after, seams and the
    gap's Shifts removed."""
    ids = np.asarray(ids, dtype=np.int64)
    fa, fm, fe, fg = seams(vocab)
    first = lambda t: int(np.flatnonzero(ids == t)[0])  # noqa: E731
    g, i, j = first(fg), first(fa), first(fm)
    end = np.flatnonzero(ids == fe)
    k = int(end[0]) if len(end) else len(ids)
    return np.concatenate([ids[:g], ids[j + 1 : k], ids[i + 1 : j]])


def around(before: np.ndarray, after: np.ndarray, room: int) -> tuple[np.ndarray, np.ndarray]:
    """The end of `before` and the start of `after` in `room` tokens: half each, and what
    one side does not use goes to the other."""
    room = max(int(room), 0)
    keep_after = min(len(after), max(room // 2, room - len(before)))
    keep_before = min(len(before), room - keep_after)
    return before[len(before) - keep_before :], after[:keep_after]


MIN_CONTEXT = 0.25  # of a window: the least music either side of a middle that training sees


def context_room(length: int, middle_tokens: int, gap: int, vocab) -> int:
    """Tokens of a `length`-token layout left for the music before and after a middle."""
    return length - 4 - len(vocab.spell_gap(gap)) - middle_tokens  # the seams, the gap


def sides(before, middle, after, vocab, gap: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The music on either side of `middle` that a `length`-token layout holds (`layout`)."""
    room = max(context_room(length, len(middle), gap, vocab), int(length * MIN_CONTEXT))
    return around(before, after, room)


def layout(before, middle, after, vocab, gap: int, length: int) -> np.ndarray:
    """The rearranged passage in at most `length` tokens, as training and infilling both
    crop it: the middle whole, and as much music on either side as `around` keeps.
    Training only draws middles that leave `MIN_CONTEXT` of the window; a longer span
    to infill still gets that much (the layout is then longer than `length`)."""
    near_before, near_after = sides(before, middle, after, vocab, gap, length)
    return rearrange(near_before, middle, near_after, vocab, gap)


def training_cuts(line: Timeline, rng, max_bars: int, max_tokens: int) -> tuple[Cut, Cut] | None:
    """Two of the piece's bar lines 1 to `max_bars` bars apart, drawn at random, with at
    most about `max_tokens` tokens between them (fewer bars if need be); None when the
    piece has fewer than two lines or the drawn bar alone is longer."""
    i = np.searchsorted(line.after, line.bar_lines, side="left")  # the token reaching each line
    i = np.minimum(i, len(line.uids) - 1)
    ok = line.run_lo[i] >= line.body
    lines, i = line.bar_lines[ok], i[ok]
    if len(lines) < 2:
        return None
    start = int(rng.integers(0, len(lines) - 1))
    bars = int(rng.integers(1, min(max_bars, len(lines) - 1 - start) + 1))
    while bars > 1 and i[start + bars] - i[start] > max_tokens:
        bars -= 1
    if i[start + bars] - i[start] > max_tokens:
        return None
    return line.cut(int(lines[start])), line.cut(int(lines[start + bars]))


def is_seam(uids, vocab) -> np.ndarray:
    return vocab.space.fill.contains(uids)
