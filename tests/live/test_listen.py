"""The listener: rests after `wait` seconds with no key down and none struck, "resumed"
at the next key, the played notes as a Score on the followed tempo that maps back to
the seconds played, the pedal folded into durations; and follow() driving it from a port."""

import threading

import mido
import numpy as np
import pytest

from musicgen.live.fileport import FilePlayer
from musicgen.live.listen import Ended, Listener, Played, Rest, Resumed, follow
from musicgen.live.ports import pipe


def on(t, note, vel=80, ch=0):
    return mido.Message("note_on", note=note, velocity=vel, channel=ch, time=t)


def off(t, note, ch=0):
    return mido.Message("note_off", note=note, channel=ch, time=t)


def pedal(t, down, ch=0):
    return mido.Message("control_change", control=64, value=127 if down else 0, channel=ch, time=t)


def feed(listener, *msgs):
    events = []
    for m in msgs:
        events += listener.feed(m)
    return events


def test_a_rest_begins_wait_seconds_after_the_last_key_is_released():
    lis = Listener(wait=2.0)
    assert lis.poll(100.0) == []  # nothing played yet: nothing to answer
    feed(lis, on(1.0, 60), on(1.2, 64), off(1.4, 60), off(1.5, 64))
    assert lis.deadline == 3.5
    assert lis.poll(3.49) == []
    assert lis.poll(3.6) == [Rest(3.5, 1.5)]
    assert lis.poll(9.0) == []  # once


def test_a_key_held_down_is_never_a_rest_but_the_pedal_alone_is():
    lis = Listener(wait=1.0)
    feed(lis, pedal(0.0, True), on(0.0, 60))
    assert lis.poll(50.0) == []
    feed(lis, off(50.0, 60))  # the pedal still holds the sound: the hands have left
    assert lis.poll(51.0) == [Rest(51.0, 50.0)]


def test_the_next_key_struck_after_a_rest_resumes_before_it_is_played():
    lis = Listener(wait=1.0)
    feed(lis, on(0.0, 60), off(0.5, 60))
    lis.poll(2.0)
    feed(lis, pedal(3.0, True))  # a pedal is not playing again
    events = feed(lis, on(4.0, 62))
    assert events[0] == Resumed(4.0, 3.5)
    assert isinstance(events[1], Played) and events[1].msg.note == 62
    assert not lis.resting and lis.deadline == float("inf")


def test_the_score_is_in_quarters_on_the_tempo_and_maps_back_to_the_seconds_played():
    lis = Listener(wait=2.0, qpm=120)
    feed(lis, on(10.0, 60, 70), off(10.5, 60), on(10.5, 64, 90), on(11.0, 67), off(11.2, 64))
    score = lis.score(now=12.0)
    assert score.notes["start"].tolist() == [0.0, 1.0, 2.0]
    assert score.notes["duration"].tolist() == pytest.approx([1.0, 1.4, 2.0])  # 67 still down at 12
    assert score.notes["velocity"].tolist() == [70, 90, 80]
    secs = score.quarters_to_seconds(score.notes["start"]) + lis.tempo.origin
    assert secs.tolist() == [10.0, 10.5, 11.0]


def test_a_followed_tempo_map_gives_back_the_seconds_played():
    lis = Listener()
    times = np.cumsum([0.0] + [0.6] * 6 + [0.3] * 4 + [0.6] * 4)
    for i, t in enumerate(times):
        feed(lis, on(float(t), 60 + i % 5), off(float(t) + 0.2, 60 + i % 5))
    score = lis.score()
    assert lis.tempo.qpm == pytest.approx(100, rel=0.03)
    back = score.quarters_to_seconds(score.notes["start"]) + lis.tempo.origin
    assert back == pytest.approx(times)


def test_the_pedal_holds_a_released_key_until_it_lifts_or_the_key_is_struck_again():
    lis = Listener(qpm=60)  # a quarter a second
    feed(lis, on(0.0, 60), pedal(0.5, True), off(1.0, 60), on(1.0, 64), off(1.5, 64))
    feed(lis, on(2.0, 64), off(2.5, 64), pedal(3.0, False))
    notes = lis.score().notes
    assert list(zip(notes["pitch"].tolist(), notes["duration"].tolist(), strict=True)) == [
        (60, 3.0),  # released under the pedal: sounds until it lifts
        (64, 1.0),  # struck again at 2.0: that cuts it
        (64, 1.0),
    ]


def test_program_and_drum_channel_are_kept():
    lis = Listener()
    feed(lis, mido.Message("program_change", channel=1, program=40, time=0.0))
    feed(lis, on(0.0, 60, ch=1), on(0.0, 36, ch=9), off(0.1, 60, ch=1), off(0.1, 36, ch=9))
    n = lis.score().notes
    assert n["program"].tolist() == [40, 0] and n["drum"].tolist() == [False, True]


def _collect(port, clock, listener):
    events: list = []
    th = threading.Thread(target=lambda: events.extend(follow(port, clock, listener)))
    th.start()
    return th, events


def test_follow_reports_rest_and_resumed_at_clock_times(clock):
    out, inp = pipe(clock)
    th, events = _collect(inp, clock, Listener(wait=2.0))
    clock.wait_for_sleepers(1)
    out.send(mido.Message("note_on", note=60, velocity=80))
    clock.wait_for_sleepers(1)
    clock.set(0.5)
    out.send(mido.Message("note_off", note=60))
    clock.wait_for_sleepers(1)
    clock.set(2.49)
    clock.wait_for_sleepers(1)
    assert not any(isinstance(e, Rest) for e in events)
    clock.set(2.5)
    clock.wait_for_sleepers(1)
    assert events[-1] == Rest(2.5, 0.5)
    clock.set(4.0)
    out.send(mido.Message("note_on", note=62, velocity=80))
    clock.wait_for_sleepers(1)
    assert events[-2] == Resumed(4.0, 3.5)
    clock.set(4.5)
    inp.close()  # the player's port goes away: the key they held lets go
    th.join(5)
    assert events[-1] == Ended(4.5)


def test_follow_a_file_player_to_its_end(clock, tiny_midi):
    player = FilePlayer(tiny_midi, clock, start_at=0.0)
    listener = Listener(wait=0.5, qpm=120)
    th, events = _collect(player, clock, listener)
    for t in np.arange(0.0, 2.0, 0.25):  # the file's last note ends at 2.0 s
        clock.set(float(t))
        clock.wait_for_sleepers(2)  # the player and the follower
    clock.set(2.0)
    player.join(5)
    th.join(5)
    assert isinstance(events[-1], Ended)
    assert any(isinstance(e, Rest) for e in events) is False  # 0.5 s never passed idle
    notes = listener.score().notes
    assert sorted(notes["pitch"].tolist()) == [38, 60, 64, 67]
