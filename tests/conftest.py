"""Shared fixtures: the default corpus and a byte-level MIDI file builder."""

import struct
import types
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "data" / "midi"


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def _event(delta: int, *data: int) -> bytes:
    return _vlq(delta) + bytes(data)


def _header(fmt=0, ntracks=1, division=480, length=6, extra=b"") -> bytes:
    return b"MThd" + struct.pack(">IHHH", length, fmt, ntracks, division) + extra


def _track(body: bytes, length: int | None = None) -> bytes:
    return b"MTrk" + struct.pack(">I", len(body) if length is None else length) + body


def _notes(*notes, ch=0, eot=True) -> bytes:
    """Track body of (delta before note-on, pitch, length in ticks[, velocity]) played one after another."""
    body = b""
    for delta, pitch, ticks, *vel in notes:
        body += _event(delta, 0x90 | ch, pitch, vel[0] if vel else 64) + _event(ticks, 0x80 | ch, pitch, 0)
    return body + (_event(0, 0xFF, 0x2F, 0) if eot else b"")


@pytest.fixture(scope="session")
def smf():
    """Builder for Standard MIDI Files, byte by byte (see the helpers above)."""
    return types.SimpleNamespace(
        vlq=_vlq,
        event=_event,
        header=_header,
        track=_track,
        notes=_notes,
        EOT=_event(0, 0xFF, 0x2F, 0),
        tempo=lambda delta, us: _event(delta, 0xFF, 0x51, 3) + us.to_bytes(3, "big"),
        timesig=lambda delta, num, den_pow: _event(delta, 0xFF, 0x58, 4, num, den_pow, 24, 8),
        program=lambda delta, prog, ch=0: _event(delta, 0xC0 | ch, prog),
        simple=lambda: _header() + _track(_notes((0, 60, 480), (0, 64, 480), (0, 67, 960))),
    )


@pytest.fixture(scope="session")
def corpus_files() -> list[Path]:
    files = sorted(CORPUS.glob("*.mid"))
    assert len(files) == 410, "the default corpus (data/midi) should hold 410 chorales"
    return files
