"""The rules base: a batch in which every row follows its own stream interpreter.

Every task constrains decoding the same way: each row reads its tokens through a
`Stream` (tokens/stream.py), the grammar says what may come next there, and the task
adds its own rule: a length target (length.py), a span's end (infill.py), a kept
part written in at its steps (accompany.py). `RowRules` holds what they share: the
streams, which rows are finished, the stacking of per-row masks and pulls into the
(B, V) tensors the decoder's loop takes, and the padding of finished rows. A task
says only what one row may take next (`allowed`), what pulls it (`pulls`) and what a
token does to it (`take`); the base forces the controls a plan asks for at each bar
(controls.py) and keeps every other control token out.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from musicgen.generate.controls import ControlPlan, PlanFollower


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

    def __init__(
        self,
        vocab,
        streams: Iterable,
        plan: ControlPlan | list[ControlPlan] | None = None,
        first_bar: int | None = None,
    ):
        self.vocab = vocab
        self.streams = list(streams)
        self.done = np.zeros(len(self.streams), dtype=bool)
        # the controls asked for, forced where each row's stream enters a bar; the model
        # never draws a control of its own (it never learnt to predict them). One plan for
        # every row, or one per row (a drawn texture each): the same key and asked levels
        plans = plan if isinstance(plan, list) else [plan] * len(self.streams)
        self.plan = (
            [PlanFollower(p, vocab, s, first_bar) for p, s in zip(plans, self.streams, strict=True)]
            if plans and plans[0]
            else None
        )
        self.free = ~vocab.control_mask
        plan = plans[0] if plans else None
        pull = plan.pitch_bias(vocab) if plan else None  # an asked key's pull on every pitch
        self.key_pull = torch.from_numpy(pull) if pull is not None else None

    def guided(self) -> np.ndarray | None:
        """Bool over compact ids: the control tokens `--guidance` guides on (None: no plan)."""
        return self.plan[0].plan.guided(self.vocab) if self.plan else None

    def forced(self, b: int) -> int | None:
        """The control row `b` must take next, if the plan asks for one here."""
        return self.plan[b].next(self.streams[b]) if self.plan is not None else None

    # --- what a task says about one row --------------------------------------------------
    def allowed(self, b: int) -> np.ndarray:
        """Bool over compact ids: what row `b` may take next."""
        raise NotImplementedError

    def pulls(self, b: int) -> Iterable[tuple[int | np.ndarray, float]]:
        """(compact id, or an array of them, logit added) pairs for row `b`'s next draw."""
        return ()

    def take(self, b: int, token: int) -> bool:
        """Row `b` took `token` (compact id); is it finished?"""
        raise NotImplementedError

    # --- what the decoder's loop calls (musicgen.generate.decoder.Rules) ------------------
    def mask(self) -> torch.Tensor:
        """(B, V) bool; a finished row allows everything, its draw replaced by padding."""
        rows = []
        for b, done in enumerate(self.done):
            if done:
                rows.append(np.ones(len(self.vocab), dtype=bool))
            elif (token := self.forced(b)) is not None:
                row = np.zeros(len(self.vocab), dtype=bool)
                row[token] = True
                rows.append(row)
            else:
                rows.append(self.allowed(b) & self.free)
        return torch.from_numpy(np.stack(rows))

    def bias(self) -> torch.Tensor | None:
        """(B, V) logits added before the draw, or None when nothing pulls."""
        if not self.pulling and self.key_pull is None:
            return None
        out = torch.zeros(len(self.streams), len(self.vocab))
        for b, done in enumerate(self.done):
            if done or self.forced(b) is not None:
                continue
            if self.key_pull is not None:
                out[b] += self.key_pull
            if self.pulling:
                for token, amount in self.pulls(b):
                    out[b, token] += amount
        return out

    def update(self, new: torch.Tensor) -> torch.Tensor:
        """Each unfinished row takes its new token; (B,) bool: the finished rows."""
        for b, token in enumerate(new.cpu().tolist()):
            if self.done[b]:
                continue
            if self.vocab.control_mask[token]:  # a control moves nothing the task follows
                self.streams[b].feed(self.vocab.uids[token])
            else:
                self.done[b] = self.take(b, token)
        return torch.from_numpy(self.done.copy())
