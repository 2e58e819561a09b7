"""The scheduler sends each message at its clock time, in order, only valid MIDI, and
leaves nothing sounding however a session ends."""

import threading

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musicgen.live.clock import ManualClock
from musicgen.live.messages import Timed, note
from musicgen.live.ports import MemoryOutput, PortGone
from musicgen.live.scheduler import Scheduler
from tests.live.conftest import note_balance, synth_state


def _msgs(out):
    return [m for _, m in out.sent]


def _run_to(clock, t, sleepers=1):
    clock.set(t)
    clock.wait_for_sleepers(sleepers)


def test_messages_go_out_at_their_times_in_order(scheduler, clock, out):
    events = [
        *note(1.0, 2.0, 60, 90),
        *note(0.5, 1.0, 62, 70),  # its note-off at 1.0 goes before the note-on at 1.0
        *note(3.0, 3.25, 64, 100, channel=4),
        Timed(0.25, mido.Message("program_change", channel=4, program=33)),
    ]
    assert scheduler.submit(reversed(events))  # submitted out of order
    clock.wait_for_sleepers(1)
    assert out.sent == []  # nothing before its time
    times = sorted({t for t, _ in events})
    for t in times:
        _run_to(clock, t - 1e-3)
        before = len(out.sent)
        _run_to(clock, t)
        sent_now = out.sent[before:]
        assert sent_now and all(when == t for when, _ in sent_now)
    got = [(t, m.type, getattr(m, "note", None)) for t, m in out.sent]
    assert got == [
        (0.25, "program_change", None),
        (0.5, "note_on", 62),
        (1.0, "note_off", 62),
        (1.0, "note_on", 60),
        (2.0, "note_off", 60),
        (3.0, "note_on", 64),
        (3.25, "note_off", 64),
    ]
    assert scheduler.stats().late_max == 0.0  # the manual clock stood at each time


def test_a_late_message_goes_at_once_and_its_lateness_is_measured(scheduler, clock, out):
    _run_to(clock, 5.0)
    scheduler.submit(Timed(4.0, mido.Message("note_on", note=60, velocity=80)))
    clock.wait_for_sleepers(1)
    assert out.sent[0][0] == 5.0
    assert scheduler.stats().late_max == 1.0


def test_stop_releases_every_sounding_note_and_resets_each_channel_used(scheduler, clock, out):
    scheduler.submit(note(0.0, 10.0, 60, 90) + note(0.0, 10.0, 67, 90, channel=2))
    scheduler.submit(Timed(0.0, mido.Message("control_change", channel=2, control=64, value=127)))
    _run_to(clock, 1.0)
    assert scheduler.sounding() == {(0, 60), (2, 67)}
    scheduler.stop()
    msgs = _msgs(out)
    ons, offs = note_balance(msgs)
    assert ons == offs == 2
    assert synth_state(msgs) == ({}, set())
    tail = [(m.channel, m.control, m.value) for m in msgs if m.type == "control_change"][-4:]
    assert tail == [(0, 64, 0), (0, 123, 0), (2, 64, 0), (2, 123, 0)]
    assert scheduler.stats().dropped == 2  # the two note-offs at 10 s
    assert not scheduler.running
    assert scheduler.submit(note(11.0, 12.0, 60, 90)) is False


def test_ctrl_c_in_the_with_block_leaves_nothing_sounding(clock, out):
    with pytest.raises(KeyboardInterrupt):
        with Scheduler(out, clock) as s:
            s.submit(note(0.0, 30.0, 48, 100))
            clock.wait_for_sleepers(1)
            assert s.sounding() == {(0, 48)}
            raise KeyboardInterrupt
    assert synth_state(_msgs(out)) == ({}, set())
    assert note_balance(_msgs(out)) == (1, 1)


def test_stop_with_drain_plays_out_what_is_queued_first(scheduler, clock, out):
    scheduler.submit(note(1.0, 2.0, 60, 90))
    clock.wait_for_sleepers(1)
    stopper = threading.Thread(target=scheduler.stop, kwargs={"drain": True})
    stopper.start()
    _run_to(clock, 1.0)  # stopping, yet still playing: the input ended, the answer not
    assert [m.type for m in _msgs(out)] == ["note_on"]
    clock.set(2.0)
    stopper.join(5)
    assert not stopper.is_alive()
    assert [(t, m.type) for t, m in out.sent[:2]] == [(1.0, "note_on"), (2.0, "note_off")]


def test_cancel_after_drops_later_events_and_releases_at_t(scheduler, clock, out):
    scheduler.submit(note(0.0, 4.0, 60, 90))  # sounds across t: cut at t
    scheduler.submit(note(1.0, 1.5, 62, 90))  # over before t: untouched
    scheduler.submit(note(3.0, 3.5, 64, 90))  # starts at t: dropped
    scheduler.submit(note(5.0, 6.0, 65, 90))  # after t: dropped
    scheduler.submit(Timed(0.5, mido.Message("control_change", control=64, value=100)))
    for t in (0.0, 0.5, 1.0, 1.5):
        _run_to(clock, t)
    assert scheduler.cancel_after(3.0) == 5  # 60's off, 64's on and off, 65's on and off
    _run_to(clock, 10.0)
    got = [(t, m.type, getattr(m, "note", None), getattr(m, "value", None)) for t, m in out.sent]
    assert got == [
        (0.0, "note_on", 60, None),
        (0.5, "control_change", None, 100),
        (1.0, "note_on", 62, None),
        (1.5, "note_off", 62, None),
        (10.0, "note_off", 60, None),  # due at 3.0; the clock jumped to 10
        (10.0, "control_change", None, 0),
    ]
    assert scheduler.sounding() == set()
    assert synth_state(_msgs(out)) == ({}, set())


def test_the_model_plays_again_after_giving_way(scheduler, clock, out):
    scheduler.submit(note(0.0, 8.0, 60, 90))
    _run_to(clock, 0.0)
    _run_to(clock, 1.0)
    scheduler.cancel_after(1.0)
    scheduler.submit(note(1.0, 2.0, 60, 90))  # same key, same instant: after the release
    for t in (1.0, 2.0):
        _run_to(clock, t)
    assert [(t, m.type) for t, m in out.sent] == [
        (0.0, "note_on"),
        (1.0, "note_off"),
        (1.0, "note_on"),
        (2.0, "note_off"),
    ]


def test_a_take_decoded_before_the_player_came_back_is_refused(scheduler, clock, out):
    take = scheduler.epoch  # the performer starts a take
    assert scheduler.submit(note(1.0, 2.0, 60, 90), epoch=take)
    scheduler.cancel_after(0.5)  # the player comes back in
    # the performer, mid-decode, hands over what it computed for the old take
    assert scheduler.submit(note(2.0, 3.0, 62, 90), epoch=take) is False
    assert scheduler.submit(note(2.0, 3.0, 64, 90), epoch=scheduler.epoch)  # a new take
    for t in (0.0, 0.5, 1.0, 2.0, 3.0):
        _run_to(clock, t)
    assert [(t, m.type, m.note) for t, m in out.sent] == [
        (2.0, "note_on", 64),
        (3.0, "note_off", 64),
    ]
    assert scheduler.stats().stale == 2


def test_a_key_struck_while_sounding_is_restruck_and_ends_once(scheduler, clock, out):
    scheduler.submit(note(0.0, 2.0, 60, 90) + note(1.0, 1.5, 60, 90))
    scheduler.submit(Timed(2.5, mido.Message("note_off", note=61)))
    for t in (0.0, 1.0, 1.5, 2.0, 3.0):
        _run_to(clock, t)
    assert [(t, m.type) for t, m in out.sent] == [
        (0.0, "note_on"),
        (1.0, "note_off"),
        (1.0, "note_on"),
        (2.0, "note_off"),
    ]
    s = scheduler.stats()
    assert (s.retriggers, s.stray_offs) == (1, 1)  # and 61's lone note-off never went out


def test_a_port_that_goes_away_stops_the_scheduler_quietly(scheduler, clock, out):
    scheduler.submit(note(0.0, 5.0, 60, 90))
    _run_to(clock, 0.0)
    out.fail = OSError("device unplugged")
    scheduler.submit(note(2.0, 3.0, 62, 90))
    clock.set(2.0)
    scheduler._thread.join(5)
    assert isinstance(scheduler.error, PortGone) and isinstance(scheduler.error.__cause__, OSError)
    assert str(scheduler.error) == "MIDI output 'synth' stopped: device unplugged"
    assert not scheduler.running
    assert scheduler.submit(note(4.0, 5.0, 64, 90)) is False
    scheduler.stop()  # no raise


def test_every_message_sent_is_valid_midi(scheduler, clock, out):
    wild = mido.Message("note_on").copy(skip_checks=True, note=300, velocity=500, channel=40)
    scheduler.submit([Timed(0.0, wild), *note(0.5, 1.0, -5, 1000, channel=99)])
    scheduler.submit(Timed(0.1, mido.Message("pitchwheel", channel=3, pitch=8191)))
    _run_to(clock, 2.0)
    scheduler.stop()
    for _, m in out.sent:
        assert mido.Message.from_bytes(m.bytes()) == m
    assert any(m.type == "pitchwheel" and m.pitch == 0 for m in _msgs(out))  # bend reset


def test_submit_refuses_a_bad_batch_whole(scheduler):
    with pytest.raises(ValueError):
        scheduler.submit([*note(0.0, 1.0, 60, 90), Timed(float("nan"), mido.Message("note_on"))])
    assert scheduler.pending == 0


# A session is any mix of notes submitted, time passing and the model giving way, then a stop.
_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("note"),
            st.floats(0, 4),  # start, ahead of now
            st.floats(0, 3),  # duration
            st.integers(58, 62),  # few keys: many overlaps and re-strikes
            st.integers(0, 2),  # channel
        ),
        st.tuples(st.just("pedal"), st.floats(0, 4), st.booleans()),
        st.tuples(st.just("advance"), st.floats(0, 2)),
        st.tuples(st.just("cancel"), st.floats(-1, 3)),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(ops=_ops, drain=st.booleans())
def test_random_sessions_leave_no_stuck_notes(ops, drain):
    clock = ManualClock(0.0)
    out = MemoryOutput("synth", clock=clock)
    s = Scheduler(out, clock).start()
    for op in ops:
        now = clock.now()
        if op[0] == "note":
            s.submit(note(now + op[1], now + op[1] + op[2], op[3], 80, channel=op[4]))
        elif op[0] == "pedal":
            s.submit(
                Timed(now + op[1], mido.Message("control_change", control=64, value=127 * op[2]))
            )
        elif op[0] == "advance":
            clock.advance(op[1])
            clock.wait_for_sleepers(1)
        else:
            s.cancel_after(now + op[1])
    if drain:  # the end of input: play out, then stop
        clock.advance(10.0)
        clock.wait_for_sleepers(1)
    s.stop()
    msgs = _msgs(out)
    ons, offs = note_balance(msgs)
    assert ons == offs
    assert synth_state(msgs) == ({}, set())
    assert s.sounding() == set()
    # no note-off for a key that was not sounding: the on/off stream alternates per key
    state: dict = {}
    for m in msgs:
        if m.type in ("note_on", "note_off"):
            key = (m.channel, m.note)
            assert state.get(key, "note_off") != m.type
            state[key] = m.type
