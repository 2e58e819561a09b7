"""Bytes on disk -> `Score`.

MIDI goes through symusic, a C++ parser that reads the default corpus about
50x faster than pretty_midi. Score formats (MusicXML, ABC, Humdrum) go through
music21, which turns them into MIDI bytes, so there is one conversion path.
Every failure becomes a `ReadError` whose message is a one-line reason.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from musicgen.errors import ReadError
from musicgen.midi.score import NOTE_DTYPE, Score

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".smf", ".rmi"})
SCORE_SUFFIXES = frozenset({".xml", ".mxl", ".musicxml", ".abc", ".krn"})
SUPPORTED_SUFFIXES = MIDI_SUFFIXES | SCORE_SUFFIXES

# A tempo outside this range is a corrupt event, not music; it is clamped.
_QPM_RANGE = (1.0, 1000.0)


def read_score(path: str | Path, data: bytes | None = None) -> Score:
    """Read a MIDI, MusicXML, ABC or Humdrum file. `data` skips the disk read."""
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
        return midi_bytes_to_score(data)
    return midi_bytes_to_score(_score_file_to_midi(path, data))


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
    if fmt > 2:
        raise ReadError(f"unknown MIDI format {fmt}")
    if ntracks == 0:
        raise ReadError("MIDI file has zero tracks")
    if division & 0x8000:
        raise ReadError("SMPTE time division is not supported (only ticks per quarter)")
    if division == 0:
        raise ReadError("MIDI time division is 0 ticks per quarter")
    return fmt, ntracks, division


def midi_bytes_to_score(data: bytes) -> Score:
    import symusic

    data = unwrap_riff(data)
    check_header(data)
    try:
        # sanitize_data clamps data bytes above 127 instead of failing the file
        sm = symusic.Score.from_midi(data, sanitize_data=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReadError(f"malformed MIDI: {msg}") from None
    return _from_symusic(sm)


def _from_symusic(sm) -> Score:
    tpq = float(sm.ticks_per_quarter)
    parts = []
    for track in sm.tracks:
        arr = track.notes.numpy()
        n = len(arr["time"])
        if n == 0:
            continue
        part = np.zeros(n, dtype=NOTE_DTYPE)
        part["start"] = arr["time"].astype(np.float64) / tpq
        part["duration"] = np.maximum(arr["duration"].astype(np.float64), 0.0) / tpq
        part["pitch"] = arr["pitch"].astype(np.int16) & 0x7F
        part["velocity"] = arr["velocity"].astype(np.int16) & 0x7F
        part["program"] = int(track.program) & 0x7F
        part["drum"] = bool(track.is_drum)
        parts.append(part)
    notes = np.concatenate(parts) if parts else np.zeros(0, dtype=NOTE_DTYPE)
    notes = notes[np.argsort(notes["start"], kind="stable")]

    tempos: list[tuple[float, float]] = []
    t = sm.tempos.numpy()
    for tick, mspq in zip(t["time"].tolist(), t["mspq"].tolist(), strict=True):
        qpm = 60e6 / mspq if mspq > 0 else _QPM_RANGE[1]
        tempos.append((tick / tpq, float(min(max(qpm, _QPM_RANGE[0]), _QPM_RANGE[1]))))
    sigs: list[tuple[float, int, int]] = []
    for ts in sm.time_signatures:
        if ts.numerator > 0 and ts.denominator > 0:
            sigs.append((ts.time / tpq, int(ts.numerator), int(ts.denominator)))
    return Score(notes=notes, tempos=sorted(tempos), time_signatures=sorted(sigs), n_tracks=len(sm.tracks))


def _score_file_to_midi(path: Path, data: bytes) -> bytes:
    """MusicXML / ABC / Humdrum -> MIDI bytes via music21 (slow but thorough)."""
    try:
        from music21 import converter, midi

        fmt = {".xml": "musicxml", ".mxl": "musicxml", ".musicxml": "musicxml", ".abc": "abc", ".krn": "humdrum"}[
            path.suffix.lower()
        ]
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
