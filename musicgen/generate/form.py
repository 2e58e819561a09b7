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

import numpy as np

from musicgen.analysis.form import FormPrior


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
