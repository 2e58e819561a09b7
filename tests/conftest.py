"""Shared fixtures: the default corpus, a byte-level MIDI file builder, music of the kinds
people bring, and a tiny dataset with tiny trained models."""

import os
import struct
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TrainedModels, build_dataset

CORPUS = Path(__file__).resolve().parents[1] / "data" / "midi"

# Tests train from scratch unless they build a base of their own: `--init base` (the
# default) finds no base here, whatever the checkout ships in checkpoints/base/.
os.environ["MUSICGEN_BASES"] = tempfile.mkdtemp(prefix="musicgen-no-bases-")


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
        body += _event(delta, 0x90 | ch, pitch, vel[0] if vel else 64) + _event(
            ticks, 0x80 | ch, pitch, 0
        )
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


# --- music of the kinds people bring, built here (tests never read ../shared) ---------------


@dataclass
class Built:
    """A MIDI file written by mido, and what it holds, in seconds (pedal applied)."""

    path: Path
    onsets: np.ndarray  # seconds
    ends: np.ndarray  # sounding ends, seconds
    pitches: np.ndarray
    velocities: np.ndarray
    drums: np.ndarray  # bool
    pedal_presses: int = 0


def _write_mido(path: Path, tpq: int, tracks: list[list[tuple[int, object]]]) -> None:
    """tracks: lists of (absolute tick, mido message); written as a type-1 file."""
    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    for events in tracks:
        tr = mido.MidiTrack()
        now = 0
        for tick, msg in sorted(
            events, key=lambda e: (e[0], e[1].type == "note_on")
        ):  # note-offs first
            tr.append(msg.copy(time=tick - now))
            now = tick
        tr.append(mido.MetaMessage("end_of_track", time=0))
        mf.tracks.append(tr)
    mf.save(path)


@pytest.fixture(scope="session")
def performed_chorale(tmp_path_factory) -> Built:
    """The first chorale "performed": its notes at 76 qpm played with timing jitter and
    chord spread, a velocity curve, and the sustain pedal pressed through each bar, written
    at the file default of 120 bpm with 384 ticks per quarter (as a MAESTRO file is)."""
    import mido

    from musicgen.midi.read import read_score

    score = read_score(CORPUS / "bwv1.6.mid")
    rng = np.random.default_rng(11)
    # one note per (onset, pitch): unison doublings of the score would merge anyway
    _, first = np.unique(
        np.stack([np.round(score.notes["start"] * 48), score.notes["pitch"]], axis=1),
        axis=0,
        return_index=True,
    )
    notes = score.notes[np.sort(first)]
    beat = 60 / 76
    onsets = notes["start"] * beat + rng.normal(0, 0.012, len(notes)) + 0.5
    onsets = np.maximum(onsets, 0.0)
    keyup = onsets + notes["duration"] * beat * 0.8  # played detached: the pedal holds them
    curve = 45 + 50 * np.sin(np.linspace(0, np.pi, len(notes)))
    velocities = np.clip(np.round(curve + rng.normal(0, 6, len(notes))), 1, 127).astype(int)
    tpq, tps = 384, 384 * 2  # ticks per second at 120 bpm
    t = lambda s: int(round(s * tps))  # noqa: E731
    events: list[tuple[int, object]] = [(0, mido.MetaMessage("set_tempo", tempo=500_000))]
    bar = 4 * beat
    n_bars = int(np.ceil((keyup.max()) / bar)) + 1
    presses = [(k * bar + 0.55, (k + 1) * bar + 0.45) for k in range(n_bars)]
    for down, up in presses:
        events.append((t(down), mido.Message("control_change", control=64, value=100)))
        events.append((t(up), mido.Message("control_change", control=64, value=0)))
    for on, off, p, v in zip(onsets, keyup, notes["pitch"], velocities, strict=True):
        events.append((t(on), mido.Message("note_on", note=int(p), velocity=int(v))))
        events.append((max(t(off), t(on) + 1), mido.Message("note_off", note=int(p), velocity=0)))
    path = tmp_path_factory.mktemp("performed") / "performed.mid"
    _write_mido(path, tpq, [events])
    # what sounds: a key released under the pedal sounds until the pedal lifts
    on_ticks = np.array([t(x) for x in onsets]) / tps
    up_ticks = (
        np.array([max(t(off), t(on) + 1) for on, off in zip(onsets, keyup, strict=True)]) / tps
    )
    ends = up_ticks.copy()
    for down, up in presses:
        held = (up_ticks >= t(down) / tps) & (up_ticks < t(up) / tps)
        ends[held] = t(up) / tps
    for p in np.unique(notes["pitch"]):  # ... unless the key is struck again first
        mine = np.flatnonzero(notes["pitch"] == p)
        mine = mine[np.argsort(on_ticks[mine])]
        ends[mine[:-1]] = np.minimum(ends[mine[:-1]], on_ticks[mine[1:]])
    return Built(
        path,
        on_ticks,
        ends,
        notes["pitch"].astype(int),
        velocities,
        np.zeros(len(notes), bool),
        len(presses),
    )


@pytest.fixture(scope="session")
def pop_song(tmp_path_factory) -> Built:
    """Sixteen bars of a band at 112 bpm: drums (channel 10), bass, piano chords, a lead."""
    import mido

    tpq = 480
    rng = np.random.default_rng(5)
    tracks: list[list[tuple[int, object]]] = [
        [
            (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(112))),
            (0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
        ]
    ]
    rows = []  # (tick, length, pitch, velocity, channel, drum)
    chords = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)]
    for b in range(16):
        root = chords[b % 4]
        for q in range(4):
            tick = (b * 4 + q) * tpq
            rows.append((tick, tpq // 2, root[0] - 12, 90 + int(rng.integers(-6, 6)), 1, False))
            for p in root:
                rows.append((tick, tpq, p + 12, 60 + int(rng.integers(-4, 4)), 0, False))
            rows.append(
                (tick, 30, 36 if q % 2 == 0 else 38, 100 + int(rng.integers(-10, 10)), 9, True)
            )
            for h in range(2):
                rows.append((tick + h * tpq // 2, 20, 42, 70 + int(rng.integers(-10, 10)), 9, True))
            if b >= 8:
                rows.append((tick + tpq // 4, tpq // 4, 72 + [0, 2, 4, 7][q], 95, 2, False))
    programs = {0: 0, 1: 33, 2: 81}
    for ch in (0, 1, 2, 9):
        ev: list[tuple[int, object]] = (
            []
            if ch == 9
            else [(0, mido.Message("program_change", program=programs[ch], channel=ch))]
        )
        for tick, length, p, v, c, _ in rows:
            if c == ch:
                ev.append((tick, mido.Message("note_on", note=p, velocity=v, channel=ch)))
                ev.append((tick + length, mido.Message("note_off", note=p, velocity=0, channel=ch)))
        tracks.append(ev)
    path = tmp_path_factory.mktemp("pop") / "band.mid"
    _write_mido(path, tpq, tracks)
    r = np.array([(tick, length, p, v, d) for tick, length, p, v, _, d in rows])
    sec = 60 / 112 / tpq
    return Built(
        path, r[:, 0] * sec, (r[:, 0] + r[:, 1]) * sec, r[:, 2], r[:, 3], r[:, 4].astype(bool)
    )


# --- a tiny dataset and tiny trained models, once per session --------------------------------


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """Folder of a dataset ingested from the first 12 chorales of data/midi (train + val)."""
    return build_dataset(tmp_path_factory)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, dataset) -> TrainedModels:
    """`trained[name]`: TrainResult (best.ckpt, last.ckpt) of a tiny model trained STEPS steps."""
    return TrainedModels(tmp_path_factory, dataset)
