"""Loudness in the encoding's levels: one level per run of notes, changing as rarely as
the tolerance allows, so a played part is not spelt with a Vel before every note."""

from __future__ import annotations

import bisect

import numpy as np


def velocity_levels(velocity: np.ndarray, levels: list[int], tolerance: int) -> np.ndarray:
    """One level per note, changing as rarely as possible: each run of notes gets one
    level within `tolerance` of all of them (or of the nearest level, for a note no
    level is that close to), runs as long as they can be. Greedy is optimal here."""
    if (
        len(velocity) and velocity.min() == velocity.max()
    ):  # one loudness throughout (a sequenced part)
        return np.full(
            len(velocity), levels[_nearest_level(int(velocity[0]), levels)], dtype=np.int64
        )
    # Repeated velocities behave as one note: walk the runs of equal values.
    starts = np.flatnonzero(np.append(True, velocity[1:] != velocity[:-1]))
    values = velocity[starts].tolist()
    chosen: list[int] = []
    i, n = 0, len(values)
    while i < n:
        lo, hi = _window(values[i], levels, tolerance)
        j = i + 1
        while j < n:
            a, b = _window(values[j], levels, tolerance)
            a, b = max(lo, a), min(hi, b)
            k = bisect.bisect_left(levels, a)
            if k == len(levels) or levels[k] > b:
                break
            lo, hi, j = a, b, j + 1
        inside = levels[bisect.bisect_left(levels, lo) : bisect.bisect_right(levels, hi)]
        chosen += [min(inside, key=lambda v: abs(v - (lo + hi) / 2))] * (j - i)
        i = j
    return (
        np.repeat(chosen, np.diff(np.append(starts, len(velocity))))
        if n
        else np.zeros(0, dtype=np.int64)
    )


def _nearest_level(v: int, levels: list[int]) -> int:
    k = bisect.bisect_left(levels, v)
    return min((j for j in (k - 1, k) if 0 <= j < len(levels)), key=lambda j: abs(levels[j] - v))


def _window(v: int, levels: list[int], tolerance: int) -> tuple[int, int]:
    """The velocities a level may have to stand for `v`: within the tolerance, or as
    close as the nearest level if none is that close."""
    k = bisect.bisect_left(levels, v)
    nearest = min(abs(levels[j] - v) for j in (k - 1, k) if 0 <= j < len(levels))
    reach = max(tolerance, nearest)
    return v - reach, v + reach
