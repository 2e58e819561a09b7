"""Bytes on disk -> `Score`.

MIDI goes through symusic, a C++ parser that reads the default corpus about
50x faster than pretty_midi. Score formats (MusicXML, ABC, Humdrum) go through
music21, which turns them into MIDI bytes, so there is one conversion path.
Every failure becomes a `ReadError` whose message is a one-line reason.

A damaged MIDI file (cut short, a wrong chunk length, garbage inside a track)
is rebuilt from its complete events when the parser rejects it; what was
repaired or lost is listed in `Score.warnings`, never silently dropped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicgen.errors import ReadError
from musicgen.midi.repair import chunks_intact, repair_tracks
from musicgen.midi.score import NOTE_DTYPE, Score

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".smf", ".rmi"})
SCORE_SUFFIXES = frozenset({".xml", ".mxl", ".musicxml", ".abc", ".krn"})
SUPPORTED_SUFFIXES = MIDI_SUFFIXES | SCORE_SUFFIXES

# A tempo outside this range is a corrupt event, not music; it is clamped.
_QPM_RANGE = (1.0, 1000.0)


@dataclass
class ParsedMidi:
    """A file as the MIDI parser read it, before its notes become a `Score`.

    Reading is split in two: parsing (the part that may hang or crash on a hostile
    file, so ingestion runs it isolated) and `to_score`.
    """

    sm: Any  # symusic.Score
    tpq: float | None = None  # an SMPTE file's ticks per quarter at the assumed tempo
    warnings: list[str] = field(default_factory=list)  # what repairing a damaged file cost


def read_score(path: str | Path, data: bytes | None = None) -> Score:
    """Read a MIDI, MusicXML, ABC or Humdrum file. `data` skips the disk read."""
    return to_score(parse_file(path, data))


def midi_bytes_to_score(data: bytes) -> Score:
    return to_score(parse_midi(data))


def parse_file(path: str | Path, data: bytes | None = None) -> ParsedMidi:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReadError(f"unsupported file type {suffix or '(none)'}")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReadError(f"cannot read file: {exc.strerror or exc}") from None
    if suffix in MIDI_SUFFIXES:
        return parse_midi(data)
    return parse_midi(_score_file_to_midi(path, data))


def unwrap_riff(data: bytes) -> bytes:
    """RIFF MIDI (.rmi) wraps a standard MIDI file in a 'data' chunk."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"data":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise ReadError("RIFF file has no MIDI data chunk")


def check_header(data: bytes) -> tuple[int, int, int]:
    """Validate the MThd chunk ourselves: a clear reason beats a parser's message."""
    if len(data) == 0:
        raise ReadError("empty file")
    if data[:4] != b"MThd":
        raise ReadError("not a MIDI file (no MThd header)")
    if len(data) < 14:
        raise ReadError("truncated MIDI header")
    length, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    if length < 6:
        raise ReadError(f"bad MIDI header length {length}")
    if 8 + length > len(data):
        raise ReadError(f"bad MIDI header length {length} (longer than the file)")
    if fmt == 2:
        # Format 2 holds independent patterns, not parts played together: overlaying
        # them would invent music the file does not contain.
        raise ReadError("MIDI format 2 (independent sequences) is not supported")
    if fmt > 2:
        raise ReadError(f"unknown MIDI format {fmt}")
    if ntracks == 0:
        raise ReadError("MIDI file has zero tracks")
    if division & 0x8000:
        fps, tpf = 256 - (division >> 8), division & 0xFF
        if fps not in _SMPTE_FPS or tpf == 0:
            raise ReadError(f"bad SMPTE time division ({fps} frames/s, {tpf} ticks/frame)")
    elif division == 0:
        raise ReadError("MIDI time division is 0 ticks per quarter")
    return fmt, ntracks, division


# SMPTE divisions: frames per second as stored (negated) -> real rate.
_SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}
# SMPTE ticks are wall-clock time; they are read as quarters at this tempo.
_SMPTE_QPM = 120.0


def parse_midi(data: bytes) -> ParsedMidi:
    data = unwrap_riff(data)
    fmt, ntracks, division = check_header(data)
    tpq: float | None = None
    if division & 0x8000:  # SMPTE: ticks are fractions of a second, not of a quarter
        fps, tpf = _SMPTE_FPS[256 - (division >> 8)], division & 0xFF
        tpq = fps * tpf * 60.0 / _SMPTE_QPM
        division = 480  # any ticks-per-quarter value: the parser only counts ticks
    hlen = struct.unpack(">I", data[4:8])[0]
    if hlen != 6 or tpq is not None:
        # The standard lets a header grow: readers skip the extra bytes. Our parser
        # insists on 6, so rebuild the header rather than reject a valid file.
        data = b"MThd" + struct.pack(">IHHH", 6, fmt, ntracks, division) + data[8 + hlen :]
    warnings: list[str] = []
    intact = chunks_intact(data)
    try:
        if not intact:
            raise ReadError("damaged track chunks")  # the parser would lose notes silently
        sm = _parse(data)
    except ReadError:
        repaired, warnings = repair_tracks(data)
        if not warnings:
            sm = _parse(data)  # every event was readable after all: the parser's reading stands
        else:
            try:
                sm = _parse(repaired)
            except ReadError:
                raise ReadError(warnings[0]) from None
    return ParsedMidi(sm, tpq, warnings)


def _parse(data: bytes):
    import symusic

    try:
        # sanitize_data clamps data bytes above 127 instead of failing the file
        return symusic.Score.from_midi(data, sanitize_data=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReadError(f"malformed MIDI: {msg}") from None


def to_score(parsed: ParsedMidi) -> Score:
    """A parsed file as a `Score`: notes in quarters, sustain pedal applied, tempo and metre maps.

    Raises the repair's reason when a damaged file kept no notes at all.
    """
    sm = parsed.sm
    tpq = float(parsed.tpq or sm.ticks_per_quarter)
    columns: list[tuple] = []  # per track: start and end ticks, pitch, velocity, program, drum
    pressed = sustained = overflow = 0
    for track in sm.tracks:
        arr = track.notes.numpy()
        start = arr["time"].astype(np.int64)
        if not len(start):
            continue
        # Tick counts past 2**31 wrap around to negative times: those notes are lost.
        valid = start >= 0
        if not valid.all():
            overflow += int((~valid).sum())
            arr = {k: v[valid] for k, v in arr.items()}
            start = start[valid]
        end = start + np.maximum(arr["duration"].astype(np.int64), 0)
        if not track.is_drum and len(track.pedals):
            end, n = _sustain(start, end, track.pedals.numpy())
            pressed += len(track.pedals)
            sustained += n
        columns.append(
            (
                start,
                end,
                arr["pitch"],
                arr["velocity"],
                int(track.program) & 0x7F,
                bool(track.is_drum),
            )
        )
    start = np.concatenate([c[0] for c in columns]) if columns else np.zeros(0, dtype=np.int64)
    order = np.argsort(start, kind="stable")  # by onset; track order on ties
    notes = np.empty(len(start), dtype=NOTE_DTYPE)
    if columns:
        sizes = [len(c[0]) for c in columns]
        notes["start"] = start[order] / tpq
        notes["duration"] = (np.concatenate([c[1] for c in columns])[order] - start[order]) / tpq
        notes["pitch"] = np.concatenate([c[2] for c in columns])[order].astype(np.int16) & 0x7F
        notes["velocity"] = np.concatenate([c[3] for c in columns])[order].astype(np.int16) & 0x7F
        notes["program"] = np.repeat([c[4] for c in columns], sizes)[order]
        notes["drum"] = np.repeat([c[5] for c in columns], sizes)[order]
    warnings = list(parsed.warnings)
    if overflow:
        warnings.append(f"{overflow} notes past the 2**31 tick limit dropped")
    if parsed.warnings and not len(notes):
        raise ReadError(parsed.warnings[0])
    counts = {"sustain_pedal_presses": pressed, "notes_sustained": sustained} if pressed else {}
    return Score(
        notes=notes,
        tempos=[(0.0, _SMPTE_QPM)] if parsed.tpq is not None else _tempos(sm, tpq),
        time_signatures=_time_signatures(sm, tpq),
        n_tracks=len(sm.tracks),
        resolution=int(round(tpq)),
        warnings=warnings,
        counts=counts,
    )


def _sustain(start: np.ndarray, end: np.ndarray, pedals: dict) -> tuple[np.ndarray, int]:
    """Sounding ends under the sustain pedal: a key released while the pedal is down
    sounds until the pedal lifts. (A key struck again cuts its own sound; the encoder
    does that, for every note.) Returns the new ends and how many notes were extended."""
    down = pedals["time"].astype(np.int64)
    up = down + pedals["duration"].astype(np.int64)
    order = np.argsort(down, kind="stable")
    down, up = down[order], np.maximum.accumulate(up[order])  # overlapping presses merge
    k = np.searchsorted(down, end, side="right") - 1  # the last press at or before the release
    held = (k >= 0) & (end < up[np.maximum(k, 0)])
    return np.where(held, up[np.maximum(k, 0)], end), int(held.sum())


def _tempos(sm, tpq: float) -> list[tuple[float, float]]:
    tempos: list[tuple[float, float]] = []
    t = sm.tempos.numpy()
    for tick, mspq in zip(t["time"].tolist(), t["mspq"].tolist(), strict=True):
        if mspq <= 0 or tick < 0:
            continue  # a tempo of 0 us per quarter is a corrupt event: the old tempo holds
        qpm = 60e6 / mspq
        tempos.append((tick / tpq, float(min(max(qpm, _QPM_RANGE[0]), _QPM_RANGE[1]))))
    return sorted(tempos)


def _time_signatures(sm, tpq: float) -> list[tuple[float, int, int]]:
    sigs: list[tuple[float, int, int]] = []
    for ts in sm.time_signatures:
        if ts.numerator > 0 and ts.denominator > 0 and ts.time >= 0:
            sigs.append((ts.time / tpq, int(ts.numerator), int(ts.denominator)))
    return sorted(sigs)


def _score_file_to_midi(path: Path, data: bytes) -> bytes:
    """MusicXML / ABC / Humdrum -> MIDI bytes via music21 (slow but thorough)."""
    try:
        from music21 import converter, midi

        fmt = {
            ".xml": "musicxml",
            ".mxl": "musicxml",
            ".musicxml": "musicxml",
            ".abc": "abc",
            ".krn": "humdrum",
        }[path.suffix.lower()]
        if path.suffix.lower() == ".mxl":  # a zip archive: music21 needs the file itself
            stream = converter.parse(path)
        else:
            stream = converter.parseData(data.decode("utf-8", errors="replace"), format=fmt)
        mf = midi.translate.music21ObjectToMidiFile(stream)
        return mf.writestr()
    except ReadError:
        raise
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReadError(f"cannot parse {path.suffix.lower()} score: {msg[:200]}") from None
