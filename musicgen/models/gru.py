"""Stacked GRU core: embedding -> GRU -> dropout -> LayerNorm -> head."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from musicgen.config import ModelConfig


class GRUCore(nn.Module):
    """Plain recurrent core. State: hidden `h` of shape (n_layers, B, d_model).

    The recurrence carries everything, so the state never grows and generation
    can run forever without trimming.
    """

    recurrent = True  # by default it carries its state from one training window to the next

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.emb = nn.Embedding(cfg.vocab_size, d)
        self.drop = nn.Dropout(cfg.dropout)
        # nn.GRU warns when given dropout with a single layer (it would do nothing).
        inner_dropout = cfg.dropout if cfg.n_layers > 1 else 0.0
        self.rnn = nn.GRU(d, d, cfg.n_layers, batch_first=True, dropout=inner_dropout)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        # Entries of std 1/sqrt(D) give the head logits of std ~1 at the start, and
        # the input side multiplies by sqrt(D) so the GRU still gets unit-scale inputs
        # (as in Vaswani et al. 2017); tiny inputs made the GRU slow to use the token.
        self.in_scale = math.sqrt(d)
        nn.init.normal_(self.emb.weight, std=d**-0.5)
        if cfg.tie_embeddings:
            self.head.weight = self.emb.weight
        else:
            nn.init.normal_(self.head.weight, std=d**-0.5)

    def recur(self, tokens: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """Run the GRU over all T steps in one call (no Python loop over time)."""
        x = self.drop(self.emb(tokens) * self.in_scale)  # (B, T, D)
        return self.rnn(x, h)  # (B, T, D), (L, B, D)

    def project(self, o: Tensor) -> Tensor:
        return self.head(self.norm(self.drop(o)))  # (B, T, V)

    def forward(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        o, h = self.recur(tokens, state)
        return self.project(o), h

    def trim_state(self, state: Tensor) -> Tensor:
        return state

    def restart_rows(self, state: Tensor, fresh: Tensor) -> Tensor:
        """The state with the rows marked `fresh` (B,) bool starting from nothing (a new piece)."""
        return (
            state * (~fresh).to(state.dtype)[None, :, None]
        )  # (L, B, D); zeros are the GRU's start

    def unread(self, before: Tensor, after: Tensor, rows: Tensor) -> Tensor:
        """`after` (the state after one more token) with the rows marked `rows` (B,) bool
        back as they were `before` it: for them the token was never read."""
        return torch.where(rows[None, :, None], before, after)  # (L, B, D)
