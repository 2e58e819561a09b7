"""Interpolated Kneser-Ney n-gram model: the honest baseline for the neural models.

Smoothing follows Chen & Goodman (1998), "An empirical study of smoothing
techniques for language modeling" (TR-10-98, Harvard), interpolated form with
one absolute discount per level, estimated as D = n1 / (n1 + 2 n2) where n_r is
the number of n-grams seen exactly r times at that level (their eq. 26):

    P_k(w | h) = max(c(h w) - D, 0) / c(h .)  +  D N1+(h .) / c(h .) * P_{k-1}(w | h')

h' drops the oldest token of h. The top level of an order-k model uses raw
counts; the levels below use continuation counts N1+(. h w) (distinct left
extensions). Level 1 interpolates with the uniform distribution over the
vocabulary, so every token, even one never seen, has nonzero probability. A
context never seen in training (c(h .) = 0) backs off fully to the level below.

N-grams are stored without hashing collisions: the j-gram ending at a position
gets a dense integer id from the pair (id of its (j-1)-token prefix, last
token), so every level is one ``np.unique`` over int64 codes at fit time and
one ``np.searchsorted`` at evaluation time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

# Without singletons the estimate is 0, which would give unseen events zero
# probability; the floor keeps some mass for them in degenerate corpora.
MIN_DISCOUNT = 0.1


def _discount(counts: np.ndarray) -> float:
    n1 = np.count_nonzero(counts == 1)
    n2 = np.count_nonzero(counts == 2)
    d = n1 / (n1 + 2 * n2) if n1 else 0.0
    return float(min(max(d, MIN_DISCOUNT), 1.0))


class _Level:
    """Counts for the n-grams of one length j, indexed by dense n-gram id."""

    def __init__(self, keys: np.ndarray, base: int, n_parents: int):
        self.keys = keys  # sorted codes: prefix_id * base + last_token
        self.parents = keys // base  # id of the (j-1)-token context
        self.n_parents = n_parents
        # Per count type ("raw" / "cont"): (counts, discount, context total, context N1+).
        self.stats: dict[str, tuple[np.ndarray, float, np.ndarray, np.ndarray]] = {}

    def add_counts(self, kind: str, counts: np.ndarray, discount: float | None) -> None:
        d = _discount(counts) if discount is None else discount
        total = np.bincount(self.parents, weights=counts, minlength=self.n_parents)
        n1p = np.bincount(self.parents, weights=counts > 0, minlength=self.n_parents)
        self.stats[kind] = (counts, d, total, n1p)

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Dense ids of the given codes, -1 where the n-gram was never seen."""
        idx = np.searchsorted(self.keys, codes)
        idx = np.minimum(idx, len(self.keys) - 1)
        return np.where(self.keys[idx] == codes, idx, -1)

    def weights(self, kind: str, ctx: np.ndarray, gram: np.ndarray):
        """(alpha, gamma) so that P = alpha + gamma * P_lower, per position."""
        counts, d, total, n1p = self.stats[kind]
        seen_ctx = ctx >= 0
        t = np.where(seen_ctx, total[np.maximum(ctx, 0)], 0.0)
        n = np.where(seen_ctx, n1p[np.maximum(ctx, 0)], 0.0)
        c = np.where(gram >= 0, counts[np.maximum(gram, 0)], 0.0)
        has = t > 0
        safe_t = np.where(has, t, 1.0)
        alpha = np.where(has, np.maximum(c - d, 0.0) / safe_t, 0.0)
        gamma = np.where(has, d * n / safe_t, 1.0)  # unseen context: all mass to lower level
        return alpha, gamma


class KneserNey:
    """Interpolated Kneser-Ney n-gram model over token ids 0..vocab_size-1.

    One fit serves every order 1..max_order: the order-k model uses raw counts
    at level k and continuation counts below it (Chen & Goodman 1998, sec. 2.7).
    Each piece is padded at the start with max_order-1 copies of a start symbol
    (id ``vocab_size``) that is conditioned on but never predicted, so contexts
    never cross piece boundaries.
    """

    def __init__(self, max_order: int = 8, *, vocab_size: int, discount: float | None = None):
        if max_order < 1:
            raise ValueError(f"max_order must be >= 1, got {max_order}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if discount is not None and not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.max_order = max_order
        self.vocab_size = vocab_size
        self.discount = discount
        self.start = vocab_size
        self._base = vocab_size + 1
        self._levels: list[_Level] = []

    def _pad(self, sequences: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated start-padded pieces, and each token's position within its padded piece."""
        pad = self.max_order - 1
        toks, poss = [], []
        for seq in sequences:
            seq = np.asarray(seq)
            if seq.ndim != 1:
                raise ValueError(f"each sequence must be 1-D, got shape {seq.shape}")
            if seq.size and (
                not np.issubdtype(seq.dtype, np.integer)
                or seq.min() < 0
                or seq.max() >= self.vocab_size
            ):
                raise ValueError(f"tokens must be integers in [0, {self.vocab_size})")
            toks.append(np.full(pad, self.start, dtype=np.int64))
            toks.append(seq.astype(np.int64))
            poss.append(np.arange(pad + seq.size))
        if not toks:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(toks), np.concatenate(poss)

    def fit(self, sequences: Iterable[np.ndarray]) -> KneserNey:
        """Count n-grams of every length up to max_order; each sequence is one piece."""
        tok, pos = self._pad(sequences)
        real = pos >= self.max_order - 1
        if not real.any():
            raise ValueError("cannot fit on no tokens")
        self._levels = []
        prev = np.zeros_like(tok)  # id of the empty prefix, for level 1
        ids_by_level = []
        for j in range(1, self.max_order + 1):
            # The j-gram ending at p is fully inside its padded piece iff pos >= j-1.
            valid = pos >= j - 1
            prefix = np.roll(prev, 1) if j > 1 else prev
            codes = prefix[valid] * self._base + tok[valid]
            keys, inverse = np.unique(codes, return_inverse=True)
            ids = np.full_like(tok, -1)
            ids[valid] = inverse.ravel()
            n_parents = len(self._levels[-1].keys) if self._levels else 1
            level = _Level(keys, self._base, n_parents)
            raw = np.bincount(ids[real], minlength=len(keys)).astype(float)
            level.add_counts("raw", raw, self.discount)
            self._levels.append(level)
            ids_by_level.append(ids)
            prev = ids
        # Continuation count of a j-gram: distinct (j+1)-grams it is the suffix of.
        for j in range(1, self.max_order):
            longer = np.unique(ids_by_level[j][real], return_index=True)[1]
            suffix = ids_by_level[j - 1][real][longer]
            cont = np.bincount(suffix, minlength=len(self._levels[j - 1].keys)).astype(float)
            self._levels[j - 1].add_counts("cont", cont, self.discount)
        return self

    def _all_log2_probs(self, sequences: Iterable[np.ndarray]) -> np.ndarray:
        """log2 P_k(token | context) for every order k (rows) and every real token (columns)."""
        if not self._levels:
            raise RuntimeError("fit the model before evaluating it")
        tok, pos = self._pad(sequences)
        real = pos >= self.max_order - 1
        lower = np.full(real.sum(), 1.0 / self.vocab_size)  # continuation chain, level j-1
        ctx = np.zeros_like(tok)  # id of the (j-1)-gram ending just before each position
        out = np.empty((self.max_order, real.sum()))
        for j, level in enumerate(self._levels, start=1):
            valid = pos >= j - 1
            prefix = np.roll(ctx, 1) if j > 1 else ctx
            gram = np.full_like(tok, -1)
            known = valid & (prefix >= 0)
            gram[known] = level.lookup(prefix[known] * self._base + tok[known])
            c, g = prefix[real], gram[real]
            alpha, gamma = level.weights("raw", c, g)
            out[j - 1] = np.log2(alpha + gamma * lower)
            if j < self.max_order:
                alpha, gamma = level.weights("cont", c, g)
                lower = alpha + gamma * lower
            ctx = gram
        return out

    def log2_probs(self, sequence: np.ndarray, order: int) -> np.ndarray:
        """Per-token log2 P(token | previous order-1 tokens), first token conditioned on start."""
        self._check_order(order)
        return self._all_log2_probs([sequence])[order - 1]

    def evaluate(
        self, sequences: Iterable[np.ndarray], orders: Iterable[int] | None = None, given: int = 0
    ) -> dict[int, float]:
        """Total bits (-sum log2 P) for each order, in one pass over the data, of every token
        but each sequence's first `given` (BOS is given to every model, never predicted)."""
        orders = list(range(1, self.max_order + 1)) if orders is None else list(orders)
        for k in orders:
            self._check_order(k)
        seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
        lp = self._all_log2_probs(seqs)  # (orders, tokens of all sequences)
        keep = (
            np.concatenate([np.arange(len(q)) >= given for q in seqs])
            if seqs
            else np.zeros(0, bool)
        )
        bits = -lp[:, keep].sum(axis=1)
        return {k: float(bits[k - 1]) for k in orders}

    def next_log2_probs(self, context: list[int], candidates: np.ndarray, order: int) -> np.ndarray:
        """log2 P(c | the last order - 1 tokens of `context`) for each candidate token c."""
        self._check_order(order)
        ctx = list(context[-(order - 1) :]) if order > 1 else []
        seqs = [np.array([*ctx, int(c)], dtype=np.int64) for c in candidates]
        lp = self._all_log2_probs(seqs)[order - 1]  # one column per token of the sequences
        return lp[np.cumsum([len(q) for q in seqs]) - 1]

    def _check_order(self, order: int) -> None:
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order must be in 1..{self.max_order}, got {order}")


def best_order(bits_by_order: dict[int, float]) -> int:
    """The order with the fewest held-out bits; ties go to the smaller (cheaper) order."""
    if not bits_by_order:
        raise ValueError("no orders to choose from")
    return min(bits_by_order, key=lambda k: (bits_by_order[k], k))


class NgramCore(nn.Module):
    """A fitted Kneser-Ney model of one order behind the cores' interface,
    `(tokens (B, T), state) -> (logits (B, T, V), state)`, so `generate_songs` samples
    it as it samples the neural models. Only the last position's logits are computed
    (the decode loop reads no other); the state is each row's last order - 1 tokens."""

    recurrent = True

    def __init__(self, lm: KneserNey, order: int):
        super().__init__()
        self.lm, self.order = lm, order
        self.register_buffer("_device", torch.zeros(0), persistent=False)  # where the logits go

    def forward(self, tokens: torch.Tensor, state: list[list[int]] | None = None):
        b, t = tokens.shape
        rows = tokens.tolist()
        contexts = [
            ((state[i] if state is not None else []) + rows[i])[-(self.order - 1) :]
            if self.order > 1
            else []
            for i in range(b)
        ]
        V = self.lm.vocab_size
        logits = torch.zeros(b, t, V, dtype=torch.float64, device=self._device.device)
        every = np.arange(V)
        for i, ctx in enumerate(contexts):
            logits[i, -1] = torch.from_numpy(
                self.lm.next_log2_probs(ctx, every, self.order) * math.log(2)
            )
        return logits, contexts

    def trim_state(self, state):
        return state


def ngram_model(lm: KneserNey, order: int, vocab):
    """A `LoadedModel` of the n-gram: `generate_songs` and the compare page take it as they
    take a trained model."""
    from pathlib import Path

    from musicgen.checkpoint import LoadedModel

    return LoadedModel(NgramCore(lm, order).eval(), None, vocab, {}, Path(f"{order}-gram"))
