"""Turning a core's logits into tokens: temperature, top-k, nucleus (top-p), grammar masks.
The loop that calls a core step by step is decoder.py's.

The filters are pure functions on a logits tensor (..., V); randomness only enters through
the `generator` handed to `sample`, so a seeded generator reproduces a piece exactly.

Nucleus sampling: Holtzman, Buys, Du, Forbes and Choi, "The Curious Case of Neural Text
Degeneration", ICLR 2020.
"""

from __future__ import annotations

import torch

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


__all__ = [
    "apply_temperature",
    "check_sampling_args",
    "sample",
    "top_k_filter",
    "top_p_filter",
]
