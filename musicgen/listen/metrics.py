"""Objective statistics of generated music, pure functions of a `Score` or of arrays.

Conventions used by every function here:

* A *beat* is a quarter note (scores keep time in quarters).
* Drum notes are left out: every statistic is about pitched notes.
* The *pitch sequence* of a piece is its notes in time order, notes that start
  together ordered from high to low (the order the tokenizer emits them), so
  the melody of a texture usually leads each onset.
* A statistic that is undefined for a piece (e.g. the entropy of no notes) is
  ``nan``; `jsonable` turns it into ``null``.

Per-piece features follow the spirit of Yang & Lerch (2020, "On the evaluation
of generative models in music", Neural Computing and Applications 32; preprint
2018): pitch-class histogram and entropy, pitch range, inter-onset intervals,
note lengths, plus polyphony, scale consistency, repetition and memorisation.
Sets are compared as they propose: the pairwise distances of a feature within
the reference set (intra-set) against the distances between generated and
reference pieces (inter-set), summarised by the overlapping area of the two
distributions' Gaussian kernel density estimates (1 = generated pieces differ
from real ones as much as real ones differ from each other).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.listen.form import bar_recurrence
from musicgen.midi.score import Score

# Bins in beats for inter-onset intervals and durations: [0, 1/8), [1/8, 1/4), ... [8, inf).
TIME_EDGES = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
TIME_LABELS = ("<1/8", "1/8", "1/4", "1/2", "1", "2", "4", "8+")
_EPS = 1e-6  # grid positions such as 0.5 must not fall into the bin below through rounding

MAJOR = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)

REPEAT_MAX_PERIOD = 8
NGRAM_REPEAT = 4  # distinct-n-gram share
NGRAM_MEMORY = 8  # n-grams looked up in the training corpus

SCALAR_KEYS = (
    "pitch_class_entropy",
    "pitch_range",
    "polyphony",
    "scale_consistency",
    "note_density",
    "empty_beat_rate",
    "distinct_4gram_share",
    "longest_repeat_run",
    "recurring_bar_share",
    "recurrence_distance",
)
HISTOGRAM_KEYS = ("pitch_class_histogram", "ioi_histogram", "duration_histogram")
MEMORY_KEYS = ("longest_copied_run", "longest_copied_run_transposed", "ngram8_in_train")


# --- the pitch sequence -----------------------------------------------------------------------


def pitched(notes: np.ndarray) -> np.ndarray:
    """Non-drum notes in time order, simultaneous notes from high to low.

    A pitch struck twice at one onset (a unison doubling, on any instrument)
    counts once, so a piece and its tokenized form (which drops same-instrument
    doublings) give the same sequence.
    """
    n = notes[~notes["drum"]]
    onset = np.round(n["start"], 6)
    order = np.lexsort((-n["pitch"].astype(np.int64), onset))
    n, onset = n[order], onset[order]
    keep = np.ones(len(n), dtype=bool)
    keep[1:] = (onset[1:] != onset[:-1]) | (n["pitch"][1:] != n["pitch"][:-1])
    return n[keep]


def pitch_sequence(score_or_notes: Score | np.ndarray) -> np.ndarray:
    notes = score_or_notes.notes if isinstance(score_or_notes, Score) else score_or_notes
    return pitched(notes)["pitch"].astype(np.int64)


# --- pitch statistics -------------------------------------------------------------------------


def pitch_class_histogram(pitches: np.ndarray) -> np.ndarray:
    """Share of notes in each of the 12 pitch classes (C = 0); zeros for no notes."""
    p = np.asarray(pitches, dtype=np.int64)
    h = np.bincount(p % 12, minlength=12).astype(float)
    return h / h.sum() if h.sum() else h


def pitch_class_entropy(pitches: np.ndarray) -> float:
    """Shannon entropy (bits) of the pitch-class histogram: 0 for one pitch class, log2(12) at most."""
    if len(pitches) == 0:
        return math.nan
    h = pitch_class_histogram(pitches)
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum()) + 0.0


def pitch_range(pitches: np.ndarray) -> float:
    """Highest minus lowest pitch, in semitones."""
    if len(pitches) == 0:
        return math.nan
    return float(np.max(pitches) - np.min(pitches))


def scale_consistency(pitches: np.ndarray) -> float:
    """Largest share of notes inside one major or natural-minor scale (24 keys)."""
    if len(pitches) == 0:
        return math.nan
    h = np.bincount(np.asarray(pitches, dtype=np.int64) % 12, minlength=12)
    best = 0
    for tonic in range(12):
        for scale in (MAJOR, NATURAL_MINOR):
            best = max(best, int(sum(h[(tonic + s) % 12] for s in scale)))
    return best / len(pitches)


# --- time statistics --------------------------------------------------------------------------


def polyphony(notes: np.ndarray) -> float:
    """Mean number of notes sounding, over the time at least one sounds (time-weighted)."""
    n = notes[~notes["drum"] & (notes["duration"] > 0)]
    if not len(n):
        return math.nan
    times = np.concatenate([n["start"], n["start"] + n["duration"]])
    delta = np.concatenate([np.ones(len(n)), -np.ones(len(n))])
    order = np.lexsort((delta, times))  # at one instant, note-offs before note-ons
    times, delta = times[order], delta[order]
    count = np.cumsum(delta)[:-1]  # notes sounding on [times[i], times[i+1])
    width = np.diff(times)
    sounding = count > 0
    total = width[sounding].sum()
    if total <= 0:
        return math.nan
    return float((count[sounding] * width[sounding]).sum() / total)


def beat_count(notes: np.ndarray) -> int:
    """Beats from the start of the piece to the end of its last note, rounded up."""
    n = notes[~notes["drum"]]
    if not len(n):
        return 0
    return int(math.ceil(float(np.max(n["start"] + n["duration"])) - 1e-9))


def note_density(notes: np.ndarray) -> float:
    """Notes per beat, over the beats from the start to the end of the last note."""
    beats = beat_count(notes)
    if beats == 0:
        return math.nan
    return int((~notes["drum"]).sum()) / beats


def empty_beat_rate(notes: np.ndarray) -> float:
    """Share of beats [k, k+1) in which no note sounds (from 0 to the last note's end)."""
    n = notes[~notes["drum"] & (notes["duration"] > 0)]
    beats = beat_count(notes)
    if beats == 0:
        return math.nan
    first = np.floor(n["start"] + _EPS).astype(np.int64)
    last = np.ceil(n["start"] + n["duration"] - _EPS).astype(np.int64)  # exclusive
    cover = np.zeros(beats + 1, dtype=np.int64)
    np.add.at(cover, np.clip(first, 0, beats), 1)
    np.add.at(cover, np.clip(last, 0, beats), -1)
    sounding = np.cumsum(cover)[:beats] > 0
    return float(1.0 - sounding.mean())


def time_histogram(values: np.ndarray) -> np.ndarray:
    """Share of `values` (in beats) in each TIME_EDGES bin; zeros for no values."""
    v = np.asarray(values, dtype=float)
    idx = np.clip(
        np.searchsorted(np.array(TIME_EDGES), v + _EPS, side="right") - 1, 0, len(TIME_EDGES) - 1
    )
    h = np.bincount(idx, minlength=len(TIME_EDGES)).astype(float)
    return h / h.sum() if h.sum() else h


def inter_onset_intervals(notes: np.ndarray) -> np.ndarray:
    """Beats between successive distinct onsets."""
    onsets = np.unique(np.round(notes[~notes["drum"]]["start"], 6))
    return np.diff(onsets)


# --- repetition -------------------------------------------------------------------------------


def _longest_true_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    m = np.concatenate([[0], mask.astype(np.int8), [0]])
    d = np.diff(m)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return int((ends - starts).max())


def distinct_ngram_share(pitches: np.ndarray, n: int = NGRAM_REPEAT) -> float:
    """Distinct pitch n-grams / all pitch n-grams (1 = nothing repeats; low = loops)."""
    p = np.asarray(pitches, dtype=np.int64)
    if len(p) < n:
        return math.nan
    grams = np.lib.stride_tricks.sliding_window_view(p, n)
    return len(np.unique(grams, axis=0)) / len(grams)


def longest_repeat_run(pitches: np.ndarray, max_period: int = REPEAT_MAX_PERIOD) -> int:
    """Longest stretch (in notes) that repeats one pattern of 1..max_period notes.

    A stretch x[i:j] counts when it has a period p <= max_period (x[k] == x[k-p]
    throughout) and holds the pattern at least twice (j - i >= 2p). A motif of
    four notes played four times gives 16; a piece where nothing repeats gives 0.
    """
    p = np.asarray(pitches, dtype=np.int64)
    best = 0
    for period in range(1, min(max_period, len(p) // 2) + 1):
        run = _longest_true_run(p[period:] == p[:-period])
        if run >= period:
            best = max(best, run + period)
    return best


def repetition(pitches: np.ndarray) -> tuple[float, int]:
    """(share of distinct 4-note pitch n-grams, longest run of one repeated pattern in notes)."""
    return distinct_ngram_share(pitches, NGRAM_REPEAT), longest_repeat_run(pitches)


# --- one piece --------------------------------------------------------------------------------


def piece_metrics(score: Score) -> dict:
    """Every per-piece statistic of a score (scalars and histograms); `notes` counts the
    pitch sequence (unison doublings once), density and polyphony count every note."""
    notes = score.notes
    pitches = pitch_sequence(notes)
    share, run = repetition(pitches)
    recurring, distance = bar_recurrence(score)
    durations = notes[~notes["drum"]]["duration"]
    return {
        "notes": len(pitches),
        "beats": beat_count(notes),
        "pitch_class_entropy": pitch_class_entropy(pitches),
        "pitch_range": pitch_range(pitches),
        "polyphony": polyphony(notes),
        "scale_consistency": scale_consistency(pitches),
        "note_density": note_density(notes),
        "empty_beat_rate": empty_beat_rate(notes),
        "distinct_4gram_share": share,
        "longest_repeat_run": run,
        "recurring_bar_share": recurring,
        "recurrence_distance": distance,
        "pitch_class_histogram": pitch_class_histogram(pitches).tolist(),
        "ioi_histogram": time_histogram(inter_onset_intervals(notes)).tolist(),
        "duration_histogram": time_histogram(durations).tolist(),
    }


# --- memorisation -----------------------------------------------------------------------------

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


# --- comparing sets (Yang & Lerch) ------------------------------------------------------------


def _as_points(values: Sequence) -> np.ndarray:
    """Feature values as an (n, d) array, rows with a nan dropped."""
    arr = np.array([np.atleast_1d(np.asarray(v, dtype=float)) for v in values if v is not None])
    if arr.size == 0:
        return np.zeros((0, 1))
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr[np.isfinite(arr).all(axis=1)]


def intra_distances(values: Sequence) -> np.ndarray:
    """Euclidean distances between every pair of pieces of one set (|a - b| for scalars)."""
    x = _as_points(values)
    if len(x) < 2:
        return np.zeros(0)
    i, j = np.triu_indices(len(x), k=1)
    return np.linalg.norm(x[i] - x[j], axis=1)


def inter_distances(a: Sequence, b: Sequence) -> np.ndarray:
    """Euclidean distances between every piece of one set and every piece of the other."""
    x, y = _as_points(a), _as_points(b)
    if not len(x) or not len(y):
        return np.zeros(0)
    return np.linalg.norm(x[:, None, :] - y[None, :, :], axis=2).ravel()


def _bandwidth(x: np.ndarray) -> float:
    """Scott's rule: sample standard deviation times n^(-1/5)."""
    if len(x) < 2:
        return 0.0
    return float(np.std(x, ddof=1) * len(x) ** (-0.2))


def kde(samples: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density estimate of `samples` evaluated on `grid`."""
    x = np.asarray(samples, dtype=float)
    out = np.zeros(len(grid))
    for s in range(0, len(x), 512):  # chunks keep memory at grid x 512
        z = (grid[:, None] - x[None, s : s + 512]) / bandwidth
        out += np.exp(-0.5 * z * z).sum(axis=1)
    return out / (len(x) * bandwidth * math.sqrt(2 * math.pi))


MAX_KDE_SAMPLES = 4000


def overlap(a_values: Sequence[float], b_values: Sequence[float], grid_size: int = 2048) -> float:
    """Overlapping area of the Gaussian KDEs of two samples: 1 identical, 0 disjoint."""
    a = np.asarray([v for v in a_values if v is not None], dtype=float)
    b = np.asarray([v for v in b_values if v is not None], dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan
    rng = np.random.default_rng(0)
    if len(a) > MAX_KDE_SAMPLES:
        a = rng.choice(a, MAX_KDE_SAMPLES, replace=False)
    if len(b) > MAX_KDE_SAMPLES:
        b = rng.choice(b, MAX_KDE_SAMPLES, replace=False)
    both = np.concatenate([a, b])
    span = float(both.max() - both.min())
    floor = 1e-3 * max(span, 1.0)  # a constant sample becomes a narrow bump, not a spike
    bw_a, bw_b = max(_bandwidth(a), floor), max(_bandwidth(b), floor)
    wide = max(bw_a, bw_b)
    grid = np.linspace(both.min() - 5 * wide, both.max() + 5 * wide, grid_size)
    narrow = min(bw_a, bw_b)
    if narrow < (grid[1] - grid[0]) * 4:  # resolve narrow kernels around their own samples
        centres = np.unique(a if bw_a <= bw_b else b)
        if len(centres) > 400:
            centres = rng.choice(centres, 400, replace=False)
        local = (centres[:, None] + narrow * np.linspace(-5, 5, 41)[None, :]).ravel()
        grid = np.unique(np.concatenate([grid, local]))
    fa, fb = kde(a, grid, bw_a), kde(b, grid, bw_b)
    m = np.minimum(fa, fb)
    area = float(((m[1:] + m[:-1]) * np.diff(grid)).sum() / 2)
    return float(min(max(area, 0.0), 1.0))


def compare_sets(generated: Sequence, reference: Sequence) -> dict:
    """Yang & Lerch for one feature: intra/inter-set distances and their overlapping area.

    `overlap` is the area shared by the KDE of the reference set's intra-set
    distances and the KDE of the generated-to-reference distances; `value_overlap`
    (scalar features) the area shared by the KDEs of the feature values themselves.
    """
    intra_g, intra_r = intra_distances(generated), intra_distances(reference)
    inter = inter_distances(generated, reference)
    out = {
        "intra_generated": _mean(intra_g),
        "intra_reference": _mean(intra_r),
        "inter": _mean(inter),
        "overlap": overlap(intra_r, inter) if len(intra_r) and len(inter) else math.nan,
    }
    g, r = _as_points(generated), _as_points(reference)
    if g.shape[1] == 1 and r.shape[1] == 1:
        out["value_overlap"] = overlap(g[:, 0], r[:, 0]) if len(g) and len(r) else math.nan
    return out


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def summarize(pieces: Sequence[dict]) -> dict:
    """Mean, standard deviation and count of each scalar over a set; mean histograms."""
    out: dict = {"pieces": len(pieces)}
    keys = [
        k for k in (*SCALAR_KEYS, *MEMORY_KEYS, "notes", "beats") if any(k in p for p in pieces)
    ]
    for k in keys:
        v = np.array([p[k] for p in pieces if p.get(k) is not None], dtype=float)
        v = v[np.isfinite(v)]
        out[k] = {
            "mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std()) if len(v) else math.nan,
            "n": len(v),
        }
    for k in HISTOGRAM_KEYS:
        hs = [p[k] for p in pieces if k in p and sum(p[k]) > 0]
        if hs:
            out[k] = np.mean(np.array(hs), axis=0).tolist()
    return out


def compare_to_reference(generated: Sequence[dict], reference: Sequence[dict]) -> dict:
    """`compare_sets` for every scalar and histogram feature of two lists of piece metrics."""
    return {
        k: compare_sets([p.get(k) for p in generated], [p.get(k) for p in reference])
        for k in (*SCALAR_KEYS, *HISTOGRAM_KEYS)
    }


# --- loading corpora --------------------------------------------------------------------------


def _subsample(items: list, limit: int | None) -> list:
    if limit is None or len(items) <= limit:
        return items
    import random

    keep = sorted(random.Random(0).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def load_corpus(
    path: str | Path, split: str | None = None, limit: int | None = None
) -> tuple[list[tuple[str, Score]], dict[str, str]]:
    """(name, score) pairs from a folder of music files or an ingested dataset folder.

    For a dataset, `split` picks "train" or "val" (None: every piece); pieces are
    decoded from their tokens, so they are what a model trained on it saw.
    `limit` keeps that many pieces, a fixed random choice in corpus order.
    Returns the pieces and {name: reason} for files that could not be read.
    """
    from musicgen.errors import MusicgenError, ReadError
    from musicgen.midi.read import read_score

    path = Path(path)
    if (path / "index.json").exists():
        from musicgen.data.dataset import TokenDataset
        from musicgen.tokens.encoding import decode

        ds = TokenDataset.open(path)
        out = []
        for e in _subsample(
            [e for e in ds.index["files"] if split is None or e["split"] == split], limit
        ):
            ids = np.asarray(ds.tokens[e["offset"] : e["offset"] + e["tokens"]])
            score, _ = decode(ds.vocab.to_universal(ids), ds.vocab.cfg)
            out.append((e["path"], score))
        return out, {}
    from musicgen.data.ingest import discover

    if not path.exists():
        raise MusicgenError(f"no such file or folder: {path}")
    pieces, skipped = [], {}
    for f in _subsample(discover([path]), limit):
        try:
            pieces.append((f.rel, read_score(f.path)))
        except ReadError as exc:
            skipped[f.rel] = str(exc)
    return pieces, skipped


def jsonable(obj):
    """nan/inf -> None and numpy scalars -> Python, recursively, for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj
