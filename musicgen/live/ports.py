"""MIDI ports by name: the player's keyboard in, the model's synth out, or stand-ins for both.

Devices go through mido with the python-rtmidi backend. Every input is an `InputPort`
whose messages carry `msg.time` = the clock second they were played (stamped on arrival,
in rtmidi's own thread), so the listener never sees the delay of whoever reads the port;
its `ready` wake lets one loop sleep until the next message *or* the next clock
deadline (a rest), without polling. A MIDI file given as the input plays as a
`FilePlayer` (see fileport.py); `pipe()` is an in-process output -> input pair for tests.

Where MIDI cannot be opened (no ALSA sequencer, no JACK: a container, a server), the
failure is one line naming the reason, not ALSA's and JACK's own chatter on stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import NamedTuple

import mido
import mido.ports

from musicgen.errors import MusicgenError
from musicgen.live.clock import Clock, Wake
from musicgen.live.messages import CHANNEL_TYPES

DEFAULT_BACKEND = "mido.backends.rtmidi"
MIDI_FILE_SUFFIXES = (".mid", ".midi", ".kar", ".smf", ".rmi")


class PortGone(MusicgenError):
    """An output port stopped taking messages (unplugged, closed, its client quit)."""


class Ports(NamedTuple):
    inputs: list[str]
    outputs: list[str]


@contextlib.contextmanager
def _quiet_c_stderr():
    """Hide what ALSA and JACK print from C while rtmidi probes them: the one-line
    MusicgenError says it better. MUSICGEN_DEBUG=1 shows everything."""
    if os.environ.get("MUSICGEN_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _backend(backend: str | None) -> mido.Backend:
    name = backend or DEFAULT_BACKEND
    try:
        with _quiet_c_stderr():
            return mido.Backend(name, load=True)
    except ImportError as exc:
        hint = " (pip install python-rtmidi)" if "rtmidi" in name else ""
        raise MusicgenError(f"MIDI backend {name} cannot load: {_one_line(exc)}{hint}") from None


def list_ports(backend: str | None = None) -> Ports:
    """The input and output port names there are now (for `musicgen ports`)."""
    mb = _backend(backend)
    try:
        with _quiet_c_stderr():
            return Ports(list(mb.get_input_names()), list(mb.get_output_names()))
    except (OSError, RuntimeError, ValueError) as exc:
        raise MusicgenError(f"MIDI is not available here: {_one_line(exc)}") from None


def resolve_name(name: str, names: list[str], kind: str) -> str:
    """`name` itself, or the one port whose name contains it (ALSA appends client:port
    numbers that change between sessions); otherwise one line listing the ports."""
    if name in names:
        return name
    close = [n for n in names if name.lower() in n.lower()]
    if len(close) == 1:
        return close[0]
    there = ", ".join(repr(n) for n in names) if names else "none"
    what = "matches several" if close else "is not one"
    raise MusicgenError(f"MIDI {kind} port {name!r} {what} of the ports there are: {there}")


class InputPort(mido.ports.BaseInput):
    """An input whose messages carry `msg.time` = clock seconds when they were played.

    Readers either call `drain()` after `ready` wakes them, or use mido's `poll()` /
    `iter_pending()`. `ended` turns True when no message will ever come again (the port
    was closed, the file finished); `ready` is set then too, so a sleeper notices.
    """

    _locking = False  # deque appends and pops are atomic; mido's lock would only add waits

    def __init__(self, name: str, clock: Clock) -> None:
        self.clock = clock
        self.ready = Wake()
        self.ended = False
        super().__init__(name)

    def deliver(self, msg: mido.Message, t: float | None = None) -> None:
        """Queue `msg` as played at clock time `t` (now if None): the port's producer side."""
        if msg.type not in CHANNEL_TYPES or self.ended:
            return
        self._messages.append(msg.copy(time=self.clock.now() if t is None else float(t)))
        self.ready.set()

    def drain(self) -> list[mido.Message]:
        self.ready.clear()  # before popping: a message arriving meanwhile sets it again
        out = []
        while self._messages:
            out.append(self._messages.popleft())
        if self.ended:
            self.ready.set()  # an ended port stays "ready" so nobody sleeps on it forever
        return out

    def _receive(self, block: bool = True) -> None:
        return None  # everything is in self._messages already

    def end(self) -> None:
        self.ended = True
        self.ready.set()

    def _close(self) -> None:
        self.end()

    def __del__(self) -> None:
        if hasattr(self, "closed"):  # a constructor that failed early left nothing to close
            self.close()


class DeviceInput(InputPort):
    """A backend (rtmidi) input: its callback stamps each message with the clock."""

    def __init__(self, name: str, clock: Clock, backend: mido.Backend, virtual: bool = False):
        self._port: mido.ports.BaseInput | None = None
        super().__init__(name, clock)
        # Opened only now: the callback may fire at once, and must find the queue built.
        with _quiet_c_stderr():
            self._port = backend.open_input(name, virtual=virtual, callback=self.deliver)

    def _close(self) -> None:
        if self._port is not None:
            self._port.close()
        super()._close()


class MemoryOutput(mido.ports.BaseOutput):
    """An in-process output: keeps every (clock time, message) it was sent in `sent`,
    and passes each on to `link` (an input) if given. Set `fail` to an exception to make
    every later send raise it, as a port that went away does."""

    def __init__(self, name: str = "memory", clock: Clock | None = None, link=None) -> None:
        self.clock = clock
        self.link = link
        self.sent: list[tuple[float, mido.Message]] = []
        self.fail: BaseException | None = None
        super().__init__(name)

    def _send(self, msg: mido.Message) -> None:
        if self.fail is not None:
            raise self.fail
        t = self.clock.now() if self.clock is not None else 0.0
        self.sent.append((t, msg))
        if self.link is not None:
            self.link.deliver(msg, t)


def pipe(clock: Clock, name: str = "pipe") -> tuple[MemoryOutput, InputPort]:
    """An output and the input it feeds: a test plays into the one, the listener reads the other."""
    inp = InputPort(name, clock)
    return MemoryOutput(name, clock=clock, link=inp), inp


def is_midi_file(name: str | Path) -> bool:
    return Path(name).suffix.lower() in MIDI_FILE_SUFFIXES


def open_input(
    name: str | Path | None,
    clock: Clock,
    *,
    virtual: bool = False,
    backend: str | None = None,
) -> InputPort:
    """The player: a device port by name, a new virtual port called `name`, or a MIDI
    file (played in real time on `clock` from now). None: the first device input."""
    if name is not None and not virtual and is_midi_file(name):
        from musicgen.live.fileport import FilePlayer  # fileport builds on InputPort

        return FilePlayer(name, clock)
    mb = _backend(backend)
    name = _port_name(name, virtual, list_ports(backend).inputs if not virtual else [], "input")
    try:
        return DeviceInput(str(name), clock, backend=mb, virtual=virtual)
    except (OSError, RuntimeError, ValueError) as exc:
        raise MusicgenError(f"cannot open MIDI input {name!r}: {_one_line(exc)}") from None


def _port_name(name: str | Path | None, virtual: bool, names: list[str], kind: str) -> str:
    """The port to open: a new virtual one called `name`, or one of `names` (the first if
    None); one line when there is none."""
    if virtual:
        if not name:
            raise MusicgenError("a virtual MIDI port needs a name")
        return str(name)
    if name is None:
        if not names:
            instead = (
                "give a MIDI file to play instead"
                if kind == "input"
                else "open a virtual one instead"
            )
            raise MusicgenError(f"there is no MIDI {kind} port; {instead}")
        return names[0]
    return resolve_name(str(name), names, kind)


def open_output(
    name: str | None, *, virtual: bool = False, backend: str | None = None
) -> mido.ports.BaseOutput:
    """The synth the model plays: a device port by name, or a new virtual port called
    `name` that a synth connects to. None: the first device output."""
    mb = _backend(backend)
    name = _port_name(name, virtual, list_ports(backend).outputs if not virtual else [], "output")
    try:
        with _quiet_c_stderr():
            return mb.open_output(name, virtual=virtual)
    except (OSError, RuntimeError, ValueError) as exc:
        raise MusicgenError(f"cannot open MIDI output {name!r}: {_one_line(exc)}") from None
