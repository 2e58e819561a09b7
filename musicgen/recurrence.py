"""Form-aware sampling: bars come back at the distances the corpus's bars come back.

Real tunes are built from strains that return (AABB: eight bars, the same eight
again, then another eight), which a next-token model trained on windows of a few
bars does not learn: left to itself it never plays a bar twice. So `train` also
learns, from the training pieces, how their bars recur: a Markov chain over each
bar's *state*, 0 for new music or d for "the bar d bars back, again" (the same notes
at the same places), given the bar before's state (`learn_form`). A strain repeated
eight bars later is a run of states 8; a sequence of bar-long motifs, a run of 1s.

A chain of order one forgets where it is in the piece: it cannot learn that the
repeat of an 8-bar strain starts on bar 9, so its plans scatter short repeats where
the corpus has strains. So `learn_form` also keeps the training pieces' own
sequences of states (`templates`, their *forms*: which bar repeats which, never a
note), and a generated piece takes the form of one of them, drawn at random, as
its plan. A piece longer than its template goes on in sections: another form
drawn, its distances counted from where it starts (a second chorale's Stollen
after the first's). Only a model that kept no templates plans by the chain.

While a piece is generated with `--form-bias B`, each row follows its plan, one
bar's state at every bar line (`BarCopier`). In a bar that comes back, the token
that came next at the same place of the bar d bars back gets B added to its logit:
the model still chooses, and where it writes something else, the copy waits for the
next point in time the source bar has a token at and goes on from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from musicgen.listen.form import bar_contents
from musicgen.midi.score import Score

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


def learn_form_of(docs: Iterable[np.ndarray], vocab) -> FormPrior:
    """The form of a dataset's pieces (compact ids of `vocab`), as `train` stores it."""
    from musicgen.tokens.encoding import decode

    return learn_form(decode(vocab.to_universal(d), vocab.cfg)[0] for d in docs)


class BarCopier:
    """One row's form while it is generated: the music tokens of every bar so far, each
    with the place in the bar it came at; the state of the current bar; and, while it
    comes back, where in the bar it copies the model stands.

    A primer is read first with no plan (its bars are what they are); `start` draws the
    form to follow from the current bar on (templates, section after section; or the
    chain, from the state the last whole bar turned out to have)."""

    def __init__(
        self, prior: FormPrior, bias: float, music: np.ndarray, settings: np.ndarray | None = None
    ):
        self.prior, self.bias = prior, bias
        self.music = music  # per compact id: a token of the body (not BOS, line-up, metre, tempo)
        # per compact id: a Prog or Vel, which the grammar refuses where it restates the value
        # in force (the first bar sets the level a repeat of it already has)
        self.settings = settings if settings is not None else np.zeros_like(music)
        self.rng: np.random.Generator | None = None
        self.form: tuple[int, ...] | None = None  # the template followed, bar by bar ...
        self.form_start = 0  # ... from this bar on
        self.bars: list[list[tuple[int, int]]] = [[]]  # per bar: (position in the bar, token)
        self.state = 0
        self.at: int | None = None  # index into the source bar; None while waiting
        self._bar_key = (0, 0)  # (the metre's origin, bars since it)
        self._step = self._position = 0

    def start(self, rng: np.random.Generator) -> None:
        self.rng = rng
        bar = len(self.bars) - 1
        self.form = self.prior.template(bar, rng)
        if self.form is None and self.prior.templates:  # a primer longer than every form
            self.form, self.form_start = self.prior.template(0, rng), bar
        self.state = self._next_state(self._played_state(bar - 1) if bar else 0, bar)
        self._align(self._position)

    def _next_state(self, previous: int, bar: int) -> int:
        """Bar `bar`'s state: the template's; past its end, the next section's; with no
        templates, the chain's."""
        if self.form is not None and bar - self.form_start >= len(self.form):
            self.form, self.form_start = self.prior.template(0, self.rng), bar
        if self.form is not None:
            return self.form[bar - self.form_start]
        return self.prior.draw(previous, bar, self.rng) if bar else 0

    def _played_state(self, i: int) -> int:
        """The nearest earlier bar bar `i` equals, in bars back (0: none, or it is empty)."""
        top = min(i, len(self.prior.transitions) - 1)
        return next(
            (d for d in range(1, top + 1) if self.bars[i] and self.bars[i - d] == self.bars[i]), 0
        )

    @property
    def source(self) -> list[tuple[int, int]] | None:
        return self.bars[len(self.bars) - 1 - self.state] if self.state else None

    def push(self, token: int, position: int, stream) -> None:
        """Record `token`, played at `position` in the bar; `stream` has read it."""
        token = int(token)
        if self.music[token]:
            self.bars[-1].append((position, token))
            source = self.source
            if source is not None and self.at is not None:
                followed = self.at < len(source) and source[self.at][1] == token
                self.at = self.at + 1 if followed else None
        key = (stream.bar_origin, (stream.step - stream.bar_origin) // max(stream.bar_steps, 1))
        moved = stream.step != self._step
        if moved and key != self._bar_key:  # time reached or passed a bar line
            crossed = key[1] - self._bar_key[1] if key[0] == self._bar_key[0] else 1
            for _ in range(max(crossed, 1)):
                self.bars.append([])
                bar = len(self.bars) - 1
                self.state = self._next_state(self.state, bar) if self.rng else 0
            self._align(stream.bar_position)
        elif moved and self.at is None:
            self._align(stream.bar_position)
        # a metre set on a bar line moves the origin only: the same bar
        self._bar_key, self._step, self._position = key, stream.step, stream.bar_position

    def _align(self, position: int) -> None:
        """Copy on from the first token the source bar has at `position`, if it has one."""
        source = self.source
        self.at = None
        if source is None:
            return
        for i, (at, _) in enumerate(source):
            if at == position:
                self.at = i
                return

    def suggestion(self, allowed=None) -> int | None:
        """The token the bar repeated had next, if the copy is on; `allowed(token)`, the
        grammar, lets it step over a Prog or Vel that the copy already has in force."""
        source = self.source
        if source is None or self.at is None:
            return None
        while (
            allowed is not None
            and self.at < len(source)
            and self.settings[source[self.at][1]]
            and not allowed(source[self.at][1])
        ):
            self.at += 1
        return source[self.at][1] if self.at < len(source) else None
