"""Score <-> token ids.

The scheme is TSD-like ("time-shift, duration"), chosen for short sequences:

    BOS Inst_0 Inst_33 Inst_drums TimeSig_4/4 Tempo_120.03
    Prog_0 Vel_78 Pitch_72 Dur_48 Pitch_67 Dur_48 Prog_33 Vel_90 Pitch_43 Dur_24
    Prog_drums Vel_102 Drum_36 Drum_42 Shift_24 ...

* The header declares the piece's line-up (`Inst_`), so a generated song keeps
  one band: the grammar (stream.py) allows only declared instruments.
* Time is counted in steps of one clock per piece (`EncodingConfig.time`):
  1/48 of a quarter in beats mode (32nds, sixteenth triplets and 64ths exact,
  anything else within 1/96 of a quarter), 10 ms in seconds mode.
* Notes that start together follow each other with no token between them:
  by instrument (drums last), then from the highest pitch down. `Shift_n`
  moves time on.
* `Prog_` appears when the instrument changes; `Vel_` when the instrument's
  velocity level changes by more than `velocity_tolerance`, each instrument
  keeping its own level.
* `Dur_n` is the *sounding* length (the reader applied the sustain pedal),
  exact up to 2 quarters / 1 s, then with one bit less resolution per
  doubling. Drum hits have no duration (General MIDI percussion ignores it).
* `Tempo_` (1% apart) and `TimeSig_` appear at the start and at changes
  (beats mode only; seconds mode plays at a nominal 120 qpm).

Everything the encoder must change is counted in `stats`, never silently lost.
Encoding is per score, in array operations that follow these rules in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.midi.score import Score
from musicgen.tokens.decoding import (  # noqa: F401 - encode and decode side by side
    GRID_DTYPE,
    SECONDS_QPM,
    decode,
    quarters_per_step,
    score_grid,
)
from musicgen.tokens.space import (
    BOS,
    DRUMS,
    EOS,
    TIME_SIG_DENOMINATORS,
    TIME_SIG_MAX_NUMERATOR,
    token_space,
)
from musicgen.tokens.timebase import resolve_time
from musicgen.tokens.velocity import velocity_levels

# Counters reported per file; docs/ingest.md explains each.
STAT_KEYS = (
    "notes_in",
    "notes_kept",
    "drum_notes_dropped",
    "out_of_range_dropped",
    "duplicates_merged",
    "overlaps_truncated",
    "durations_clipped",
    "durations_extended",
    "durations_rounded",
    "off_grid",
    "silences_shortened",
    "time_signatures_dropped",
    "sustain_pedal_presses",
    "notes_sustained",
)


@dataclass
class Encoded:
    ids: np.ndarray  # universal token ids, int64
    notes: np.ndarray  # GRID_DTYPE, in stream order
    cfg: EncodingConfig  # the settings used, time mode decided
    stats: Counter = field(default_factory=Counter)
    # (step, steps cut before it) per note, by step: where shortened silences moved the music
    cut: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    @property
    def tokens_per_note(self) -> float:
        return len(self.ids) / max(len(self.notes), 1)


def encode(score: Score, cfg: EncodingConfig) -> Encoded:
    """Tokens of one score. With `time="auto"` the clock is chosen for this score alone."""
    cfg, _ = resolve_time(cfg, [score])
    stats: Counter = Counter({k: 0 for k in STAT_KEYS})
    stats["notes_in"] = score.num_notes
    stats.update(score.counts)
    notes, start, end = _select(score, cfg, stats)
    g = _quantise(notes, start, end, cfg, stats)
    cut = _shorten_silences(g, score, cfg, stats)
    moved = np.stack([g.step, cut], axis=1) if len(g) else np.zeros((0, 2), dtype=np.int64)
    meta = _meta_events(score, cfg, g, cut, stats) if cfg.time == "beats" else []
    ids = _assemble(g, meta, cfg)
    stats["notes_kept"] = len(g)
    moved = moved[np.argsort(moved[:, 0], kind="stable")]
    return Encoded(ids=ids, notes=g.to_grid(), cfg=cfg, stats=stats, cut=moved)


_FAR = 1 << 62  # "never struck again"


@dataclass
class _Notes:
    """Notes as plain int64 columns (steps of the clock): the working form of the rules."""

    step: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    program: np.ndarray  # DRUMS for the drum kit

    def __len__(self) -> int:
        return len(self.step)

    def take(self, rows: np.ndarray) -> _Notes:
        return _Notes(*(getattr(self, k)[rows] for k in GRID_DTYPE.names))

    @property
    def drum(self) -> np.ndarray:
        return self.program == DRUMS

    def to_grid(self) -> np.ndarray:
        out = np.zeros(len(self), dtype=GRID_DTYPE)
        for k in GRID_DTYPE.names:
            out[k] = getattr(self, k)
        return out


# --- the rules, in order --------------------------------------------------------------------


def programs_of(notes: np.ndarray, cfg: EncodingConfig) -> np.ndarray:
    """Each note's instrument as the encoding names it: DRUMS for the drum kit and, with
    `programs="main"`, every pitched note on the piece's most used program (lowest on a tie)."""
    drum = notes["drum"]
    program = notes["program"].astype(np.int64)
    if cfg.programs == "main" and (~drum).any():
        program[~drum] = int(np.bincount(program[~drum], minlength=128).argmax())
    program[drum] = DRUMS
    return program


def _select(
    score: Score, cfg: EncodingConfig, stats: Counter
) -> tuple[_Notes, np.ndarray, np.ndarray]:
    """Drop what the encoding leaves out (counted); give drums the program DRUMS.
    Returns the notes (times not set yet) and their onsets and ends in fractional steps."""
    n = score.notes
    drum = n["drum"]
    pitch = n["pitch"].astype(np.int64)
    in_range = (pitch >= cfg.pitch_min) & (pitch <= cfg.pitch_max)
    stats["out_of_range_dropped"] += int(
        (~in_range & ~drum).sum()
    )  # a drum key names a sound, not a pitch
    keep = in_range | drum
    if not cfg.drums:
        stats["drum_notes_dropped"] += int(drum.sum())
        keep &= ~drum
    n = n[keep]
    program = programs_of(n, cfg)
    zeros = np.zeros(len(n), dtype=np.int64)
    notes = _Notes(
        zeros, zeros.copy(), n["pitch"].astype(np.int64), n["velocity"].astype(np.int64), program
    )
    start, end = n["start"], n["start"] + n["duration"]
    # steps of the clock: quarters x steps_per_quarter, or seconds through the tempo map x steps_per_second
    if cfg.time == "beats":
        return notes, start * cfg.steps_per_quarter, end * cfg.steps_per_quarter
    return (
        notes,
        score.quarters_to_seconds(start) * cfg.steps_per_second,
        score.quarters_to_seconds(end) * cfg.steps_per_second,
    )


def _quantise(
    g: _Notes, raw_start: np.ndarray, raw_end: np.ndarray, cfg: EncodingConfig, stats: Counter
) -> _Notes:
    """Snap to the clock and to the Dur values; merge unisons, cut re-struck keys; stream order."""
    g.step = np.round(raw_start).astype(np.int64)
    stats["off_grid"] += int(np.count_nonzero(np.abs(raw_start - g.step) > 1e-6))
    drum = g.drum
    dur = np.round(raw_end).astype(np.int64) - g.step
    stats["durations_extended"] += int(np.count_nonzero((dur < 1) & ~drum))
    longest = cfg.limit("max_duration")
    stats["durations_clipped"] += int(np.count_nonzero((dur > longest) & ~drum))
    g.dur = np.where(drum, 0, np.clip(dur, 1, longest))

    # By key (instrument, pitch), then onset, the longest first.
    g = g.take(np.lexsort((-g.dur, g.step, g.pitch, g.program)))
    same_key = np.zeros(len(g), dtype=bool)  # row i has the key of row i - 1
    same_key[1:] = (g.program[1:] == g.program[:-1]) & (g.pitch[1:] == g.pitch[:-1])
    # A key struck twice at once (a unison doubling) sounds once: keep the longest.
    unison = same_key.copy()
    unison[1:] &= g.step[1:] == g.step[:-1]
    stats["duplicates_merged"] += int(unison.sum())
    g, same_key = g.take(~unison), same_key[~unison]
    # A key struck again ends its sound there (on a piano the damper falls, pedal or not).
    room = np.full(len(g), _FAR)
    again = np.flatnonzero(same_key)  # rows struck again: the row before each ends by then
    room[again - 1] = g.step[again] - g.step[again - 1]
    melodic = ~g.drum
    cut = melodic & (g.dur > room)
    stats["overlaps_truncated"] += int(cut.sum())
    g.dur = np.where(cut, room, g.dur)
    # Longer durations sit on a coarser grid: the nearest value, never past the next strike.
    coarse = np.flatnonzero(melodic & (g.dur > cfg.limit("exact_duration")))
    if len(coarse):
        family = token_space(cfg).dur
        k = family.nearest(g.dur[coarse])
        fits = (
            np.searchsorted(
                family.values, np.minimum(room[coarse], family.values[-1]), side="right"
            )
            - 1
        )
        snapped = family.values[np.where(family.values[k] > room[coarse], fits, k)]
        stats["durations_rounded"] += int(np.count_nonzero(snapped != g.dur[coarse]))
        g.dur[coarse] = snapped
    # Stream order: onset, instrument (drums last), highest pitch first.
    return g.take(np.lexsort((-g.pitch, g.program, g.step)))


def _shorten_silences(g: _Notes, score: Score, cfg: EncodingConfig, stats: Counter) -> np.ndarray:
    """Cut every silence longer than the cap down to it (in place), by whole bars so the
    music after it keeps its place in the bar; returns the total cut before each note,
    so meta events can move with the notes."""
    if not len(g):
        return np.zeros(0, dtype=np.int64)
    ends = g.step + np.maximum(g.dur, 1)
    sounding_until = np.concatenate([[0], np.maximum.accumulate(ends)[:-1]])
    cut = np.maximum(g.step - sounding_until - cfg.limit("max_silence"), 0)
    bar = _bar_steps(g.step, score, cfg)
    cut = cut // bar * bar
    stats["silences_shortened"] += int((cut > 0).sum())
    total = np.cumsum(cut)
    g.step = g.step - total
    return total


def _bar_steps(steps: np.ndarray, score: Score, cfg: EncodingConfig) -> np.ndarray:
    """The bar length in steps at each of `steps`, as the token stream will count it:
    of the metre in force, among the time signatures the tokens can write."""
    sigs = sorted(s for s in score.time_signatures if _writable(s[1], s[2]))
    if cfg.time != "beats" or not cfg.time_signatures:
        sigs = []
    starts = np.array([q * cfg.steps_per_quarter for q, _, _ in sigs], dtype=float)
    lengths = np.array(
        [max(1, cfg.bar_steps())] + [max(1, cfg.bar_steps(num, den)) for _, num, den in sigs],
        dtype=np.int64,
    )
    return lengths[np.searchsorted(starts, steps, side="right")]


def _writable(num: int, den: int) -> bool:
    return 1 <= num <= TIME_SIG_MAX_NUMERATOR and den in TIME_SIG_DENOMINATORS


def _meta_events(
    score: Score, cfg: EncodingConfig, g: _Notes, cut: np.ndarray, stats: Counter
) -> list[tuple[int, int, int]]:
    """(step, kind, universal id) of the time-signature (kind 0) and tempo (kind 1) changes.

    Each moves with the silence cuts; a change that repeats the value before it is
    left out, as is anything after the last onset; of several at one step the last wins.
    """
    if not len(g):  # nothing sounds, so nothing is in force: the piece is `BOS EOS`
        return []
    space = token_space(cfg)
    last_onset = int(g.step[-1])
    orig_steps = g.step + cut  # where the notes were before the cuts

    def moved(quarters: float) -> int:
        s = int(round(quarters * cfg.steps_per_quarter))
        i = int(np.searchsorted(orig_steps, s, side="right")) - 1
        s -= int(cut[i]) if i >= 0 else 0
        if i + 1 < len(g):  # inside a removed stretch of silence: moved to the next note
            s = min(s, int(g.step[i + 1]))
        return max(s, 0)

    events: dict[tuple[int, int], int] = {}  # (step, kind) -> id; later entries win
    if cfg.time_signatures:
        for q, num, den in sorted(score.time_signatures):
            if not _writable(num, den):
                stats["time_signatures_dropped"] += 1
                continue
            events[(moved(q), 0)] = int(space.timesig_id(num, den))
    tempos = sorted(score.tempos)
    if not tempos or tempos[0][0] > 0:
        tempos = [(0.0, 120.0), *tempos]  # MIDI's default until the first tempo event
    log_values = np.log(space.tempo.values)
    for q, qpm in tempos:
        k = int(np.abs(log_values - np.log(max(qpm, 1e-3))).argmin())
        events[(moved(q), 1)] = int(space.tempo.id(k))
    out, current = [], {}
    for (step, kind), uid in sorted(events.items()):
        if step <= last_onset and current.get(kind) != uid:
            out.append((step, kind, uid))
            current[kind] = uid
    return out


def _present(program: np.ndarray) -> list[int]:
    """The instruments that play, in rising order."""
    return np.flatnonzero(np.bincount(program, minlength=1)).tolist()


def _assemble(g: _Notes, meta: list[tuple[int, int, int]], cfg: EncodingConfig) -> np.ndarray:
    """The token stream: BOS, the line-up, then every event with the Shifts before it, EOS.

    Each event is a row of four token slots, -1 where a slot is empty:
    a note is [Prog] [Vel] Pitch Dur or [Prog] [Vel] Drum, a meta event its one token.
    """
    space = token_space(cfg)
    n = len(g)
    program, pitch = g.program, g.pitch
    drum = program == DRUMS
    rows = np.full((n, 4), -1, dtype=np.int64)
    new_prog = np.append(True, program[1:] != program[:-1]) if n else np.zeros(0, dtype=bool)
    rows[new_prog, 0] = space.prog.id(program[new_prog])
    if cfg.velocity_bins:
        levels = space.vel.values.tolist()
        level = np.zeros(n, dtype=np.int64)
        for p in _present(program):
            mine = np.flatnonzero(program == p)
            level[mine] = velocity_levels(g.velocity[mine], levels, cfg.velocity_tolerance)
            # an instrument states its level at its first note and wherever it changes
            changed = np.append(True, level[mine][1:] != level[mine][:-1])
            rows[mine[changed], 1] = space.vel.id_of_value(level[mine[changed]])
        g.velocity = level
    else:
        g.velocity = np.full(n, cfg.default_velocity, dtype=np.int64)
    if drum.any():
        rows[~drum, 2] = space.pitch.id_of_value(pitch[~drum])
        rows[~drum, 3] = space.dur.id_of_value(g.dur[~drum])
        rows[drum, 2] = space.drum.id_of_value(pitch[drum])
    else:
        rows[:, 2] = space.pitch.id_of_value(pitch)
        rows[:, 3] = space.dur.id_of_value(g.dur)

    # Meta events go before the notes of their step: TimeSig, then Tempo.
    meta_rows = np.full((len(meta), 4), -1, dtype=np.int64)
    meta_rows[:, 0] = [uid for _, _, uid in meta]
    steps = np.concatenate([[s for s, _, _ in meta], g.step]).astype(np.int64)
    kinds = np.concatenate([[k for _, k, _ in meta], np.full(n, 2)]).astype(np.int64)
    order = np.lexsort((kinds, steps))  # stable: notes keep their stream order
    rows, steps = np.concatenate([meta_rows, rows])[order], steps[order]

    # Shifts: the gap before each event, in tokens of at most max_shift steps.
    longest = cfg.limit("max_shift")
    gap = steps - np.concatenate([[0], steps[:-1]])
    count = -(-gap // longest)
    owner = np.repeat(np.arange(len(rows)), count)
    last_of_gap = np.cumsum(count) - 1
    shift = np.full(len(owner), longest, dtype=np.int64)
    shift[last_of_gap[count > 0]] = gap[count > 0] - (count[count > 0] - 1) * longest
    shift_ids = space.shift.id_of_value(shift)

    # Every event's Shifts, then its own slots; empty slots dropped.
    tokens = np.concatenate([shift_ids, rows.ravel()])
    owners = np.concatenate([owner, np.repeat(np.arange(len(rows)), 4)])
    parts = np.concatenate(
        [np.zeros(len(owner), dtype=np.int64), np.ones(rows.size, dtype=np.int64)]
    )
    body = tokens[np.lexsort((parts, owners))]
    header = space.inst.id(_present(program))
    return np.concatenate([[BOS], header, body[body >= 0], [EOS]]).astype(np.int64)
