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

import numpy as np

from musicgen.analysis.form import bar_recurrence
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
MEMORY_KEYS = (
    "longest_copied_run",
    "longest_copied_run_transposed",
    "ngram8_in_train",
)  # memory.py


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


class Silence:
    """Time (steps, say) with nothing sounding, as notes come in onset order: how long the current
    silence would be at a step, and the longest so far."""

    def __init__(self, start: int = 0):
        self.until = start  # the step the last note to end stops sounding at
        self.longest = 0
        self.notes = 0

    def note(self, step: int, dur: int) -> None:
        self.longest = max(self.longest, step - self.until)
        self.until = max(self.until, step + max(dur, 1))
        self.notes += 1

    def at(self, step) -> np.ndarray:
        """The silence a note at `step` (steps, or an array of them) would end."""
        return np.asarray(step) - self.until
