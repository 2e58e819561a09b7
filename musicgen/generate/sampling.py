"""Turning a core's logits into tokens: temperature, top-k, nucleus (top-p), grammar masks,
and the decode loop that calls a core step by step.

The filters are pure functions on a logits tensor (..., V); randomness only enters through
the `generator` handed to `sample`, so a seeded generator reproduces a piece exactly.

Nucleus sampling: Holtzman, Buys, Du, Forbes and Choi, "The Curious Case of Neural Text
Degeneration", ICLR 2020.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

NEG_INF = float("-inf")

# Masses within this of p count as reaching p, so float rounding (softmax of log 0.5 and
# log 0.3 summing to 0.79999...) cannot pull an extra token into the nucleus.
_MASS_TOL = 1e-6


def check_sampling_args(temperature: float, top_k: int, top_p: float) -> None:
    """Raise ValueError for settings `sample` cannot honour (NaN fails every check)."""
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if not top_k >= 0:
        raise ValueError(f"top_k must be >= 0 (0 means off), got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 means off), got {top_p}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by `temperature` (> 0): below 1 sharpens, above 1 flattens.

    Temperature 0 (greedy) has no finite logits, so `sample` handles it with argmax instead.
    """
    if not temperature > 0:
        raise ValueError(
            f"apply_temperature needs temperature > 0, got {temperature}; "
            "use sample(..., temperature=0) for greedy decoding"
        )
    if temperature == 1.0:
        return logits
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest logits in each row, set the rest to -inf. k=0 (or k >= V) is off.

    Exactly k survive: among equal logits at the cut the lower token id wins, so the
    result never depends on how a sort orders ties.
    """
    if k < 0:
        raise ValueError(f"top_k must be >= 0 (0 means off), got {k}")
    if k == 0 or k >= logits.size(-1):
        return logits
    order = logits.argsort(dim=-1, descending=True, stable=True)  # (..., V)
    return logits.scatter(-1, order[..., k:], NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration").

    Keep the smallest set of highest-probability tokens whose total probability reaches p,
    always at least the top token; the rest become -inf. p=1 is off. Ties at the cut are
    broken toward the lower token id, as in `top_k_filter`.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 means off), got {p}")
    if p == 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True, stable=True)  # (..., V)
    # float64 so the running sum over a large vocabulary does not drift past the tolerance
    probs = sorted_logits.double().softmax(dim=-1)  # (..., V)
    mass_before = probs.cumsum(dim=-1) - probs  # (..., V) mass of strictly better tokens
    drop = mass_before >= p - _MASS_TOL  # (..., V) the set already reached p without it
    drop[..., 0] = False
    return logits.scatter(-1, order, sorted_logits.masked_fill(drop, NEG_INF))


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw one token per row of `logits` (..., V); returns a LongTensor (...).

    `mask` (bool, broadcastable to logits, True = allowed) is applied first, so
    temperature, top-k and top-p (nucleus, Holtzman et al. 2020) only ever see and
    renormalise over allowed tokens. Temperature 0 is greedy: argmax of the allowed
    logits, lowest id on ties, drawing nothing from `generator`.
    """
    check_sampling_args(temperature, top_k, top_p)
    # half-precision softmax loses the small probabilities top-p adds up
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = allowed), got {mask.dtype}")
        try:
            fits = torch.broadcast_shapes(mask.shape, logits.shape) == logits.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to logits "
                f"of shape {tuple(logits.shape)}"
            )
        logits = logits.masked_fill(~mask, NEG_INF)
    empty = (logits == NEG_INF).all(dim=-1)  # (...)
    if empty.any():
        rows = empty.reshape(-1).nonzero().flatten().tolist()
        reason = "the mask allows no token" if mask is not None else "every logit is -inf"
        raise ValueError(f"cannot sample: {reason} in row(s) {rows[:10]}")

    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)
    probs = logits.softmax(dim=-1).reshape(-1, logits.size(-1))  # (N, V)
    tokens = torch.multinomial(probs, 1, generator=generator)  # (N, 1)
    return tokens.reshape(logits.shape[:-1])


StopFn = Callable[[torch.Tensor, int], torch.Tensor]


class Rules(Protocol):
    """What a caller that follows the sequence (a grammar, length targets) tells the loop."""

    def mask(self) -> torch.Tensor:
        """(B, V) bool: the tokens each row may take next."""

    def update(self, new: torch.Tensor) -> torch.Tensor:
        """Take the new tokens (B,); return (B,) bool: the rows that are finished."""

    def bias(self) -> torch.Tensor | None:
        """(B, V) added to the logits before sampling, or None."""


@torch.no_grad()
def generate(
    core: nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    allowed_next: torch.Tensor | None = None,
    stop: StopFn | None = None,
    rules: Rules | None = None,
    pad_id: int = 0,
    use_cache: bool = True,
    context_len: int | None = None,
) -> torch.Tensor:
    """Extend `prompt` (B, T0) by up to `max_new_tokens`; returns (B, T0 + n), prompt first.

    `core(tokens (B, T), state) -> (logits (B, T, V), state)`. With `use_cache` the prompt
    runs once and each step feeds only the new token with the carried state; without it
    the whole sequence (its last `context_len` tokens if given) is re-run every step.

    `allowed_next` (V, V) bool is a grammar: row i marks the tokens allowed after token i.
    `stop(new_tokens (B,), step) -> (B,) bool` marks rows finished once their new token is
    appended; finished rows receive `pad_id` from then on and the loop ends when all are.
    `rules` does both at once for a caller that follows each row's state (see `Rules`).
    Sampling settings are those of `sample` (top_p is nucleus sampling, Holtzman et al. 2020).
    """
    check_sampling_args(temperature, top_k, top_p)
    if prompt.dim() != 2 or prompt.size(1) < 1:
        raise ValueError(f"prompt must be (batch, time) with time >= 1, got {tuple(prompt.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if context_len is not None and context_len < 1:
        raise ValueError(f"context_len must be >= 1, got {context_len}")
    if allowed_next is not None and (
        allowed_next.dtype != torch.bool
        or allowed_next.dim() != 2
        or allowed_next.size(0) != allowed_next.size(1)
    ):
        raise ValueError("allowed_next must be a square (V, V) bool tensor")

    was_training = core.training
    core.eval()
    try:
        seq = prompt.long()  # (B, T)
        finished = torch.zeros(seq.size(0), dtype=torch.bool, device=seq.device)  # (B,)
        state = None
        for step in range(max_new_tokens):
            if use_cache:
                logits, state = core(seq if step == 0 else seq[:, -1:], state)  # (B, t, V)
            else:
                window = seq if context_len is None else seq[:, -context_len:]  # (B, <=T)
                logits, _ = core(window)  # (B, t, V)
            mask = None
            if allowed_next is not None:
                mask = allowed_next[seq[:, -1]]  # (B, V)
            step_logits = logits[:, -1]  # (B, V)
            if rules is not None:
                extra = rules.bias()
                if extra is not None:
                    step_logits = step_logits + extra.to(step_logits.device)
                rule_mask = rules.mask().to(seq.device)  # (B, V)
                mask = rule_mask if mask is None else mask & rule_mask
            if mask is not None:
                # a finished row's pad may allow nothing, and its draw is discarded anyway
                mask = mask | finished[:, None]
            new = sample(step_logits, temperature, top_k, top_p, generator, mask)  # (B,)
            new = new.masked_fill(finished, pad_id)  # (B,)
            seq = torch.cat([seq, new[:, None]], dim=1)  # (B, T + 1)
            if stop is not None:
                finished = finished | torch.as_tensor(
                    stop(new, step), dtype=torch.bool, device=seq.device
                )
            if rules is not None:
                finished = finished | torch.as_tensor(
                    rules.update(new), dtype=torch.bool, device=seq.device
                )
            if finished.all():
                break
        return seq
    finally:
        core.train(was_training)


__all__ = [
    "apply_temperature",
    "check_sampling_args",
    "generate",
    "sample",
    "top_k_filter",
    "top_p_filter",
]
