"""The rules base: a batch in which every row follows its own stream interpreter.

Every task constrains decoding the same way: each row reads its tokens through a
`Stream` (tokens/stream.py), the grammar says what may come next there, and the task
adds its own rule: a length target (length.py), a span's end (infill.py), a kept
part written in at its steps (accompany.py). `RowRules` holds what they share: the
streams, which rows are finished, the stacking of per-row masks and pulls into the
(B, V) tensors the decoder's loop takes, and the padding of finished rows. A task
says only what one row may take next (`allowed`), what pulls it (`pulls`) and what a
token does to it (`take`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def follow(
    vocab, uids: np.ndarray, batch: int, *, end_header: bool = False, passage: bool = False
) -> list:
    """`batch` streams that have read `uids` (universal ids): the header closed if
    `end_header` (the line-up is fixed), a passage begun if `passage` (a middle)."""
    streams = []
    for _ in range(batch):
        stream = vocab.stream()
        stream.feed_all(uids)
        if end_header:
            stream.end_header()
        if passage:
            stream.begin_passage()
        streams.append(stream)
    return streams


class RowRules:
    """Per-row rules of a batch decode (see the module docstring).

    Subclasses implement `allowed(b)` and `take(b, token)`; `pulls(b)` if they bias the
    draw, with `pulling` True. Finished rows are never asked: their draw is padding."""

    pulling = False  # does `pulls` ever name a token? (else `bias` is None: no (B, V) zeros)

    def __init__(self, vocab, streams: Iterable):
        self.vocab = vocab
        self.streams = list(streams)
        self.done = np.zeros(len(self.streams), dtype=bool)

    # --- what a task says about one row --------------------------------------------------
    def allowed(self, b: int) -> np.ndarray:
        """Bool over compact ids: what row `b` may take next."""
        raise NotImplementedError

    def pulls(self, b: int) -> Iterable[tuple[int, float]]:
        """(compact id, logit added) pairs for row `b`'s next draw."""
        return ()

    def take(self, b: int, token: int) -> bool:
        """Row `b` took `token` (compact id); is it finished?"""
        raise NotImplementedError

    # --- what the decoder's loop calls (musicgen.generate.decoder.Rules) ------------------
    def mask(self) -> torch.Tensor:
        """(B, V) bool; a finished row allows everything, its draw replaced by padding."""
        rows = [
            np.ones(len(self.vocab), dtype=bool) if done else self.allowed(b)
            for b, done in enumerate(self.done)
        ]
        return torch.from_numpy(np.stack(rows))

    def bias(self) -> torch.Tensor | None:
        """(B, V) logits added before the draw, or None when nothing pulls."""
        if not self.pulling:
            return None
        out = torch.zeros(len(self.streams), len(self.vocab))
        for b, done in enumerate(self.done):
            if not done:
                for token, amount in self.pulls(b):
                    out[b, token] += amount
        return out

    def update(self, new: torch.Tensor) -> torch.Tensor:
        """Each unfinished row takes its new token; (B,) bool: the finished rows."""
        for b, token in enumerate(new.cpu().tolist()):
            if not self.done[b]:
                self.done[b] = self.take(b, token)
        return torch.from_numpy(self.done.copy())
