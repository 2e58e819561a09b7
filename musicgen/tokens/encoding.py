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

Encoding is array work with no per-note or per-file Python: `encode_batch`
encodes a whole `ScoreBatch` in one pass, each row tagged with its file,
because a chorale has only ~300 notes and numpy's per-call overhead (~60 calls)
would otherwise cost more than symusic's parse. `encode` is a batch of one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.midi.score import NOTE_DTYPE, Score, ScoreBatch
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
# Columns of the working block: GRID_DTYPE's fields, then the file each note came from.
_STEP, _DUR, _PITCH, _PROG, _VBIN, _FILE = range(6)

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

assert all(d == 1 << k for k, d in enumerate(TIME_SIG_DENOMINATORS)), "denominators are checked as powers of two"

# Steps beyond this (a tick count near 2**31 at a small resolution) do not leave room to
# tag each row with its file inside one int64 key: such batches are encoded file by file.
_MAX_BATCH_STEP = 1 << 44


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


class _Counts:
    """Per-file counters of one batch: each key holds one count per file."""

    def __init__(self, n_files: int):
        self.n = n_files
        self.by_key = {k: np.zeros(n_files, dtype=np.int64) for k in STAT_KEYS}

    def add(self, key: str, files: np.ndarray) -> None:
        """Count one for each entry of `files` (the file of every counted note or event)."""
        if len(files):
            self.by_key[key] += np.bincount(files, minlength=self.n)

    def per_file(self) -> list[Counter]:
        rows = np.stack([self.by_key[k] for k in STAT_KEYS], axis=1).tolist()
        return [Counter(dict(zip(STAT_KEYS, row, strict=True))) for row in rows]


def _stable_order(*cols: tuple[np.ndarray, int | None]) -> np.ndarray:
    """Stable argsort by several non-negative integer columns, the first most significant.

    Each column is (values, bits); bits None means "as many as the largest value needs".
    The columns and then the row number are packed into one int64 key when they fit:
    the keys are then unique, so numpy's fast unstable sort gives the stable order
    (several times faster than a stable sort or a lexsort). Otherwise np.lexsort.
    """
    n = len(cols[0][0])
    widths = [b if b is not None else max(int(v.max()).bit_length(), 1) if len(v) else 1 for v, b in cols]
    row_bits = max(n - 1, 1).bit_length()
    if sum(widths) + row_bits > 63:
        return np.lexsort([v for v, _ in reversed(cols)])
    key = np.zeros(n, dtype=np.int64)
    for (v, _), w in zip(cols, widths, strict=True):
        key <<= w
        key |= v
    key <<= row_bits
    key |= np.arange(n)
    return np.argsort(key)


def _starts(counts: np.ndarray) -> np.ndarray:
    """Where each group begins in an array of consecutive groups of these sizes."""
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def _quantise(notes: np.ndarray, files: np.ndarray, n_files: int, cfg: EncodingConfig, counts: _Counts) -> np.ndarray:
    """Filter and snap notes to the grid: an (n, 6) int64 block sorted by file, then stream order."""
    drum = notes["drum"]
    in_range = (notes["pitch"] >= cfg.pitch_min) & (notes["pitch"] <= cfg.pitch_max)
    if cfg.include_drums:
        keep = in_range
    else:
        counts.add("drum_notes_dropped", files[drum])
        keep = in_range & ~drum
    # Drum "pitches" name instruments, but they still need a Pitch token to be written.
    counts.add("out_of_range_dropped", files[~in_range & (True if cfg.include_drums else ~drum)])
    if not keep.all():
        notes, files, drum = notes[keep], files[keep], drum[keep]

    res = cfg.steps_per_quarter
    raw_start = notes["start"] * res
    start = np.round(raw_start).astype(np.int64)
    end = np.round((notes["start"] + notes["duration"]) * res).astype(np.int64)
    counts.add("off_grid", files[np.abs(raw_start - start) > 1e-6])
    dur = end - start
    short = dur < 1
    counts.add("durations_extended", files[short])
    dur[short] = 1
    long_ = dur > cfg.max_duration_steps
    counts.add("durations_clipped", files[long_])
    dur[long_] = cfg.max_duration_steps

    program = notes["program"].astype(np.int64)
    if cfg.programs == "main" and len(program):
        melodic = ~drum
        if melodic.any():
            # each file's most used melodic program (the lowest on a tie); files without one keep theirs
            width = int(program[melodic].max()) + 1
            table = np.bincount(files[melodic] * width + program[melodic], minlength=n_files * width)
            table = table.reshape(n_files, width)
            main = table.argmax(axis=1)
            has = table.max(axis=1) > 0
            program = np.where(has[files], main[files], program)
    program[drum] = DRUM_PROGRAM
    vbin = token_space(cfg).velocity_bin(notes["velocity"]) if cfg.velocity_bins else np.zeros_like(start)

    # One (n, 6) int64 block: row gathers (np.take) and packed single-key sorts are
    # several times faster than structured-array lexsorts.
    g = np.empty((len(start), 6), dtype=np.int64)
    g[:, _STEP], g[:, _DUR], g[:, _PITCH], g[:, _PROG], g[:, _VBIN], g[:, _FILE] = start, dur, notes["pitch"], program, vbin, files
    if len(g) < 2:
        return g
    step0 = g[:, _STEP] - g[:, _STEP].min()
    # per file and key (program, pitch): by onset, the longest first (duration fits in 11 bits)
    order = _stable_order(
        (g[:, _FILE], None), (g[:, _PROG], 8), (g[:, _PITCH], 7), (step0, None), (2047 - np.minimum(g[:, _DUR], 2047), 11)
    )
    g = np.take(g, order, axis=0)
    same_key = _same_key_as_next(g)
    # Same onset, pitch and program twice: MIDI cannot sound both, keep the longest.
    same = np.zeros(len(g), dtype=bool)
    same[1:] = same_key & (g[1:, _STEP] == g[:-1, _STEP])
    if same.any():
        counts.add("duplicates_dropped", g[same, _FILE])
        g = g[~same]
        same_key = _same_key_as_next(g)
    # A note still sounding when the same key is struck again ends there.
    overlap = np.zeros(len(g), dtype=bool)
    overlap[:-1] = same_key & (g[:-1, _STEP] + g[:-1, _DUR] > g[1:, _STEP])
    if overlap.any():
        counts.add("overlaps_truncated", g[overlap, _FILE])
        idx = np.flatnonzero(overlap)
        g[idx, _DUR] = g[idx + 1, _STEP] - g[idx, _STEP]
    # stream order: file, onset, then program, then highest pitch first
    step0 = g[:, _STEP] - g[:, _STEP].min()
    return np.take(g, _stable_order((g[:, _FILE], None), (step0, None), (g[:, _PROG], 8), (127 - g[:, _PITCH], 7)), axis=0)


def _same_key_as_next(g: np.ndarray) -> np.ndarray:
    """Row i and row i + 1 are the same key: file, program and pitch."""
    return (g[1:, _FILE] == g[:-1, _FILE]) & (g[1:, _PROG] == g[:-1, _PROG]) & (g[1:, _PITCH] == g[:-1, _PITCH])


def _cummax_within(values: np.ndarray, files: np.ndarray) -> np.ndarray:
    """Running maximum restarting at each file (rows grouped by file).

    Lifting file k's values by k * span keeps every file above the ones before it,
    so one running maximum restarts by itself at each file boundary.
    """
    if not len(values):
        return values.copy()
    lo = int(values.min())
    span = int(values.max()) - lo + 1
    lifted = (values - lo) + files * span
    return np.maximum.accumulate(lifted) - files * span + lo


def _shorten_silences(g: np.ndarray, first: np.ndarray, cfg: EncodingConfig, counts: _Counts) -> np.ndarray:
    """Cut silences longer than the cap in place; returns the total cut before each note."""
    if not len(g):
        return np.zeros(0, dtype=np.int64)
    ends = g[:, _STEP] + g[:, _DUR]
    sounding_until = np.empty(len(g), dtype=np.int64)
    sounding_until[1:] = _cummax_within(ends, g[:, _FILE])[:-1]
    sounding_until[first] = 0  # a piece starts in silence, whatever came before in the batch
    cut = np.maximum(g[:, _STEP] - sounding_until - cfg.max_silence_steps, 0)
    counts.add("silences_shortened", g[cut > 0, _FILE])
    total = np.cumsum(cut)
    # restart the running total at each file
    total -= np.repeat(total[first] - cut[first], np.diff(np.append(np.flatnonzero(first), len(g))))
    g[:, _STEP] -= total
    return total


@dataclass
class _Meta:
    """Tempo and time-signature events of a batch: file, step, kind (0 TimeSig, 1 Tempo), id."""

    files: np.ndarray
    steps: np.ndarray
    kinds: np.ndarray
    ids: np.ndarray


def _meta_events(scores, cfg, space, g, orig_steps, cut, counts: _Counts) -> _Meta:
    """Tempo and time-signature changes, moved with the silence cuts, one per (file, step, kind).

    A change repeating the value before it is dropped, as is anything after a piece's
    last onset; of several changes at one step the last wins, as in playback.
    """
    res = cfg.steps_per_quarter
    n_files = len(scores)
    note_files = g[:, _FILE]
    per_file = np.bincount(note_files, minlength=n_files)
    ends = np.cumsum(per_file)
    # a piece's last onset after the cuts (0 for a piece with no notes)
    last = np.where(per_file > 0, g[np.maximum(ends - 1, 0), _STEP] if len(g) else 0, 0)

    def shifted(files: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Where events land once silences are cut (each cut ends at the next note);
        an event inside a removed stretch of silence moves to the next note."""
        if not len(g) or not len(steps):
            return steps
        lo = min(int(orig_steps.min()), int(steps.min()))
        span = max(int(orig_steps.max()), int(steps.max())) - lo + 1
        note_key = note_files * span + (orig_steps - lo)  # ascending: notes are grouped by file
        i = np.searchsorted(note_key, files * span + (steps - lo), side="right") - 1
        before = np.clip(i, 0, len(g) - 1)
        same = (i >= 0) & (note_files[before] == files)
        moved = steps - np.where(same, cut[before], 0)
        after = np.clip(i + 1, 0, len(g) - 1)
        has_next = (i + 1 < len(g)) & (note_files[after] == files)
        return np.where(has_next, np.minimum(moved, g[after, _STEP]), moved)

    def changes(files: np.ndarray, steps: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Which events are kept: up to the last onset, and differing from the one before."""
        ok = steps <= last[files]
        f, v = files[ok], values[ok]
        new = np.ones(len(f), dtype=bool)
        new[1:] = (f[1:] != f[:-1]) | (v[1:] != v[:-1])
        keep = np.zeros(len(files), dtype=bool)
        keep[np.flatnonzero(ok)[new]] = True
        return keep

    parts = []
    if cfg.time_signatures:
        sigs = [(i, q, num, den) for i, s in enumerate(scores) for q, num, den in s.time_signatures]
        if sigs:
            f, q, num, den = (np.array(c) for c in zip(*sigs, strict=True))
            f, num, den = f.astype(np.int64), num.astype(np.int64), den.astype(np.int64)
            # a denominator is a power of two up to the largest allowed
            valid = (den >= 1) & (den <= TIME_SIG_DENOMINATORS[-1]) & (den & (den - 1) == 0)
            valid &= (num >= 1) & (num <= TIME_SIG_MAX_NUMERATOR)
            counts.add("time_signatures_dropped", f[~valid])
            f, q, num, den = f[valid], q[valid], num[valid], den[valid]
            steps = shifted(f, np.round(q * res).astype(np.int64))
            keep = changes(f, steps, num * 64 + den)
            ids = space.timesig_id(num[keep], den[keep])
            parts.append((f[keep], steps[keep], np.zeros(len(ids), dtype=np.int64), ids))
    tempos = [(i, q, qpm) for i, s in enumerate(scores) for q, qpm in (s.tempos or [(0.0, 120.0)])]
    f, q, qpm = (np.array(c) for c in zip(*tempos, strict=True))
    f = f.astype(np.int64)
    steps = shifted(f, np.round(q * res).astype(np.int64))
    bins = space.tempo_bin(qpm)
    keep = changes(f, steps, bins)
    parts.append((f[keep], steps[keep], np.ones(int(keep.sum()), dtype=np.int64), space.tempo_id(bins[keep])))

    files, steps, kinds, ids = (np.concatenate(c).astype(np.int64) for c in zip(*parts, strict=True))
    steps = np.maximum(steps, 0)
    order = _stable_order((files, None), (steps, None), (kinds, 1))
    files, steps, kinds, ids = files[order], steps[order], kinds[order], ids[order]
    # several changes at one step: the last one wins
    last_of_run = np.ones(len(files), dtype=bool)
    last_of_run[:-1] = (files[1:] != files[:-1]) | (steps[1:] != steps[:-1]) | (kinds[1:] != kinds[:-1])
    return _Meta(files[last_of_run], steps[last_of_run], kinds[last_of_run], ids[last_of_run])


def encode(score: Score, cfg: EncodingConfig) -> Encoded:
    return encode_batch(ScoreBatch.of([score]), cfg)[0]


def encode_batch(batch: ScoreBatch, cfg: EncodingConfig) -> list[Encoded]:
    """Encode several scores at once; each result is what `encode` gives for that score alone."""
    if not len(batch):
        return []
    space = token_space(cfg)
    scores, notes, sizes = batch.scores, batch.notes, batch.sizes
    n_files = len(scores)
    if n_files > 1 and _too_wide(notes, scores, cfg):
        return [encode(s, cfg) for s in scores]
    counts = _Counts(n_files)
    counts.by_key["notes_in"] += sizes
    g = _quantise(notes, np.repeat(np.arange(n_files), sizes), n_files, cfg, counts)
    kept = np.bincount(g[:, _FILE], minlength=n_files)
    counts.by_key["notes_kept"] += kept
    first = np.zeros(len(g), dtype=bool)
    first[_starts(kept)[kept > 0]] = True
    orig_steps = g[:, _STEP].copy()
    cut = _shorten_silences(g, first, cfg, counts)
    meta = _meta_events(scores, cfg, space, g, orig_steps, cut, counts)

    # Events: meta first, then notes (already in stream order); a stable sort by
    # (file, step, kind) puts a step's TimeSig, then Tempo, then its notes in stream order.
    n_meta = len(meta.files)
    n = n_meta + len(g)
    efile = np.concatenate([meta.files, g[:, _FILE]])
    step = np.concatenate([meta.steps, g[:, _STEP]])
    kind = np.concatenate([meta.kinds, np.full(len(g), 2, dtype=np.int64)])
    src = _stable_order((efile, None), (step, None), (kind, 2))
    efile, step, kind = efile[src], step[src], kind[src]
    is_note = kind == 2
    note_idx = src[is_note] - n_meta
    new_file = np.ones(n, dtype=bool)
    new_file[1:] = efile[1:] != efile[:-1]

    # Shift tokens before each event: gap / max_shift full shifts plus the remainder.
    M = cfg.max_shift_steps
    gap = np.diff(step, prepend=0)
    gap[new_file] = step[new_file]
    n_shift = -(-gap // M)

    # Prog / Vel only where they change from the previous note of the same piece.
    notes_g = np.take(g, note_idx, axis=0)
    prog, vbin, nfile = notes_g[:, _PROG], notes_g[:, _VBIN], notes_g[:, _FILE]
    first_note = np.ones(len(prog), dtype=bool)
    first_note[1:] = nfile[1:] != nfile[:-1]
    emit_prog = first_note.copy()
    emit_prog[1:] |= prog[1:] != prog[:-1]
    emit_vel = np.zeros(len(prog), dtype=bool)
    if cfg.velocity_bins:
        emit_vel = first_note.copy()
        emit_vel[1:] |= vbin[1:] != vbin[:-1]

    n_body = np.ones(n, dtype=np.int64)  # meta events: one token
    n_body[is_note] = 2 + emit_prog + emit_vel
    count = n_shift + n_body
    # each piece is BOS, its events, EOS; pieces follow each other in one array
    per_file = 2 + np.bincount(efile, weights=count, minlength=n_files).astype(np.int64)
    file_start = _starts(per_file)
    start = 1 + 2 * efile + _starts(count)
    ids = np.empty(int(per_file.sum()), dtype=np.int32)
    ids[file_start] = BOS
    ids[file_start + per_file - 1] = EOS

    has = n_shift > 0
    if has.any():
        reps = n_shift[has]
        pos = np.repeat(start[has], reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        val = np.full(len(pos), M, dtype=np.int64)
        val[np.cumsum(reps) - 1] = gap[has] - (reps - 1) * M
        ids[pos] = space.shift_id(val)
    body = start + n_shift
    ids[body[~is_note]] = meta.ids[src[~is_note]]
    # notes: [Prog] [Vel] Pitch Dur
    nb = body[is_note]
    ids[nb[emit_prog]] = space.prog_id(prog[emit_prog])
    after_prog = nb + emit_prog
    ids[after_prog[emit_vel]] = space.vel_id(vbin[emit_vel])
    p = after_prog + emit_vel
    ids[p] = space.pitch_id(notes_g[:, _PITCH])
    ids[p + 1] = space.dur_id(notes_g[:, _DUR])

    grid = np.ascontiguousarray(notes_g[:, :_FILE]).view(GRID_DTYPE).reshape(len(notes_g))
    id_bounds = np.append(file_start, len(ids)).tolist()
    note_bounds = np.append(_starts(kept), len(grid)).tolist()
    return [
        Encoded(ids=ids[id_bounds[i] : id_bounds[i + 1]], notes=grid[note_bounds[i] : note_bounds[i + 1]], stats=stats)
        for i, stats in enumerate(counts.per_file())
    ]


def _too_wide(notes: np.ndarray, scores: Sequence[Score], cfg: EncodingConfig) -> bool:
    """Whether some time in the batch is too far out to share int64 keys with a file tag."""
    times = [float(np.max(notes["start"] + notes["duration"], initial=0.0))]
    times += [q for s in scores for q, _ in s.tempos] + [q for s in scores for q, _, _ in s.time_signatures]
    return max(abs(t) for t in times) * cfg.steps_per_quarter * len(scores) >= _MAX_BATCH_STEP
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
            num, den = space.timesig_of(uid - F["timesig"].offset)
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
