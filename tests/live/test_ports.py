"""Ports by name: a wrong name says in one line which ports there are; inputs stamp each
message with the clock; the in-process pair carries messages from a test to a listener;
a real rtmidi port is tried where the system has MIDI, and skipped with the reason if not."""

import mido
import pytest

from musicgen.errors import MusicgenError
from musicgen.live.clock import RealClock
from musicgen.live.fileport import FilePlayer
from musicgen.live.ports import (
    InputPort,
    list_ports,
    open_input,
    open_output,
    pipe,
    resolve_name,
)
from tests.live import fake_backend

FAKE = "tests.live.fake_backend"


@pytest.fixture(autouse=True)
def _fresh_backend():
    fake_backend.BROKEN["on"] = False
    fake_backend.OPENED.clear()
    yield
    fake_backend.BROKEN["on"] = False


def test_list_ports_gives_inputs_and_outputs():
    ports = list_ports(FAKE)
    assert ports.inputs == fake_backend.INPUTS
    assert ports.outputs == fake_backend.OUTPUTS


def test_a_port_name_that_does_not_exist_says_which_there_are_in_one_line(clock):
    with pytest.raises(MusicgenError) as err:
        open_output("Roland", backend=FAKE)
    text = str(err.value)
    assert "\n" not in text
    assert "'Roland'" in text
    for name in fake_backend.OUTPUTS:
        assert repr(name) in text
    with pytest.raises(MusicgenError, match="Pads 24:0") as err:
        open_input("nanoKEY", clock, backend=FAKE)
    assert "\n" not in str(err.value)


def test_a_unique_part_of_a_name_finds_the_port(clock):
    port = open_output("fluid synth", backend=FAKE)
    assert port.name == fake_backend.OUTPUTS[0]
    with pytest.raises(MusicgenError, match="matches several"):
        resolve_name("Midi", ["Midi A", "Midi B"], "output")
    with pytest.raises(MusicgenError, match="there are: none"):
        resolve_name("x", [], "input")


def test_a_virtual_port_is_opened_by_its_own_name(clock):
    port = open_output("musicgen", virtual=True, backend=FAKE)
    assert port.name == "musicgen" and port.virtual
    with pytest.raises(MusicgenError, match="needs a name"):
        open_output(None, virtual=True, backend=FAKE)


def test_a_device_input_stamps_each_message_with_the_clock(clock):
    port = open_input("Keystation", clock, backend=FAKE)
    device = fake_backend.OPENED[-1]
    clock.set(2.5)
    device.callback(mido.Message("note_on", note=60, velocity=70))
    device.callback(mido.Message("clock"))  # a keyboard's clock ticks are not the player
    assert port.ready.is_set()
    got = port.drain()
    assert [(m.type, m.time) for m in got] == [("note_on", 2.5)]
    assert not port.ready.is_set()
    port.close()
    assert port.ended and port.ready.is_set()


def test_when_midi_cannot_start_the_error_is_one_line(clock):
    fake_backend.BROKEN["on"] = True
    for call in (lambda: list_ports(FAKE), lambda: open_output("Synth", backend=FAKE)):
        with pytest.raises(MusicgenError) as err:
            call()
        assert str(err.value) == (
            "MIDI is not available here: MidiInAlsa::initialize: "
            "error creating ALSA sequencer client object."
        )


def test_a_backend_that_is_not_installed_says_so():
    with pytest.raises(MusicgenError, match="cannot load"):
        list_ports("no.such.backend")


def test_pipe_carries_messages_from_output_to_input_at_clock_times(clock):
    out, inp = pipe(clock)
    assert isinstance(inp, InputPort)
    clock.set(1.0)
    out.send(mido.Message("note_on", note=64, velocity=90))
    clock.set(1.25)
    out.send(mido.Message("note_off", note=64))
    assert [(m.type, m.time) for m in inp.iter_pending()] == [("note_on", 1.0), ("note_off", 1.25)]
    assert [t for t, _ in out.sent] == [1.0, 1.25]


def test_a_midi_file_as_input_is_a_file_player(clock, tiny_midi):
    port = open_input(tiny_midi, clock)
    assert isinstance(port, FilePlayer)
    port.close()


def test_a_real_rtmidi_virtual_port_pair_if_the_system_has_midi():
    try:
        list_ports()
    except MusicgenError as exc:
        assert "\n" not in str(exc)
        pytest.skip(f"no MIDI system on this machine: {exc}")
    clock = RealClock()
    try:
        out = open_output("musicgen-test", virtual=True)
    except MusicgenError as exc:
        pytest.skip(f"virtual ports not supported here: {exc}")
    with out:
        inp = open_input("musicgen-test", clock)
        try:
            out.send(mido.Message("note_on", note=60, velocity=64))
            assert inp.ready.wait(5.0)  # a safety net, not a timing
            assert [m.note for m in inp.drain()] == [60]
        finally:
            inp.close()
