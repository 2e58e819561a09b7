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
        self.index: dict[tuple, int] = {}  # key -> the latest position it ended at

    def _key(self, bar_position: int) -> tuple | None:
        if len(self.tokens) < self.context:
            return None
        return (*self.tokens[-self.context :], bar_position)

    def push(self, token: int, bar_position: int) -> None:
        """Append a token; `bar_position` is where in the bar the piece stands after it."""
        self.tokens.append(int(token))
        self._pending = self._key(bar_position)

    def suggestion(self) -> int | None:
        """The token that followed the current context the last time it occurred, if it did;
        then the current context is remembered for later (after the lookup: not itself)."""
        key = getattr(self, "_pending", None)
        if key is None:
            return None
        earlier = self.index.get(key)
        self.index[key] = len(self.tokens) - 1
        self._pending = None
        if earlier is None or earlier + 1 >= len(self.tokens):
            return None
        return self.tokens[earlier + 1]
