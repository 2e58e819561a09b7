"""A MIDI file as the player: its notes arrive at their clock times (tempo map applied),
one channel per instrument, and closing it early lifts every key it holds."""

import mido
import pytest

from musicgen.errors import MusicgenError
from musicgen.live.fileport import FilePlayer, file_events
from musicgen.midi import read_score


def test_file_events_put_each_instrument_on_its_channel_with_its_program(tiny_midi):
    events = file_events(read_score(tiny_midi), start_at=10.0)
    programs = [(t, m.channel, m.program) for t, m in events if m.type == "program_change"]
    assert sorted(programs) == [(10.0, 0, 0), (10.0, 1, 33)]
    times = [t for t, _ in events]
    assert times == sorted(times)


def test_the_file_plays_its_notes_at_the_right_clock_times(clock, tiny_midi):
    player = FilePlayer(tiny_midi, clock, start_at=1.0)
    expected = [
        (1.0, "note_on", 60),
        (1.5, "note_off", 60),
        (1.5, "note_on", 64),
        (1.5, "note_on", 38),
        (1.75, "note_off", 38),
        (2.0, "note_off", 64),
        (2.0, "note_on", 67),
        (3.0, "note_off", 67),  # one quarter at 60 qpm
    ]
    clock.wait_for_sleepers(1)
    assert player.drain() == []  # nothing before its time, not even the program changes
    got = []
    for t in sorted({t for t, _, _ in expected}):
        clock.set(t - 0.01)
        clock.wait_for_sleepers(1)
        assert player.drain() == []
        clock.set(t)
        if t < 3.0:
            clock.wait_for_sleepers(1)
        else:
            player.join(5)
        got += [(m.time, m.type, getattr(m, "note", None)) for m in player.drain()]
    notes = [g for g in got if g[1] != "program_change"]
    assert notes == expected
    assert player.ended


def test_closing_the_player_early_lifts_its_keys(clock, tiny_midi):
    player = FilePlayer(tiny_midi, clock, start_at=0.0)
    clock.set(0.6)  # E4 and D2 down
    clock.wait_for_sleepers(1)
    player.close()
    offs = [(m.time, m.note) for m in player.drain() if m.type == "note_off"]
    assert offs == [(0.5, 60), (0.6, 64), (0.6, 38)]  # E4 and D2 were down at 0.6
    assert player.ended
    player.deliver(mido.Message("note_on", note=1, velocity=1))  # after the end: ignored
    assert player.drain() == []


def test_a_missing_or_damaged_file_fails_in_one_line_that_names_it(clock, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd nonsense")
    for path in (tmp_path / "missing.mid", bad):
        with pytest.raises(MusicgenError) as err:
            FilePlayer(path, clock)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
