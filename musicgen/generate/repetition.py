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
