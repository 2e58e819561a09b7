"""Form: do bars come back? Self-similarity of a piece's bars, and the form a corpus has.

A bar's content is the set of its pitched notes as (onset within the bar on a
1/12-quarter grid, pitch). Two bars *match* when their contents are equal, or
equal after moving every pitch by one interval (a sequence, a strain repeated in
another key). Real tunes are built from phrases that come back (AABB: an 8-bar
strain, repeated, then another); a piece that wanders never matches a bar.

* `recurring_bar_share`: the share of the piece's non-empty bars that match some
  other bar of it;
* `recurrence_distance`: for those bars, the mean distance in bars to the nearest
  match (8 in an AABB tune of 8-bar strains; 1 for a bar played twice running).

Bars come from the score's time-signature map (4/4 if it has none), so a piece
in seconds mode (one nominal 120 bpm) counts 2-second bars.

The learnt form: each bar's *state* (0 for new music, d for "the bar d bars back,
again"), a Markov chain over the states of a corpus's pieces and the pieces' own
sequences of states (their forms: which bar repeats which, never a note). `train`
stores it with a model; generation follows it (musicgen/generate/form.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from musicgen.midi.score import Score

GRID = 12  # steps per quarter that onsets within a bar are compared on: 16ths and triplets


def bar_contents(score: Score) -> list[tuple]:
    """Per bar, its pitched notes as a sorted tuple of (onset step within the bar, pitch)."""
    notes = score.notes[~score.notes["drum"]]
    lines = score.bar_lines()
    if not lines or not len(notes):
        return []
    starts = np.asarray(lines + [max(score.end, lines[-1]) + 1e-9])
    bar = np.searchsorted(starts, notes["start"] + 1e-9, side="right") - 1
    pos = np.round((notes["start"] - starts[np.clip(bar, 0, len(lines) - 1)]) * GRID).astype(int)
    out: list[list] = [[] for _ in lines]
    for b, p, k in zip(bar.tolist(), pos.tolist(), notes["pitch"].tolist(), strict=True):
        if 0 <= b < len(lines):
            out[b].append((p, k))
    return [tuple(sorted(set(c))) for c in out]


def _shape(content: tuple) -> tuple:
    """A bar's content with its pitches measured from its lowest: equal for transpositions."""
    low = min(k for _, k in content)
    return tuple((p, k - low) for p, k in content)


def bar_recurrence(score: Score) -> tuple[float, float]:
    """(recurring_bar_share, recurrence_distance); nan for a piece without two non-empty bars."""
    bars = bar_contents(score)
    filled = [i for i, c in enumerate(bars) if c]
    if len(filled) < 2:
        return math.nan, math.nan
    seen: dict[tuple, list[int]] = {}
    for i in filled:
        seen.setdefault(_shape(bars[i]), []).append(i)
    distances = []
    for group in seen.values():
        if len(group) < 2:
            continue
        for i in group:
            distances.append(min(abs(i - j) for j in group if j != i))
    share = len(distances) / len(filled)
    return share, (float(np.mean(distances)) if distances else math.nan)


MAX_DISTANCE = 16  # bars: two 8-bar strains
MAX_TEMPLATES = 256  # forms kept with a model: a few kilobytes in its metadata


@dataclass(frozen=True)
class FormPrior:
    """P(a bar's state | the bar before's): rows and columns 0 (new) .. MAX_DISTANCE; and
    the forms of training pieces (their bar states) that plans are drawn from."""

    transitions: tuple[tuple[float, ...], ...]
    templates: tuple[tuple[int, ...], ...] = ()

    def to_dict(self) -> dict:
        return {
            "transitions": [[round(p, 6) for p in row] for row in self.transitions],
            # one line each in indented JSON: the states, space-separated
            "templates": [" ".join(map(str, t)) for t in self.templates],
        }

    @classmethod
    def from_dict(cls, d: dict) -> FormPrior:
        rows = np.asarray(d["transitions"], dtype=np.float64)
        if (
            rows.ndim != 2
            or rows.shape[0] != rows.shape[1]
            or not np.isfinite(rows).all()
            or (rows < 0).any()
            or not (rows.sum(axis=1) > 0).all()
        ):
            raise ValueError("form transitions must be a square table of probabilities")
        templates = tuple(tuple(int(s) for s in t.split()) for t in d.get("templates", ()))
        for t in templates:  # a state names a bar that exists and the chain knows
            if any(not 0 <= s < len(rows) or s > i for i, s in enumerate(t)):
                raise ValueError("a form template names a bar before the piece's start")
        return cls(tuple(tuple(float(p) for p in row) for row in rows), templates)

    def template(self, bar: int, rng: np.random.Generator) -> tuple[int, ...] | None:
        """A form to follow from bar `bar` (from 0) on: one of the templates longer than
        that, at random; None when there is none."""
        longer = [t for t in self.templates if len(t) > bar]
        return longer[int(rng.integers(len(longer)))] if longer else None

    def draw(self, previous: int, bar: int, rng: np.random.Generator) -> int:
        """The state of bar `bar` (from 0), after a bar of state `previous`: it can only
        come back to a bar that exists."""
        p = np.asarray(self.transitions[min(previous, len(self.transitions) - 1)])[: bar + 1]
        if p.sum() <= 0:
            return 0
        return int(rng.choice(len(p), p=p / p.sum()))


def bar_states(score: Score, max_distance: int = MAX_DISTANCE) -> list[int]:
    """Each bar's state: the distance the bar before kept, if this bar equals the bar
    that far back; else the distance whose repeat goes on longest from here (the
    nearer on a tie); else 0. An empty bar is new."""
    bars = bar_contents(score)
    n = len(bars)
    # run[d][i]: how many bars from i on equal those d bars earlier (from the end: linear)
    run = {d: [0] * (n + 1) for d in range(1, max_distance + 1)}
    for d, r in run.items():
        for i in range(n - 1, d - 1, -1):
            r[i] = r[i + 1] + 1 if bars[i] and bars[i] == bars[i - d] else 0

    states: list[int] = []
    for i, content in enumerate(bars):
        same = [d for d in range(1, min(i, max_distance) + 1) if content and bars[i - d] == content]
        previous = states[-1] if states else 0
        if previous in same:
            states.append(previous)
        else:
            states.append(max(same, key=lambda d: (run[d][i], -d)) if same else 0)
    return states


def learn_form(scores: Iterable[Score], max_distance: int = MAX_DISTANCE) -> FormPrior:
    """The chain of bar states of `scores`, smoothed a little towards each row's own
    mean so a state the corpus never left still has somewhere to go; and their forms,
    up to `MAX_TEMPLATES` of them (drawn with a fixed seed, so training twice on the
    same pieces keeps the same ones), each as often as the corpus has it."""
    size = max_distance + 1
    counts = np.zeros((size, size))
    forms: list[tuple[int, ...]] = []
    for score in scores:
        states = bar_states(score, max_distance)
        for a, b in zip(states, states[1:], strict=False):
            counts[a, b] += 1
        if states:  # a piece that never comes back is a form too
            forms.append(tuple(states))
    new = counts[0] + 0.5
    rows = counts + 0.1 * (new / new.sum())  # an unseen state behaves like a new bar's
    rows /= rows.sum(axis=1, keepdims=True)
    if len(forms) > MAX_TEMPLATES:
        keep = np.random.default_rng(0).choice(len(forms), MAX_TEMPLATES, replace=False)
        forms = [forms[i] for i in sorted(keep)]
    return FormPrior(tuple(tuple(float(p) for p in row) for row in rows), tuple(forms))
