"""A live session as one MIDI file (player and model on their own named tracks) + sidecar.

Written from messages, not from a `Score`: the pedal, program changes and the exact
order of what went out are kept as played and heard. Times are clock seconds, turned
into ticks through the listener's followed tempo map when given (so a DAW shows the
player's bars and the file plays back at exactly the seconds played), else at 120 qpm.
A note left sounding when the session ended gets its note-off at the end: the file
has no stuck notes either. The MIDI file and its JSON sidecar (checkpoint, seed,
settings: whatever the caller passes) land together or not at all (fsutil).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mido

from musicgen import __version__
from musicgen.fsutil import atomic_write_group, json_bytes
from musicgen.live.tempo import Metre, TempoFollower

TPQ = 960  # ticks per quarter: about 0.5 ms at 120 qpm, finer than any player
_ORDER = {"note_off": 0, "note_on": 2}  # at one tick: releases, controls, then strikes


def _pairs(messages: Iterable[Any]) -> list[tuple[float, mido.Message]]:
    """(clock second, message) from stamped input messages, `Sent` or `Timed` items or pairs."""
    out = []
    for item in messages:
        if isinstance(item, mido.Message):
            out.append((float(item.time), item))
        elif hasattr(item, "msg"):
            out.append((float(item.time), item.msg))
        else:
            t, msg = item
            out.append((float(t), msg))
    return out


def _track(name: str, events: list[tuple[int, mido.Message]], end: int) -> mido.MidiTrack:
    events = sorted(events, key=lambda e: (e[0], _ORDER.get(e[1].type, 1)))
    sounding: set[tuple[int, int]] = set()
    for _, msg in events:
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.add((msg.channel, msg.note))
        elif msg.type in ("note_on", "note_off"):
            sounding.discard((msg.channel, msg.note))
    events += [(end, mido.Message("note_off", channel=c, note=n)) for c, n in sorted(sounding)]
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    tick = 0
    for at, msg in events:
        track.append(msg.copy(time=at - tick))
        tick = at
    track.append(mido.MetaMessage("end_of_track", time=max(end - tick, 0)))
    return track


def session_midi(
    player: Iterable[Any],
    model: Iterable[Any],
    *,
    start: float | None = None,
    tempo: TempoFollower | None = None,
    metre: Metre | None = None,
    names: tuple[str, str] = ("player", "model"),
) -> bytes:
    """The session's MIDI bytes: a conductor track (tempo, metre), then one track per
    part. `start` is the clock second of tick 0 (default: the first message)."""
    parts = [_pairs(player), _pairs(model)]
    times = [t for part in parts for t, _ in part]
    if start is None:
        start = min(times, default=0.0)
    q0 = 0.0
    if tempo is not None and tempo.segments:
        q0 = tempo.quarter_at(start)

        def tick(t: float) -> int:
            return max(round((tempo.quarter_at(t) - q0) * TPQ), 0)

        tempos = [(tick(s), qpm) for s, _, qpm in tempo.segments]
    else:

        def tick(t: float) -> int:
            return max(round((t - start) * 2 * TPQ), 0)  # 120 qpm: two quarters a second

        tempos = [(0, 120.0)]
    end = max((tick(t) for t in times), default=0)
    conductor: list[tuple[int, mido.MetaMessage]] = [
        (at, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm))) for at, qpm in tempos
    ]
    if metre is not None:
        conductor.append(
            (
                max(round((metre.downbeat - q0) * TPQ), 0),
                mido.MetaMessage(
                    "time_signature", numerator=metre.numerator, denominator=metre.denominator
                ),
            )
        )
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    head = mido.MidiTrack([mido.MetaMessage("track_name", name="musicgen live", time=0)])
    tick_now = 0
    for at, meta in sorted(conductor, key=lambda e: e[0]):
        head.append(meta.copy(time=at - tick_now))
        tick_now = at
    head.append(mido.MetaMessage("end_of_track", time=max(end - tick_now, 0)))
    mid.tracks.append(head)
    for name, part in zip(names, parts, strict=True):
        mid.tracks.append(_track(name, [(tick(t), m) for t, m in part], end))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def count_notes(messages: Iterable[Any]) -> int:
    return sum(1 for _, m in _pairs(messages) if m.type == "note_on" and m.velocity > 0)


def write_session(
    path: str | Path,
    player: Iterable[Any],
    model: Iterable[Any],
    info: Mapping[str, Any] | None = None,
    *,
    start: float | None = None,
    tempo: TempoFollower | None = None,
    metre: Metre | None = None,
) -> tuple[Path, Path]:
    """Write `path` (.mid added if missing) and `path.json` beside it, atomically together.
    `info` (checkpoint, seed, settings, scheduler stats...) goes into the sidecar as is."""
    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi"):
        path = path.with_name(path.name + ".mid")  # never a name its sidecar could clobber
    player, model = _pairs(player), _pairs(model)
    data = session_midi(player, model, start=start, tempo=tempo, metre=metre)
    times = [t for t, _ in player + model]
    t0 = min(times, default=0.0) if start is None else start
    sidecar = {
        "format": "musicgen-live-session",
        "musicgen_version": __version__,
        **dict(info or {}),
        "tracks": {"player": count_notes(player), "model": count_notes(model)},
        "seconds": round(max(times, default=t0) - t0, 3),
    }
    if tempo is not None:
        sidecar["tempo"] = {"followed": not tempo.fixed, "final_qpm": round(tempo.qpm, 2)}
    if metre is not None:
        sidecar["metre"] = f"{metre.numerator}/{metre.denominator}"
    side = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_group({path: data, side: json_bytes(sidecar)})
    return path, side
