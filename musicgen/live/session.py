"""A live session: the loop that listens to the player and cues the model.

Three workers, each with one job: this loop reads the input port and follows the
player (listen.py), the performer thinks in its own thread (performer.py), and the
scheduler's thread sends every message at its time (scheduler.py). They talk through
queues only: the loop never waits on the model, and the scheduler never touches it.

    player quiet for wait - lead   ->  performer.prepare(phrase)   (starts thinking)
    rest (quiet for wait)          ->  performer.go(rest)          (answer sounds now)
    player plays again             ->  scheduler.cancel_after(now), performer.give_way()
    input ends                     ->  answer: the last phrase is answered and plays out;
                                       continue: it stops with its input
    Ctrl-C / a port gone           ->  every note off on every channel used, at once
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from musicgen.checkpoint import LoadedModel
from musicgen.config import GenerateConfig, LiveConfig
from musicgen.live.accompanist import Accompanist
from musicgen.live.clock import Clock
from musicgen.live.listen import Listener, Played, Rest, Resumed
from musicgen.live.performer import Performer
from musicgen.live.ports import InputPort, PortGone
from musicgen.live.scheduler import Scheduler


@dataclass
class Session:
    """What a session did: the player's messages, the model's, and how it ended."""

    played: list = field(default_factory=list)  # the player's messages, clock-stamped
    sent: list = field(default_factory=list)  # the scheduler's Sent records (the model's part)
    takes: int = 0
    first_notes: list = field(default_factory=list)  # (rest, first note) per take
    rests: list = field(default_factory=list)
    ended: str = "end of input"
    tempo: object = None  # the listener's TempoFollower, for the recording's tempo map
    stats: object = None  # the scheduler's Stats: lateness, and what it dropped and why


def play(
    model: LoadedModel,
    cfg: GenerateConfig,
    live: LiveConfig,
    inport: InputPort,
    outport,
    clock: Clock,
) -> Session:
    """Play with the player on `inport` until the input ends or Ctrl-C; the model answers
    on `outport`. Returns what happened; raises only what the caller reports in one line."""
    listener = Listener(wait=live.rest_seconds(), qpm=live.tempo)
    scheduler = Scheduler(outport, clock, name="musicgen")
    lock = threading.Lock()  # the accompanist reads the listener from its own thread
    cues = live.mode != "accompany"  # answer and continue wait for rests; accompany does not
    session = Session(tempo=listener.tempo)
    performer = None
    prepared = False
    try:  # from the first thread started: a Ctrl-C while the model warms up stops as cleanly
        scheduler.start()
        if live.mode == "accompany":
            performer = Accompanist(model, cfg, live, scheduler, clock, listener, lock).start()
        else:
            performer = Performer(model, cfg, live, scheduler, clock).start()
        while True:
            ended = inport.ended  # read first: all a port delivered before ending is queued
            now = clock.now()
            with lock:
                events = [e for msg in inport.drain() for e in listener.feed(msg)]
                events += listener.poll(now) if cues else []
            if not cues:
                performer.wake.set()  # the first note starts it; later ones it reads itself
                events = [e for e in events if isinstance(e, Played)]
            for event in events:
                if isinstance(event, Resumed):  # the player is back: the model gives way
                    scheduler.cancel_after(event.time)
                    performer.give_way()
                    prepared = False
                elif isinstance(event, Played):
                    session.played.append(event.msg)
                    if prepared and event.msg.type == "note_on" and event.msg.velocity:
                        performer.give_way()  # the phrase thought of is not the phrase now
                        prepared = False
                elif isinstance(event, Rest):
                    if not prepared:
                        performer.prepare(listener.score(event.time), listener.tempo.qpm)
                    performer.go(event.time)
                    session.rests.append(event.time)
                    prepared = False
            if scheduler.error is not None:
                raise scheduler.error
            if performer.error is not None:
                raise performer.error
            if ended:
                # in answer mode a file that ends on a phrase is answered too, after the same
                # rest; a continuation stops with its input (the player has left)
                rest = listener.deadline if live.mode == "answer" else math.inf
                with lock:
                    listener.end(clock.now())
                if math.isfinite(rest):
                    if not prepared:  # the phrase is whole: think during the rest
                        performer.prepare(listener.score(rest), listener.tempo.qpm)
                    clock.sleep_until(rest)
                    performer.go(rest)
                    session.rests.append(rest)
                break
            cue = listener.deadline - live.lead if cues else math.inf
            if not prepared and now >= cue and listener.num_notes:
                performer.prepare(listener.score(now), listener.tempo.qpm)
                prepared = True
            wake = listener.deadline if prepared else cue
            clock.sleep_until(wake if math.isfinite(wake) else math.inf, inport.ready)
        if live.mode == "answer":  # the input ended: let the last answer play out
            _wait_for(performer, scheduler, clock)
            scheduler.stop(drain=True)
    except KeyboardInterrupt:
        session.ended = "stopped (Ctrl-C)"
    except PortGone as exc:
        session.ended = str(exc)
    finally:
        if performer is not None:
            performer.stop()
            session.takes = performer.takes
            session.first_notes = list(performer.first_notes)
        scheduler.stop()
        session.sent = list(scheduler.sent)
        session.stats = scheduler.stats()
    return session


def _wait_for(performer: Performer, scheduler: Scheduler, clock: Clock) -> None:
    """Until the performer has taken its last cue and decoded its take to the end (its
    notes are then queued)."""
    while performer.error is None and (
        not performer.commands.empty() or (performer.take is not None and not performer.take.done)
    ):
        clock.sleep_until(clock.now() + 0.05)
