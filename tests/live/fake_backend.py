"""A mido backend module with made-up devices, so port lookup by name is tested the way
rtmidi is used (through `mido.Backend`) on machines without MIDI hardware."""

import mido.ports

INPUTS = ["Keystation 49:Keystation 49 MIDI 1 20:0", "Pads 24:0"]
OUTPUTS = ["FLUID Synth (1234):Synth input port 128:0", "Midi Through:Midi Through Port-0 14:0"]
BROKEN = {"on": False}  # True: the MIDI system cannot start, as without an ALSA sequencer
OPENED: list = []


def get_devices(**_):
    if BROKEN["on"]:
        raise OSError("MidiInAlsa::initialize: error creating ALSA sequencer client object.\nmore")
    names = dict.fromkeys(INPUTS + OUTPUTS)
    return [{"name": n, "is_input": n in INPUTS, "is_output": n in OUTPUTS} for n in names]


class Input(mido.ports.BaseInput):
    def _open(self, virtual=False, callback=None, **_):
        self.virtual, self.callback = virtual, callback
        OPENED.append(self)


class Output(mido.ports.BaseOutput):
    def _open(self, virtual=False, **_):
        self.virtual, self.sent = virtual, []
        OPENED.append(self)

    def _send(self, msg):
        self.sent.append(msg)
