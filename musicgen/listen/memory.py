"""Memorisation: how much of a generated piece is copied from the training corpus.

Every window of the training pieces' pitch sequences is findable by a 64-bit
polynomial hash (verified element by element, so reported runs are exact).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.analysis.features import MEMORY_KEYS, NGRAM_MEMORY, pitch_sequence
from musicgen.midi.score import Score

__all__ = ["MEMORY_KEYS", "SequenceIndex", "TrainIndex", "dataset_pitch_sequences", "memorisation"]


_B = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64
_B_INV = np.uint64(pow(int(_B), -1, 2**64))
_SENTINEL = -1000  # separates pieces; never a pitch or an interval


class SequenceIndex:
    """Every window of a set of integer sequences, findable by a 64-bit polynomial hash.

    Window hashes come from prefix sums in O(total length) per window length, are
    sorted once per length and cached; a match is then verified element by
    element, so reported runs are exact (hash collisions can only cost time).
    """

    def __init__(self, names: Sequence[str], sequences: Sequence[np.ndarray]):
        parts, owner = [], []
        for i, s in enumerate(sequences):
            parts.append(np.asarray(s, dtype=np.int64))
            parts.append(np.array([_SENTINEL]))
            owner.append(np.full(len(s) + 1, i))
        self.names = list(names)
        self.seq = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        self.owner = np.concatenate(owner) if owner else np.zeros(0, np.int64)
        self.starts = np.concatenate([[0], np.cumsum([len(s) + 1 for s in sequences])])[:-1].astype(
            np.int64
        )
        self.max_len = max((len(s) for s in sequences), default=0)
        self._prefix = _prefix_hashes(self.seq)
        self._cuts = np.concatenate([[0], np.cumsum(self.seq == _SENTINEL)])
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def windows(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(sorted hashes, start positions) of every window that stays inside one sequence."""
        if length not in self._cache:
            h = _window_hashes(self._prefix, len(self.seq), length)
            starts = np.arange(len(h))
            clean = (self._cuts[starts + length] - self._cuts[starts]) == 0
            h, starts = h[clean], starts[clean]
            order = np.argsort(h, kind="stable")
            self._cache[length] = (h[order], starts[order])
            if len(self._cache) > 32:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[length]

    def contains(self, query: np.ndarray, length: int) -> np.ndarray:
        """For each window of `query` of this length: is it (by hash) a window of the index?"""
        q = np.asarray(query, dtype=np.int64)
        if length < 1 or len(q) < length or not len(self.seq):
            return np.zeros(max(len(q) - length + 1, 0), dtype=bool)
        keys, _ = self.windows(length)
        qh = _window_hashes(_prefix_hashes(q), len(q), length)
        if not len(keys):
            return np.zeros(len(qh), dtype=bool)
        idx = np.minimum(np.searchsorted(keys, qh), len(keys) - 1)
        return keys[idx] == qh

    def find(self, query: np.ndarray, length: int) -> tuple[int, int] | None:
        """(query position, index position) of one verified common window, or None."""
        q = np.asarray(query, dtype=np.int64)
        hits = np.flatnonzero(self.contains(q, length))
        if not len(hits):
            return None
        keys, starts = self.windows(length)
        qh = _window_hashes(_prefix_hashes(q), len(q), length)
        for qi in hits.tolist():
            lo, hi = (
                np.searchsorted(keys, qh[qi], side="left"),
                np.searchsorted(keys, qh[qi], side="right"),
            )
            for pos in starts[lo:hi].tolist():
                if np.array_equal(self.seq[pos : pos + length], q[qi : qi + length]):
                    return qi, pos
        return None

    def longest_common_run(self, query: np.ndarray) -> tuple[int, int | None, int | None]:
        """(length, query position, index position) of the longest window shared with the index."""
        q = np.asarray(query, dtype=np.int64)
        lo, hi, where = 0, min(len(q), self.max_len), (None, None)
        while lo < hi:  # largest L with a common window of length L; monotone in L
            mid = (lo + hi + 1) // 2
            found = self.find(q, mid)
            if found is None:
                hi = mid - 1
            else:
                lo, where = mid, found
        if lo and where[0] is None:
            where = self.find(q, lo) or (None, None)
        return lo, where[0], where[1]

    def name_at(self, pos: int) -> str:
        return self.names[int(self.owner[pos])]


def _prefix_hashes(x: np.ndarray) -> np.ndarray:
    """S[i] = sum_{j < i} x[j] * B^-j and P[i] = B^i (mod 2**64), stacked as (2, n + 1)."""
    n = len(x)
    vals = (np.asarray(x, dtype=np.int64) + 2048).astype(
        np.uint64
    )  # sentinel and intervals stay positive
    inv_pows = np.ones(n, dtype=np.uint64)
    pows = np.ones(n + 1, dtype=np.uint64)
    if n:
        inv_pows[1:] = _B_INV
        inv_pows = np.cumprod(inv_pows, dtype=np.uint64)
        pows[1:] = _B
        pows = np.cumprod(pows, dtype=np.uint64)
    s = np.zeros(n + 1, dtype=np.uint64)
    s[1:] = np.cumsum(vals * inv_pows, dtype=np.uint64)
    return np.stack([s, pows])


def _window_hashes(prefix: np.ndarray, n: int, length: int) -> np.ndarray:
    """hash(x[i:i+L]) = B^(i+L-1) * (S[i+L] - S[i]) = sum_j x[i+j] B^(L-1-j)."""
    if length < 1 or n < length:
        return np.zeros(0, dtype=np.uint64)
    s, pows = prefix
    i = np.arange(n - length + 1)
    return pows[i + length - 1] * (s[i + length] - s[i])


@dataclass
class TrainIndex:
    """Pitch sequences and interval sequences of a training corpus."""

    pitches: SequenceIndex
    intervals: SequenceIndex
    pieces: int
    notes: int

    @classmethod
    def from_sequences(cls, names: Sequence[str], sequences: Sequence[np.ndarray]) -> TrainIndex:
        seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
        return cls(
            SequenceIndex(names, seqs),
            SequenceIndex(names, [np.diff(s) for s in seqs]),
            len(seqs),
            int(sum(len(s) for s in seqs)),
        )

    @classmethod
    def from_dataset(cls, root: str | Path, split: str | None = "train") -> TrainIndex:
        """Index a dataset's pieces straight from its tokens (no decoding to scores)."""
        return cls.from_sequences(*dataset_pitch_sequences(root, split))

    @classmethod
    def from_scores(cls, named: Iterable[tuple[str, Score]]) -> TrainIndex:
        names, seqs = [], []
        for name, score in named:
            names.append(name)
            seqs.append(pitch_sequence(score))
        return cls.from_sequences(names, seqs)


def dataset_pitch_sequences(
    root: str | Path, split: str | None = "train"
) -> tuple[list[str], list[np.ndarray]]:
    """Pitch sequences of a dataset's pieces: each piece decoded from its tokens (by the
    stream interpreter, like every reader of tokens), then `pitch_sequence`."""
    from musicgen.data.dataset import TokenDataset
    from musicgen.tokens.encoding import decode

    ds = TokenDataset.open(root)
    entries = [e for e in ds.index["files"] if split is None or e["split"] == split]
    seqs = []
    for e in entries:
        ids = np.asarray(ds.tokens[e["offset"] : e["offset"] + e["tokens"]], dtype=np.int64)
        score, _ = decode(ds.vocab.to_universal(ids), ds.vocab.cfg)
        seqs.append(pitch_sequence(score))
    return [e["path"] for e in entries], seqs


def memorisation(pitches: np.ndarray, train: TrainIndex) -> dict:
    """How much of a pitch sequence is copied from the training corpus.

    * longest_copied_run: most consecutive notes (pitch sequence) found verbatim
      in one training piece; copied_from names it.
    * longest_copied_run_transposed: the same on intervals (a copy in another key
      counts), in notes (intervals + 1).
    * ngram8_in_train: share of the piece's 8-note pitch n-grams that occur in training.
    """
    p = np.asarray(pitches, dtype=np.int64)
    run, qpos, tpos = train.pitches.longest_common_run(p)
    irun, _, _ = train.intervals.longest_common_run(np.diff(p)) if len(p) > 1 else (0, None, None)
    found = train.pitches.contains(p, NGRAM_MEMORY)
    return {
        "longest_copied_run": int(run),
        "copied_from": train.pitches.name_at(tpos) if run and tpos is not None else None,
        "copied_at_note": int(qpos) if run and qpos is not None else None,
        "longest_copied_run_transposed": int(irun + 1) if irun else min(len(p), 1 if len(p) else 0),
        "ngram8_in_train": float(found.mean()) if len(found) else math.nan,
    }
