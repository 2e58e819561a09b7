"""What survives MIDI -> tokens -> MIDI, measured against the original file read on its own.

    python benchmarks/fidelity.py FOLDER... [--time auto|beats|seconds] [--json out.json]

Each folder is treated as one corpus: the clock is chosen as `musicgen ingest`
chooses it (or as given), every file is encoded, decoded, written to MIDI and
read back. The original is read independently of musicgen's reader, with symusic
(its own tick-to-time conversion) and the sustain pedal applied here by this
script's own code: a key released while the pedal is down sounds until the pedal
lifts, a key struck again ends its sound. Both sides are then compared note by
note, matched per instrument and key in time order:

* onsets within 10 ms (seconds mode) or within 1/48 of a quarter (beats mode,
  measured in the file's own beats);
* sounding ends within 30 ms / 1/16 of a quarter, pitched notes only (a General
  MIDI drum sound ignores its note-off);
* velocities within 4;
* every tempo change (beats mode): the decoded tempo at its time, relative error;
* pedal presses in, and what came out (folded into durations: none as events);
* drum notes in and out; notes lost, with the encoder's reasons.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- the original, read on its own -------------------------------------------------------------


def independent_notes(sm) -> dict[str, np.ndarray]:
    """Every note of a symusic score (any time unit), sustain pedal applied per track."""
    cols: dict[str, list] = {
        k: [] for k in ("start", "end", "pitch", "velocity", "program", "drum")
    }
    for track in sm.tracks:
        n = track.notes.numpy()
        if not len(n["time"]):
            continue
        start = n["time"].astype(np.float64)
        end = start + n["duration"].astype(np.float64)
        if not track.is_drum:
            for down, length in zip(
                track.pedals.numpy()["time"].tolist(),
                track.pedals.numpy()["duration"].tolist(),
                strict=True,
            ):
                held = (end >= down) & (end < down + length)
                end[held] = down + length
            pitch = n["pitch"].astype(int)
            for p in np.unique(pitch):  # a key struck again ends its sound
                mine = np.flatnonzero(pitch == p)
                mine = mine[np.argsort(start[mine], kind="stable")]
                later = start[mine[1:]]
                end[mine[:-1]] = np.where(
                    later > start[mine[:-1]], np.minimum(end[mine[:-1]], later), end[mine[:-1]]
                )
        cols["start"].append(start)
        cols["end"].append(end)
        cols["pitch"].append(n["pitch"].astype(int))
        cols["velocity"].append(n["velocity"].astype(int))
        cols["program"].append(np.full(len(start), -1 if track.is_drum else int(track.program)))
        cols["drum"].append(np.full(len(start), bool(track.is_drum)))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}


def match(orig: dict, back: dict, step: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs (index in orig, index in back) per instrument and key, in time order: two
    notes pair when their onsets are within two steps of the clock (`step`, in the same
    unit); a note of either side that finds no partner that close stays unpaired (on the
    original side: a unison doubling the encoder merged, or a note it lost). Returns the
    pairs and the number of unpaired original notes."""
    pairs_o, pairs_b, unpaired = [], [], 0
    keys_o = orig["program"] * 1000 + orig["pitch"]
    keys_b = back["program"] * 1000 + back["pitch"]
    for key in np.unique(keys_o):
        io = np.flatnonzero(keys_o == key)
        io = io[np.argsort(orig["start"][io], kind="stable")].tolist()
        ib = np.flatnonzero(keys_b == key)
        ib = ib[np.argsort(back["start"][ib], kind="stable")].tolist()
        i = j = 0
        while i < len(io) and j < len(ib):
            d = orig["start"][io[i]] - back["start"][ib[j]]
            if abs(d) <= 2 * step:
                pairs_o.append(io[i])
                pairs_b.append(ib[j])
                i, j = i + 1, j + 1
            elif d < 0:
                unpaired, i = unpaired + 1, i + 1
            else:
                j += 1
        unpaired += len(io) - i
    return np.array(pairs_o, dtype=int), np.array(pairs_b, dtype=int), unpaired


def doubled(notes: dict, step: float) -> np.ndarray:
    """Notes whose key (instrument and pitch) is struck again within one step: unison doublings."""
    key = notes["program"] * 1000 + notes["pitch"]
    order = np.lexsort((notes["start"], key))
    close = (np.diff(key[order]) == 0) & (np.diff(notes["start"][order]) < step * (1 - 1e-6))
    out = np.zeros(len(key), dtype=bool)
    out[order[:-1][close]] = True
    out[order[1:][close]] = True
    return out


def tempo_errors(
    orig_sm, decoded_tempos: list[tuple[float, float]], last_onset_q: float
) -> list[float]:
    """Relative error of the decoded tempo at the time of every original tempo change up
    to the last onset (quarters); of several changes at one tick the last is the one played."""
    tpq = orig_sm.ticks_per_quarter
    t = orig_sm.tempos.numpy()
    changes = {}  # tick -> qpm, the last one at each tick
    for tick, mspq in zip(t["time"].tolist(), t["mspq"].tolist(), strict=True):
        if mspq > 0:
            changes[tick] = 60e6 / mspq
    starts = np.array([q for q, _ in decoded_tempos] or [0.0])
    values = np.array([v for _, v in decoded_tempos] or [120.0])
    errs = []
    ticks = sorted(changes)
    for k, tick in enumerate(ticks):
        q, want = tick / tpq, changes[tick]
        lasts = (ticks[k + 1] - tick) / tpq if k + 1 < len(ticks) else np.inf
        if q <= last_onset_q and lasts >= 1 / 48:  # a change undone within a step is not heard
            on_grid = round(q * 48) / 48  # where the change lands on the clock
            got = values[max(int(np.searchsorted(starts, on_grid + 1e-9)) - 1, 0)]
            errs.append(abs(got / want - 1))
    return errs


# --- one folder ------------------------------------------------------------------------------


def measure(folder: Path, time_mode: str) -> dict:
    import symusic

    from musicgen.config import EncodingConfig
    from musicgen.errors import ReadError
    from musicgen.midi.read import SUPPORTED_SUFFIXES, midi_bytes_to_score, read_score
    from musicgen.midi.write import score_to_midi_bytes
    from musicgen.tokens.encoding import decode, encode
    from musicgen.tokens.timebase import resolve_time

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
    scores = {}
    skipped = {}
    for f in files:
        try:
            scores[f] = read_score(f)
        except ReadError as exc:
            skipped[f.name] = str(exc)
    cfg, choice = resolve_time(EncodingConfig(time=time_mode), list(scores.values()))
    beats = cfg.time == "beats"
    tol_on, tol_end = (1 / 48, 1 / 16) if beats else (0.010, 0.030)
    agg = Counter()
    on_ok = end_ok = vel_ok = 0
    n_pairs = n_pitched_pairs = n_single = 0
    tempo_err: list[float] = []
    lost = Counter()
    for f, score in scores.items():
        enc = encode(score, cfg)
        dec, _ = decode(enc.ids, cfg)
        back_score = midi_bytes_to_score(score_to_midi_bytes(dec))
        unit = "quarter" if beats else "second"
        orig_sm = symusic.Score.from_midi(f.read_bytes(), sanitize_data=True)
        orig = independent_notes(orig_sm.to(unit))
        back = independent_notes(symusic.Score.from_midi(score_to_midi_bytes(dec)).to(unit))
        po, pb, unpaired = match(
            orig, back, 1 / cfg.steps_per_quarter if beats else 1 / cfg.steps_per_second
        )
        d_on = np.abs(orig["start"][po] - back["start"][pb])
        # a unison doubling sounds once, as long as its longest note, at one velocity: its
        # notes count for the onset, not for the end and velocity of each
        single = ~doubled(orig, 1 / cfg.steps_per_quarter if beats else 1 / cfg.steps_per_second)[
            po
        ]
        pitched = ~orig["drum"][po].astype(bool) & single
        d_end = np.abs(orig["end"][po] - back["end"][pb])[pitched]
        d_vel = np.abs(orig["velocity"][po] - back["velocity"][pb])[single]
        on_ok += int(np.sum(d_on <= tol_on + 1e-9))
        end_ok += int(np.sum(d_end <= tol_end + 1e-9))
        vel_ok += int(np.sum(d_vel <= 4))
        n_single += int(single.sum())
        n_pairs += len(po)
        n_pitched_pairs += int(pitched.sum())
        agg["notes_in"] += len(orig["start"])
        agg["notes_out"] += len(back["start"])
        agg["unpaired"] += unpaired
        agg["drum_in"] += int(orig["drum"].astype(bool).sum())
        agg["drum_out"] += int(back["drum"].astype(bool).sum())
        agg["pedal_in"] += sum(len(t.pedals) for t in orig_sm.tracks)
        agg["pedal_out"] += sum(
            len(t.pedals) for t in symusic.Score.from_midi(score_to_midi_bytes(dec)).tracks
        )
        agg["tokens"] += len(enc.ids)
        agg["kept"] += len(enc.notes)
        agg["seconds"] += score.duration_seconds
        for k in ("duplicates_merged", "out_of_range_dropped", "drum_notes_dropped"):
            lost[k] += enc.stats.get(k, 0)
        if beats:
            last = float(score.notes["start"].max()) if score.num_notes else 0.0
            tempo_err += tempo_errors(orig_sm, dec.tempos, last)
        del back_score
    return {
        "folder": str(folder),
        "files": len(scores),
        "skipped": skipped,
        "mode": cfg.time,
        "why": choice.reason,
        "tokens_per_note": agg["tokens"] / max(agg["kept"], 1),
        "tokens_per_second": agg["tokens"] / max(agg["seconds"], 1e-9),
        "onset_within": tol_on,
        "onset_share": on_ok / max(n_pairs, 1),
        "end_within": tol_end,
        "end_share": end_ok / max(n_pitched_pairs, 1),
        "velocity_share": vel_ok / max(n_single, 1),
        "doubled": n_pairs - n_single,
        "tempo_changes": len(tempo_err),
        "tempo_max_error": max(tempo_err) if tempo_err else None,
        "pedal_in": agg["pedal_in"],
        "pedal_out": agg["pedal_out"],
        "drum_in": agg["drum_in"],
        "drum_out": agg["drum_out"],
        "notes_in": agg["notes_in"],
        "notes_out": agg["notes_out"],
        "unpaired": agg["unpaired"],
        "lost_by_reason": {k: v for k, v in lost.items() if v},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--time", default="auto", choices=("auto", "beats", "seconds"))
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ns = ap.parse_args()
    rows = [measure(f, ns.time) for f in ns.folders]
    head = f"{'folder':28s} {'files':>5s} {'mode':7s} {'tok/note':>8s} {'tok/s':>6s} {'onset':>7s} {'end':>7s} {'vel±4':>7s} {'tempo err':>9s} {'pedal in/out':>12s} {'drums in/out':>12s} lost"
    print(head)
    for r in rows:
        unit = "q" if r["mode"] == "beats" else "s"
        tempo = "-" if r["tempo_max_error"] is None else f"{r['tempo_max_error']:.2%}"
        lost = (
            ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r["lost_by_reason"].items())
            or "none"
        )
        lost += f" ({r['unpaired']} unpaired)"
        print(
            f"{Path(r['folder']).name:28s} {r['files']:5d} {r['mode']:7s} {r['tokens_per_note']:8.2f} {r['tokens_per_second']:6.1f} "
            f"{r['onset_share']:7.2%} {r['end_share']:7.2%} {r['velocity_share']:7.2%} {tempo:>9s} "
            f"{r['pedal_in']:>5d}/{r['pedal_out']:<6d} {r['drum_in']:>5d}/{r['drum_out']:<6d} {lost}"
        )
        print(
            f"{'':28s} onset within {r['onset_within']:g} {unit}, end within {r['end_within']:g} {unit}; {r['why']}"
        )
        if r["skipped"]:
            print(f"{'':28s} skipped: {r['skipped']}")
    if ns.json:
        ns.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
