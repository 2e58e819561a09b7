"""Repetition-aware sampling: music comes back, so let the piece's own past pull.

Where the piece's last `context` tokens, at the same place in the bar, occurred
before in the same piece, the token that followed them then gets `bias` added
to its logit. Nothing is copied outright: the model still chooses, but a phrase
it starts to play again is drawn towards going on as it went before, aligned
with the bar, which is how strains, refrains and sequences return. With bias 0
(or no earlier match) sampling is the model's own. The strength is chosen by
`benchmarks/form.py` against the repetition statistics of real music.
"""

from __future__ import annotations


class RepeatMemory:
    """The token history of one piece, indexed by (its last `context` tokens, bar position)."""

    def __init__(self, context: int, bias: float):
        self.context, self.bias = context, bias
        self.tokens: list[int] = []
        self.index: dict[tuple, int] = {}  # key -> where the latest context with it ended
        self._current: tuple | None = None  # the key of the context ending at the last token

    def push(self, token: int, bar_position: int) -> None:
        """Append a token; `bar_position` is where in the bar the piece stands after it.

        The context before it is indexed now that its follower is known, so a lookup
        never finds the current context itself, and a primer's contexts count too."""
        if self._current is not None:
            self.index[self._current] = len(self.tokens) - 1
        self.tokens.append(int(token))
        self._current = (
            (*self.tokens[-self.context :], bar_position)
            if len(self.tokens) >= self.context
            else None
        )

    def suggestion(self) -> int | None:
        """The token that followed the current context the last time it occurred, if it did."""
        earlier = self.index.get(self._current) if self._current is not None else None
        return None if earlier is None else self.tokens[earlier + 1]


class LoopGuard:
    """Keeps a piece out of loops longer than its corpus plays: a pitch that would make one
    pattern of 1..`max_period` pitches repeat over more than `limit` notes is not drawn.

    Models that attend to their own past (gru-attn above all) learn that copying pays:
    written-out repeats make it the cheapest way to predict a tune. Sampled, the same habit
    plays a two-to-four-note figure over and over: the folk gru-attn fine-tune's pieces
    held one pattern for 23 notes on average where the real tunes' longest is 5. The
    stretch is measured as `analysis.features.longest_repeat_run` measures it, on the
    pitch tokens in the order they come (drums, timing and loudness are not pitches)."""

    def __init__(self, limit: int, max_period: int):
        self.limit, self.max_period = limit, max_period
        self.pitches: list[int] = []
        # run[p]: how many of the latest pitches each equal the one p before them
        self.run = [0] * (max_period + 1)

    def push(self, pitch: int) -> None:
        for p in range(1, self.max_period + 1):
            same = len(self.pitches) >= p and self.pitches[-p] == pitch
            self.run[p] = self.run[p] + 1 if same else 0
        self.pitches.append(pitch)

    def refused(self) -> set[int]:
        """The pitches that would stretch a repeating pattern past `limit` notes."""
        out = set()
        for p in range(1, min(self.max_period, len(self.pitches)) + 1):
            run = self.run[p] + 1  # with the pitch p back played again
            if run >= p and run + p > self.limit:
                out.add(self.pitches[-p])
        return out
