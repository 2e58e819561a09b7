"""The session file: player and model on their own named tracks with the notes each
played at the seconds they played them, nothing left sounding, and its sidecar."""

import json

import mido
import pytest

from musicgen.live.messages import note
from musicgen.live.record import write_session
from musicgen.live.scheduler import Sent
from musicgen.live.tempo import TempoFollower
from musicgen.midi import read_score


def _player():
    msgs = [
        mido.Message("note_on", note=60, velocity=70, time=100.0),
        mido.Message("control_change", control=64, value=127, time=100.2),
        mido.Message("note_off", note=60, time=100.5),
        mido.Message("control_change", control=64, value=0, time=100.75),
        mido.Message("note_on", note=62, velocity=75, time=101.0),  # still down at the end
    ]
    return msgs


def _model():
    sent = []
    for t, m in note(102.0, 102.5, 72, 90, channel=1) + note(102.5, 103.25, 76, 95, channel=1):
        sent.append(Sent(t + 0.001, t, m))  # what the scheduler logs: sent a little late
    return sent


def _notes(track):
    tick, on, out = 0, {}, []
    for m in track:
        tick += m.time
        if m.type == "note_on" and m.velocity:
            on[m.note] = tick
        elif m.type in ("note_on", "note_off"):
            out.append((m.note, on.pop(m.note), tick))
    return sorted(out), on


def test_both_parts_on_their_own_named_tracks_with_the_right_notes(tmp_path):
    mid, side = write_session(tmp_path / "session", _player(), _model(), {"seed": 7}, start=100.0)
    assert mid.name == "session.mid" and side.name == "session.json"
    f = mido.MidiFile(mid)
    names = [next(m.name for m in t if m.type == "track_name") for t in f.tracks]
    assert names == ["musicgen live", "player", "model"]
    per_second = 2 * f.ticks_per_beat  # 120 qpm
    player, left = _notes(f.tracks[1])
    assert left == {}  # the key still down got its note-off at the end
    end = round(3.251 * per_second)
    assert player == [(60, 0, per_second // 2), (62, per_second, end)]
    assert any(m.type == "control_change" and m.control == 64 for m in f.tracks[1])
    model, _ = _notes(f.tracks[2])
    assert model == [
        (72, round(2.001 * per_second), round(2.501 * per_second)),
        (76, round(2.501 * per_second), end),
    ]
    assert all(m.channel == 1 for m in f.tracks[2] if not m.is_meta)
    # and musicgen reads it back: four notes at the seconds played (the pedal folded in)
    score = read_score(mid)
    secs = score.quarters_to_seconds(score.notes["start"])
    assert sorted(secs.round(3).tolist()) == [0.0, 1.0, 2.001, 2.501]


def test_the_sidecar_holds_what_was_passed_and_what_was_played(tmp_path):
    info = {"checkpoint": "checkpoints/pretrained/gru", "seed": 3, "settings": {"wait": 2.0}}
    _, side = write_session(tmp_path / "s.mid", _player(), _model(), info, start=100.0)
    data = json.loads(side.read_text())
    assert data["format"] == "musicgen-live-session"
    assert data["checkpoint"] == info["checkpoint"] and data["seed"] == 3
    assert data["settings"] == {"wait": 2.0}
    assert data["tracks"] == {"player": 2, "model": 2}
    assert data["seconds"] == pytest.approx(3.251)


def test_a_followed_tempo_map_keeps_the_seconds_played(tmp_path):
    tempo = TempoFollower(90, fixed=True)
    tempo.onset(100.0)
    mid, _ = write_session(tmp_path / "t.mid", _player(), _model(), start=100.0, tempo=tempo)
    f = mido.MidiFile(mid)
    tempos = [m.tempo for m in f.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(90)]
    score = read_score(mid)
    secs = score.quarters_to_seconds(score.notes["start"])
    assert sorted(secs.round(3).tolist()) == [0.0, 1.0, 2.001, 2.501]
