"""What reaches the port is valid MIDI: fields clamped, velocity-0 note-ons named for what
they are, anything but channel messages refused."""

import mido
import pytest

from musicgen.live.messages import Timed, clean, note


def test_clean_clamps_fields_a_skip_checks_message_let_through():
    bad = mido.Message("note_on", channel=0, note=60, velocity=64).copy(
        skip_checks=True, note=200, velocity=-3, channel=19
    )
    m = clean(bad)
    assert (m.type, m.channel, m.note) == ("note_off", 15, 127)  # velocity 0 after clamping
    assert mido.Message.from_bytes(m.bytes()) == m
    bend = mido.Message("pitchwheel").copy(skip_checks=True, pitch=99999)
    assert clean(bend).pitch == 8191


def test_a_velocity_zero_note_on_becomes_a_note_off():
    m = clean(mido.Message("note_on", note=61, velocity=0, channel=2))
    assert (m.type, m.note, m.channel) == ("note_off", 61, 2)


@pytest.mark.parametrize(
    "msg",
    [
        mido.MetaMessage("set_tempo", tempo=500000),
        mido.Message("sysex", data=[1, 2, 3]),
        mido.Message("clock"),
        mido.Message("note_on").copy(skip_checks=True, note=60.5),
        "note_on 60",
    ],
)
def test_clean_refuses_what_is_not_a_channel_message(msg):
    with pytest.raises(ValueError):
        clean(msg)


def test_note_clamps_a_models_numbers_and_never_ends_before_it_starts():
    on, off = note(2.0, 1.0, pitch=140, velocity=0, channel=3)
    assert on == Timed(2.0, mido.Message("note_on", channel=3, note=127, velocity=1))
    assert off.time == 2.0 and off.msg.type == "note_off" and off.msg.note == 127
