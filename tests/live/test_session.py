"""Live play end to end with in-process ports and a clock the test drives: the model
answers after the rest, gives way when the player comes back, and leaves nothing
sounding."""

from __future__ import annotations

import json
import threading

import mido
import pytest

from musicgen.config import GenerateConfig, LiveConfig
from musicgen.live.clock import ManualClock
from musicgen.live.ports import InputPort, MemoryOutput
from musicgen.live.session import play
from tests.helpers import assert_cli_error, run_cli, untrained_model

WAIT = 1.0


@pytest.fixture(scope="module")
def model(dataset):
    return untrained_model("gru", dataset, seed=3)


class Live:
    """A session running in its own thread on a ManualClock; the test plays and waits."""

    def __init__(self, model, **live):
        self.clock = ManualClock(0.0)
        self.player = InputPort("keys", self.clock)
        self.synth = MemoryOutput("synth", self.clock)
        cfg = LiveConfig(**{"wait": WAIT, "tempo": 120.0, "bars": 1.0, "ahead": 30.0, **live})
        self.result: list = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(
                play(model, GenerateConfig(seed=1), cfg, self.player, self.synth, self.clock)
            ),
            daemon=True,
        )
        self.thread.start()

    def settle(self) -> None:
        """Until the loop, the performer and the scheduler are all asleep with nothing due."""
        self.clock.wait_for_sleepers(3, timeout=30)

    def play_notes(self, start: float, pitches: list[int], step: float = 0.5) -> float:
        for i, p in enumerate(pitches):
            t = start + i * step
            self.to(t)
            self.player.deliver(mido.Message("note_on", note=p, velocity=90), t)
            self.to(t + step * 0.8)
            self.player.deliver(mido.Message("note_off", note=p), t + step * 0.8)
        return start + len(pitches) * step

    def to(self, t: float, tick: float = 0.05) -> None:
        """Move the clock to `t` in small ticks, letting every thread catch up each time."""
        while self.clock.now() < t - 1e-9:
            self.settle()
            self.clock.set(min(t, self.clock.now() + tick))
        self.settle()

    def end(self) -> object:
        self.player.end()
        while self.thread.is_alive():
            self.clock.set(self.clock.now() + 0.1)
            self.thread.join(0.05)
        return self.result[0]

    def model_notes(self) -> list[tuple[float, mido.Message]]:
        return [(t, m) for t, m in self.synth.sent if m.type in ("note_on", "note_off")]


def balanced(sent) -> bool:
    """Every note-on on the wire has its note-off (or an all-notes-off) after it."""
    sounding: set = set()
    for _, m in sent:
        if m.type == "note_on" and m.velocity:
            sounding.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            sounding.discard((m.channel, m.note))
        elif m.type == "control_change" and m.control == 123:
            sounding = {k for k in sounding if k[0] != m.channel}
    return not sounding


def test_the_answer_starts_after_the_rest_and_gives_way_when_the_player_comes_back(model):
    live = Live(model)
    last = live.play_notes(0.0, [60, 62, 64, 65, 67, 65, 64, 62])
    rest = last - 0.5 * 0.2 + WAIT  # the last key released, then the wait
    live.to(rest - 0.1)
    assert not [m for _, m in live.model_notes() if m.type == "note_on"]  # not before the rest
    live.to(rest + 1.0)
    ons = [t for t, m in live.model_notes() if m.type == "note_on" and m.velocity]
    assert ons and rest - 1e-6 <= min(ons) <= rest + 0.051  # at the rest (a tick at most)
    back = live.clock.now()
    live.play_notes(back, [72])  # the player comes back in ...
    again = back + 0.4 + WAIT  # ... and rests again
    session = live.end()
    ons = [t for t, m in live.model_notes() if m.type == "note_on" and m.velocity]
    assert [t for t in ons if back <= t < again - 1e-6] == []  # the model gave way
    assert [t for t in ons if t >= again - 1e-6]  # and answers the new phrase (the input ended)
    assert session.takes == 2 and session.rests == [pytest.approx(rest), pytest.approx(again)]
    assert balanced(live.synth.sent)


def test_every_message_is_valid_midi_and_nothing_is_left_sounding_on_stop(model):
    live = Live(model, mode="continue")
    last = live.play_notes(0.0, [60, 64, 67, 72])
    live.to(last + WAIT + 1.5)  # the model plays on ...
    session = live.end()  # ... and the session stops under it
    sent = live.synth.sent
    assert any(m.type == "note_on" for _, m in sent)
    for _, m in sent:
        mido.Message.from_bytes(m.bytes())  # each one parses back: valid MIDI
        assert 0 <= m.channel <= 15
    assert balanced(sent)
    used = {m.channel for _, m in sent if m.type == "note_on"}
    offs = {m.channel for _, m in sent if m.type == "control_change" and m.control == 123}
    assert used <= offs  # all notes off on every channel the session used
    assert session.ended == "end of input"


def test_record_holds_both_parts_on_their_own_tracks(model, tmp_path):
    from musicgen.live.record import write_session
    from musicgen.midi import read_score

    live = Live(model)
    last = live.play_notes(0.0, [60, 62, 64, 65])
    live.to(last + WAIT + 2.5)
    session = live.end()
    mid, side = write_session(
        tmp_path / "take", session.played, session.sent, {"seed": 1}, tempo=session.tempo
    )
    tracks = {t.name: t for t in mido.MidiFile(mid).tracks}
    assert {"player", "model"} <= set(tracks)
    player_ons = [m for m in tracks["player"] if m.type == "note_on" and m.velocity]
    model_ons = [m for m in tracks["model"] if m.type == "note_on" and m.velocity]
    assert [m.note for m in player_ons] == [60, 62, 64, 65] and model_ons
    meta = json.loads(side.read_text())
    assert meta["tracks"] == {"player": 4, "model": len(model_ons)} and meta["seed"] == 1
    assert read_score(mid).num_notes == 4 + len(model_ons)


def test_a_port_that_does_not_exist_is_one_line_with_the_ports_there_are(monkeypatch, tmp_path):
    from musicgen.live import ports

    monkeypatch.setattr(
        ports, "list_ports", lambda backend=None: ports.Ports(["Keystation 49"], ["FLUID Synth"])
    )
    monkeypatch.setattr(ports, "_backend", lambda backend=None: None)
    result = run_cli("play", "--in", "Roland", "--out", "FLUID")
    assert_cli_error(result, "'Roland'", "Keystation 49")


def test_accompany_plays_each_beat_under_the_player_on_their_instrument(trained):
    from musicgen.checkpoint import load_model

    live = Live(load_model(trained["gru"].best), mode="accompany")
    end = live.play_notes(0.0, [72, 74, 76, 77, 79, 77, 76, 74], step=0.5)  # one note a beat
    # This tiny model rests through the player's beats (its first Shift jumps the whole
    # beat) and first plays at beat 9, at 4.55 s. What is sent while `end` stops the session
    # is a race with the scheduler's stop, so the clock runs on, beat by beat, until the
    # model has played (8 beats at most), before the end.
    t = end + 0.5
    live.to(t)
    while not [m for _, m in live.model_notes() if m.type == "note_on"] and t < end + 4.0:
        t += 0.5
        live.to(t)
    session = live.end()
    ons = [(t, m.note) for t, m in live.model_notes() if m.type == "note_on" and m.velocity]
    assert ons and session.takes >= 6  # a part for every beat it heard
    assert all(t >= 0.5 - 0.1 - 1e-9 for t, _ in ons)  # nothing before the first beat line
    assert all(note < 72 for _, note in ons)  # under the player, on the player's instrument
    assert balanced(live.synth.sent)


def test_ctrl_c_while_the_model_warms_up_stops_cleanly(model, monkeypatch):
    # Ctrl-C can come before the session's loop: while the performer starts its thread
    from musicgen.live import session as live_session

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(live_session.Performer, "start", interrupted)
    clock = ManualClock(0.0)
    synth = MemoryOutput("synth", clock)
    result = play(
        model,
        GenerateConfig(seed=1),
        LiveConfig(wait=WAIT, tempo=120.0),
        InputPort("keys", clock),
        synth,
        clock,
    )
    assert result.ended == "stopped (Ctrl-C)" and result.takes == 0
    assert result.stats is not None and result.stats.rejected == 0
    # the scheduler it had started is stopped, its thread gone
    assert not [t for t in threading.enumerate() if t.name == "musicgen" and t.is_alive()]
