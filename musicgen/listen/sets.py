"""Comparing a generated set with real music, as Yang & Lerch (2020) propose: the
pairwise distances of a feature within the reference set against those between
generated and reference pieces, summarised by the overlapping area of the two
distributions' Gaussian kernel density estimates (1 = generated pieces differ from
real ones as much as real ones differ from each other)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from musicgen.analysis.features import HISTOGRAM_KEYS, MEMORY_KEYS, SCALAR_KEYS


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
