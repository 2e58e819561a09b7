"""GRU with global attention over its own past outputs.

Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine
Translation": the "general" score score(o_t, o_s) = (W_a o_t) . o_s (here scaled by
1/sqrt(d_model)), a softmax over s <= t (causal, the current step included), context
c_t = sum_s a_ts o_s, and the attentional output tanh(W_c [c_t; o_t]) fed to the head.
All T steps are attended in one batched call, so training has no loop over time.

Window: each step attends to at most `window = cfg.attn_window or cfg.max_len` outputs,
itself included. Training windows are max_len long, so with the default the model only
ever sees spans it was trained on. When generating past the window it attends only to
the last `window` outputs; a full forward longer than the window uses the same banded
mask, so cached and uncached runs agree at any length.

State (a tuple): (h, memory) with h the GRU hidden (n_layers, B, d_model) and memory the
newest earlier GRU outputs (B, M, d_model), M <= window - 1; in training on whole pieces
also `start` (B,), the first memory slot of each row's own piece (see `restart_rows`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicgen.config import ModelConfig
from musicgen.models.gru import GRUCore
from musicgen.models.transformer import own_piece, unread_slots, unread_start, window_mask

State = tuple[Tensor, Tensor]


class GRUAttentionCore(GRUCore):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        d = cfg.d_model
        self.window = cfg.attn_window or cfg.max_len
        self.score = nn.Linear(d, d, bias=False)  # W_a
        self.combine = nn.Linear(2 * d, d, bias=False)  # W_c

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        h, memory, *start = state if state is not None else (None, None)
        o, h = self.recur(tokens, h)  # (B, T, D), (L, B, D)
        t = o.size(1)
        keys = o if memory is None else torch.cat((memory, o), dim=1)  # (B, S, D)
        s = keys.size(1)
        if s == t and t <= self.window:
            mask = None
        else:
            mask = window_mask(t, s, self.window, tokens.device)  # (T, S)
        if start:  # rows that began a new piece see none of the memory before it
            mask = own_piece(
                mask if mask is not None else window_mask(t, s, self.window, tokens.device),
                start[0],
            )  # (B, 1, T, S)
        # One "head": unsqueeze to (B, 1, ., D) for scaled_dot_product_attention.
        context = F.scaled_dot_product_attention(
            self.score(o).unsqueeze(1),
            keys.unsqueeze(1),
            keys.unsqueeze(1),
            attn_mask=mask,
            is_causal=mask is None,
        ).squeeze(1)  # (B, T, D)
        attended = torch.tanh(self.combine(torch.cat((context, o), dim=-1)))  # (B, T, D)
        return self.project(attended), self.trim_state((h, keys, *start))

    def trim_state(self, state: State) -> State:
        """Keep the newest window - 1 outputs so the next step sees at most `window`."""
        h, memory, *start = state
        drop = max(0, memory.size(1) - (self.window - 1))
        return (
            h,
            memory[:, drop:],
            *[(st - drop).clamp(min=0) for st in start],
        )  # (B, <= window - 1, D)

    def unread(self, before: State, after: State, rows: Tensor) -> State:
        """`after` (the state after one more token) with the rows marked `rows` (B,) bool as
        if they never read it: their hidden state as before, their memory moved one place
        on behind a hidden blank (see transformer.unread_slots)."""
        h_b, mem_b, *start_b = before
        h_a, mem_a, *start_a = after
        start = unread_start(
            start_b[0] if start_b else None,
            start_a[0] if start_a else None,
            rows,
            mem_b.size(1),
            mem_a.size(1),
        )
        return super().unread(h_b, h_a, rows), unread_slots(mem_b, mem_a, rows), start

    def restart_rows(self, state: State, fresh: Tensor) -> State:
        """Rows marked `fresh` (B,) start from nothing: a zero hidden state, and their memory
        out of sight (their own piece starts after the memory held now)."""
        h, memory, *start = state
        start = (
            start[0]
            if start
            else torch.zeros(memory.size(0), dtype=torch.long, device=memory.device)
        )
        return super().restart_rows(h, fresh), memory, torch.where(fresh, memory.size(1), start)
