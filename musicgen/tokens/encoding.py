"""Score <-> events <-> token ids.

The scheme is TSD-like ("time-shift, duration"), chosen for short sequences:

    BOS TimeSig_4/4 Tempo_76 Prog_0 Vel_88 Pitch_72 Dur_12 Pitch_67 Dur_12 Shift_12 ...

* Notes that start together follow each other with no token between them, so
  a four-voice chord costs 8 tokens plus one Shift, not 4 x (position + ...).
* Prog_ and Vel_ tokens appear only when the value changes, so a solo piano
  piece at constant loudness pays for them once.
* Onsets and durations live on a grid of `steps_per_quarter` (12 by default:
  sixteenths are 3 steps, eighth triplets 4), durations are measured from the
  quantised onset to the quantised end so legato lines stay legato.
* Inside a time step notes go by program, then from the highest pitch down,
  so the melody usually comes first.

Everything the encoder must change is counted in `stats`, never silently lost.
Encoding is array work over all notes at once (no per-note Python), because
ingestion speed is measured against the parser's own speed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.space import (
    BOS,
    DRUM_PROGRAM,
    EOS,
    TIME_SIG_DENOMINATORS,
    TIME_SIG_MAX_NUMERATOR,
    TokenSpace,
)

GRID_DTYPE = np.dtype(
    [("step", np.int64), ("dur", np.int64), ("pitch", np.int64), ("program", np.int64), ("vbin", np.int64)]
)

# Counters reported per file; the README's ingestion report explains each.
STAT_KEYS = (
    "notes_in",
    "notes_kept",
    "drum_notes_dropped",
    "out_of_range_dropped",
    "duplicates_dropped",
    "overlaps_truncated",
    "durations_clipped",
    "durations_extended",
    "off_grid",
    "silences_shortened",
    "time_signatures_dropped",
)


@dataclass
class Encoded:
    ids: np.ndarray  # universal token ids, int32
    notes: np.ndarray  # GRID_DTYPE: the notes exactly as the tokens describe them
    stats: Counter = field(default_factory=Counter)

    @property
    def tokens_per_note(self) -> float:
        return len(self.ids) / max(len(self.notes), 1)


_SPACES: dict[EncodingConfig, TokenSpace] = {}


def token_space(cfg: EncodingConfig) -> TokenSpace:
    if cfg not in _SPACES:
        _SPACES[cfg] = TokenSpace(cfg)
    return _SPACES[cfg]


def quantise(score: Score, cfg: EncodingConfig, stats: Counter) -> np.ndarray:
    """Filter and snap notes to the grid; returns GRID_DTYPE sorted in stream order."""
    notes = score.notes
    stats["notes_in"] += len(notes)
    if not cfg.include_drums:
        drums = notes["drum"]
        stats["drum_notes_dropped"] += int(drums.sum())
        notes = notes[~drums]
    # Drum "pitches" name instruments, but they still need a Pitch token to be written.
    in_range = (notes["pitch"] >= cfg.pitch_min) & (notes["pitch"] <= cfg.pitch_max)
    stats["out_of_range_dropped"] += int((~in_range).sum())
    notes = notes[in_range]

    res = cfg.steps_per_quarter
    raw_start = notes["start"] * res
    start = np.round(raw_start).astype(np.int64)
    end = np.round((notes["start"] + notes["duration"]) * res).astype(np.int64)
    stats["off_grid"] += int((np.abs(raw_start - start) > 1e-6).sum())
    dur = end - start
    short = dur < 1
    stats["durations_extended"] += int(short.sum())
    dur[short] = 1
    long_ = dur > cfg.max_duration_steps
    stats["durations_clipped"] += int(long_.sum())
    dur[long_] = cfg.max_duration_steps

    program = notes["program"].astype(np.int64)
    if cfg.programs == "main" and len(program):
        melodic = program[~notes["drum"]]
        if len(melodic):
            program = np.full_like(program, np.bincount(melodic).argmax())
    program[notes["drum"]] = DRUM_PROGRAM
    vbin = token_space(cfg).velocity_bin(notes["velocity"]) if cfg.velocity_bins else np.zeros_like(start)

    # One (n, 5) int64 block in GRID_DTYPE's field order: row gathers and a packed
    # single-key sort are several times faster than structured-array lexsorts.
    g = np.empty((len(start), 5), dtype=np.int64)
    g[:, 0], g[:, 1], g[:, 2], g[:, 3], g[:, 4] = start, dur, notes["pitch"], program, vbin
    if len(g) > 1:
        step0 = g[:, 0] - g[:, 0].min()
        # key order: program, pitch, step, longest first (duration fits in 11 bits)
        key = (((g[:, 3] << 7 | g[:, 2]) << 36 | step0) << 11) | (2047 - np.minimum(g[:, 1], 2047))
        g = g[np.argsort(key, kind="stable")]
        same_key = (g[1:, 3] == g[:-1, 3]) & (g[1:, 2] == g[:-1, 2])
        # Same onset, pitch and program twice: MIDI cannot sound both, keep the longest.
        same = np.zeros(len(g), dtype=bool)
        same[1:] = same_key & (g[1:, 0] == g[:-1, 0])
        stats["duplicates_dropped"] += int(same.sum())
        if same.any():
            g = g[~same]
            same_key = (g[1:, 3] == g[:-1, 3]) & (g[1:, 2] == g[:-1, 2])
        # A note still sounding when the same key is struck again ends there.
        overlap = np.zeros(len(g), dtype=bool)
        overlap[:-1] = same_key & (g[:-1, 0] + g[:-1, 1] > g[1:, 0])
        n_over = int(overlap.sum())
        stats["overlaps_truncated"] += n_over
        if n_over:
            idx = np.flatnonzero(overlap)
            g[idx, 1] = g[idx + 1, 0] - g[idx, 0]
        # stream order: onset, then program, then highest pitch first
        step0 = g[:, 0] - g[:, 0].min()
        g = g[np.argsort((step0 << 8 | g[:, 3]) << 7 | (127 - g[:, 2]), kind="stable")]
    else:
        stats["duplicates_dropped"] += 0
        stats["overlaps_truncated"] += 0
    return np.ascontiguousarray(g).view(GRID_DTYPE).reshape(len(g))


def _shorten_silences(grid: np.ndarray, cfg: EncodingConfig, stats: Counter) -> np.ndarray:
    """Cut silences longer than the cap; returns the cut applied before each note."""
    cap = cfg.max_silence_steps
    if not len(grid):
        return np.zeros(0, dtype=np.int64)
    ends = grid["step"] + grid["dur"]
    sounding_until = np.concatenate([[0], np.maximum.accumulate(ends)[:-1]])
    silence = grid["step"] - sounding_until
    cut = np.maximum(silence - cap, 0)
    stats["silences_shortened"] += int((cut > 0).sum())
    total_cut = np.cumsum(cut)
    grid["step"] -= total_cut
    return total_cut


def _meta_events(score: Score, cfg: EncodingConfig, space: TokenSpace, grid, cut_starts, cut, stats):
    """Tempo and time-signature changes as (step, token id), moved with the silence cuts."""
    res = cfg.steps_per_quarter
    last = int(grid["step"].max()) if len(grid) else 0

    def shifted(step: int) -> int:
        """Where an event lands once silences are cut (each cut ends at the next note)."""
        if not len(cut_starts):
            return step
        i = int(np.searchsorted(cut_starts, step, side="right")) - 1
        moved = step - (int(cut[i]) if i >= 0 else 0)
        # an event inside a removed stretch of silence moves to the next note
        return min(moved, int(grid["step"][i + 1])) if i + 1 < len(grid) else moved

    events: list[tuple[int, int, int]] = []  # (step, kind, id); kind orders TimeSig before Tempo
    if cfg.time_signatures:
        prev = None
        for q, num, den in score.time_signatures:
            if den not in TIME_SIG_DENOMINATORS or not 1 <= num <= TIME_SIG_MAX_NUMERATOR:
                stats["time_signatures_dropped"] += 1
                continue
            step = shifted(int(round(q * res)))
            if (num, den) != prev and step <= last:
                events.append((max(step, 0), 0, int(space.timesig_id(num, den))))
                prev = (num, den)
    tempos = score.tempos or [(0.0, 120.0)]
    prev_bin = None
    for q, qpm in tempos:
        step = shifted(int(round(q * res)))
        b = space.tempo_bin(qpm)
        if b != prev_bin and step <= last:
            events.append((max(step, 0), 1, int(space.tempo_id(b))))
            prev_bin = b
    # several changes at one step: the last one wins, as in playback
    dedup: dict[tuple[int, int], int] = {}
    for step, kind, tid in events:
        dedup[(step, kind)] = tid
    return sorted((s, k, t) for (s, k), t in dedup.items())


def encode(score: Score, cfg: EncodingConfig) -> Encoded:
    space = token_space(cfg)
    stats: Counter = Counter()
    grid = quantise(score, cfg, stats)
    orig_steps = grid["step"].copy()
    cut = _shorten_silences(grid, cfg, stats)
    stats["notes_kept"] += len(grid)
    meta = _meta_events(score, cfg, space, grid, orig_steps, cut, stats)

    n_meta, n_notes = len(meta), len(grid)
    n = n_meta + n_notes
    step = np.empty(n, dtype=np.int64)
    kind = np.empty(n, dtype=np.int64)  # 0 timesig, 1 tempo, 2 note: meta first within a step
    step[:n_meta] = [m[0] for m in meta]
    kind[:n_meta] = [m[1] for m in meta]
    step[n_meta:], kind[n_meta:] = grid["step"], 2
    order = np.lexsort((np.arange(n), kind, step))  # stable: notes keep their stream order
    step, kind = step[order], kind[order]
    src = order  # index into meta (< n_meta) or grid (>= n_meta)
    is_note = kind == 2
    note_idx = src[is_note] - n_meta

    # Shift tokens before each event: gap / max_shift full shifts plus the remainder.
    M = cfg.max_shift_steps
    gap = np.diff(step, prepend=0)
    n_shift = -(-gap // M)

    # Prog / Vel only where they change from the previous note.
    prog = grid["program"][note_idx]
    vbin = grid["vbin"][note_idx]
    emit_prog = np.ones(len(prog), dtype=bool)
    emit_prog[1:] = prog[1:] != prog[:-1]
    emit_vel = np.zeros(len(prog), dtype=bool)
    if cfg.velocity_bins and len(prog):  # a piece may have no notes left at all
        emit_vel[0] = True
        emit_vel[1:] = vbin[1:] != vbin[:-1]

    n_body = np.ones(n, dtype=np.int64)  # meta events: one token
    n_body[is_note] = 2 + emit_prog + emit_vel
    count = n_shift + n_body
    start = 1 + np.concatenate([[0], np.cumsum(count)[:-1]])  # 1: after BOS
    total = 2 + int(count.sum())
    ids = np.empty(total, dtype=np.int32)
    ids[0], ids[-1] = BOS, EOS

    # shifts
    has = n_shift > 0
    if has.any():
        reps = n_shift[has]
        pos = np.repeat(start[has], reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        val = np.full(len(pos), M, dtype=np.int64)
        last_of = np.cumsum(reps) - 1
        rem = gap[has] - (reps - 1) * M
        val[last_of] = rem
        ids[pos] = space.shift_id(val)
    body = start + n_shift
    # meta
    meta_pos = ~is_note
    if meta_pos.any():
        meta_ids = np.array([m[2] for m in meta], dtype=np.int64)
        ids[body[meta_pos]] = meta_ids[src[meta_pos]]
    # notes: [Prog] [Vel] Pitch Dur
    nb = body[is_note]
    ids[nb[emit_prog]] = space.prog_id(prog[emit_prog])
    after_prog = nb + emit_prog
    ids[after_prog[emit_vel]] = space.vel_id(vbin[emit_vel])
    p = after_prog + emit_vel
    ids[p] = space.pitch_id(grid["pitch"][note_idx])
    ids[p + 1] = space.dur_id(grid["dur"][note_idx])

    notes = grid[note_idx]
    return Encoded(ids=ids, notes=notes, stats=stats)


def decode(ids: np.ndarray, cfg: EncodingConfig) -> tuple[Score, Counter]:
    """Universal ids -> Score. Tolerant: a stray token is counted, never fatal."""
    space = token_space(cfg)
    F = space.families
    names = space.family_names()
    res = cfg.steps_per_quarter
    stats: Counter = Counter()
    step, program = 0, 0
    vel = cfg.default_velocity
    pending: int | None = None
    rows: list[tuple[int, int, int, int, int]] = []
    tempos: list[tuple[float, float]] = []
    sigs: list[tuple[float, int, int]] = []
    for uid in np.asarray(ids).tolist():
        fam = names[uid] if 0 <= uid < len(names) else "special"  # a stray id is ignored, not fatal
        if pending is not None and fam != "dur":
            stats["pitch_without_duration"] += 1
            pending = None
        if fam == "shift":
            step += uid - F["shift"].offset + 1
        elif fam == "pitch":
            pending = uid - F["pitch"].offset + cfg.pitch_min
        elif fam == "dur":
            if pending is None:
                stats["duration_without_pitch"] += 1
                continue
            rows.append((step, uid - F["dur"].offset + 1, pending, vel, program))
            pending = None
        elif fam == "vel":
            vel = int(space.velocity_values[uid - F["vel"].offset])
        elif fam == "prog":
            program = uid - F["prog"].offset
        elif fam == "tempo":
            tempos.append((step / res, float(space.tempo_values[uid - F["tempo"].offset])))
        elif fam == "timesig":
            k = uid - F["timesig"].offset
            num, den = k // len(TIME_SIG_DENOMINATORS) + 1, TIME_SIG_DENOMINATORS[k % len(TIME_SIG_DENOMINATORS)]
            sigs.append((step / res, num, den))
        elif uid == EOS:
            break
    if pending is not None:
        stats["pitch_without_duration"] += 1
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    if rows:
        arr = np.array(rows, dtype=np.int64)
        notes["start"] = arr[:, 0] / res
        notes["duration"] = arr[:, 1] / res
        notes["pitch"] = arr[:, 2]
        notes["velocity"] = arr[:, 3]
        drum = arr[:, 4] == DRUM_PROGRAM
        notes["program"] = np.where(drum, 0, arr[:, 4])
        notes["drum"] = drum
    notes = notes[np.argsort(notes["start"], kind="stable")]
    return Score(notes=notes, tempos=tempos, time_signatures=sigs, n_tracks=0), stats


def score_grid(score: Score, cfg: EncodingConfig) -> np.ndarray:
    """A decoded score's notes on the grid, in stream order (for round-trip checks)."""
    res = cfg.steps_per_quarter
    n = score.notes
    grid = np.zeros(len(n), dtype=GRID_DTYPE)
    grid["step"] = np.round(n["start"] * res)
    grid["dur"] = np.round(n["duration"] * res)
    grid["pitch"] = n["pitch"]
    grid["program"] = np.where(n["drum"], DRUM_PROGRAM, n["program"])
    return grid[np.lexsort((-grid["pitch"], grid["program"], grid["step"]))]
