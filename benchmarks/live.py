"""Live play with each model, on this machine's real clock, a MIDI file as the player.

    python benchmarks/live.py [MODEL ...] [--phrases 12] [--trials 100] [--busy]
        [--only-stops] [--mode answer|accompany] [--out work/live]

The player is a file made from the bundled corpus: the first two bars of `--phrases`
chorales (soprano to bass, as played), each followed by a rest long enough for the model's
two-bar answer, at 100 qpm. `musicgen play --mode answer` runs on it through an
in-process output port (a device port adds its own write time). For each MODEL (default:
the shipped ones) it prints:

* rest to first note: from the moment the rest became certain (the player quiet for the
  --wait, one bar) to the model's first note leaving the scheduler (p50, p99, max ms);
* lateness: every message sent against its scheduled time (p50, p99, max ms; and where in
  the session the three latest were due); and the
  messages the scheduler did not send: given way (queued notes of an answer dropped
  because the player came back, by design), refused (submitted after the end or for a
  take already given way), and lost (neither: must be 0);
* speed: tokens decoded per second against the tokens a second of the answers needs;
  with --busy also while another process keeps one core busy;
* key: the pitch-class histogram overlap of each answer with the phrase before it.

With `--mode accompany` the model plays along under the same file, beat by beat, from the
player's first note to the end (the rests included): rest to first note and the key are
not measured; the lateness of every message is (a beat decided after its line shows as
late notes), and the beats it decided.

Then `--trials` sessions stopped at a random moment of their first 20 s (the input cut
off, or Ctrl-C), spread over the models, so that stops fall before, inside and after the
first answer and in the second phrase: stuck notes (a note-on left without its note-off,
on the wire) and tracebacks (an exception, KeyboardInterrupt included, out of the
session), both of which must be 0; and how many stops caught the model with notes
sounding. A cut input lets the last answer play out, as `musicgen play` does.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QPM = 100.0


def player_file(path: Path, phrases: int) -> Path:
    """Two bars of each of `phrases` chorales, each followed by a rest of four bars."""
    from musicgen.midi import read_score
    from musicgen.midi.score import Score
    from musicgen.midi.write import write_midi

    files = sorted((ROOT / "data" / "midi").glob("*.mid"))[::7][:phrases]
    parts, at = [], 0.0
    for f in files:
        s = read_score(f)
        lines = s.bar_lines()
        notes = s.notes[s.notes["start"] < lines[2]].copy() if len(lines) > 2 else s.notes.copy()
        notes["start"] += at - (notes["start"].min() if len(notes) else 0)
        notes["duration"] = np.minimum(notes["duration"], at + 8 - notes["start"])
        notes["program"] = 0
        parts.append(notes)
        at += 8 + 16  # two bars, then four bars of rest
    score = Score(notes=np.concatenate(parts), tempos=[(0.0, QPM)], time_signatures=[(0.0, 4, 4)])
    write_midi(score, path)
    return path


def keep_one_core_busy(stop: mp.Event) -> None:
    x = np.random.rand(256, 256)
    while not stop.is_set():
        x = x @ x
        x /= np.abs(x).max()


def histogram(pitches) -> np.ndarray:
    h = np.bincount(np.asarray(pitches, dtype=int) % 12, minlength=12).astype(float)
    return h / max(h.sum(), 1)


def session(model, phrases_file: Path, stop_after: float | None = None, mode: str = "answer"):
    from musicgen.config import GenerateConfig, LiveConfig
    from musicgen.live.clock import RealClock
    from musicgen.live.fileport import FilePlayer
    from musicgen.live.ports import MemoryOutput
    from musicgen.live.session import play

    clock = RealClock()
    out = MemoryOutput("bench", clock)
    inport = FilePlayer(phrases_file, clock)
    stopped = {}
    if stop_after is not None:  # cut the input off, or press Ctrl-C, at a random moment
        how = random.choice(("cut", "ctrl-c"))
        main = threading.main_thread().ident

        def stop():
            time.sleep(stop_after)
            stopped["at"] = clock.now()
            if how == "cut":
                inport.close()
            else:
                signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=stop, daemon=True).start()
    try:
        live = LiveConfig(bars=2, tempo=QPM, mode=mode)
        s = play(model, GenerateConfig(seed=1), live, inport, out, clock)
    finally:  # the Python API leaves ports to their owner: a stopped trial's file stops too
        inport.close()
    s.stopped_at = stopped.get("at")
    s.how = how if stop_after is not None else None
    return s, out


def stuck(messages) -> int:
    """Note-ons on the wire left without a note-off (or all-notes-off) after them."""
    sounding = set()
    for _, msg in messages:
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.add((msg.channel, msg.note))
        elif msg.type in ("note_off", "note_on"):
            sounding.discard((msg.channel, msg.note))
        elif msg.type == "control_change" and msg.control == 123:
            sounding = {k for k in sounding if k[0] != msg.channel}
    return len(sounding)


def lost(s) -> int:
    """Messages the model's part needed that never reached the wire: a note-on whose
    note-off never came is one (stuck); a note-off sent for a key that was not sounding
    another (the scheduler drops those: `stray_offs`)."""
    return stuck([(0, x.msg) for x in s.sent]) + s.stats.stray_offs


def measure(model, path: Path, mode: str = "answer") -> dict:
    s, out = session(model, path, mode=mode)
    ons = sorted(x.time for x in s.sent if x.msg.type == "note_on")
    first = [min((t for t in ons if t >= r - 1e-9), default=np.nan) - r for r in s.rests]
    timed = [x for x in s.sent if x.msg.type != "control_change"]
    late = [x.time - x.scheduled for x in timed]
    # the latest three, where they fell in the session: the same moment run after run is
    # the session's doing, a different one each run more likely the machine's
    worst = sorted(timed, key=lambda x: x.time - x.scheduled)[-3:][::-1]
    # each answer's pitches against the phrase before it (the player's notes since the rest before)
    played = [(m.time, m.note) for m in s.played if m.type == "note_on" and m.velocity]
    answers = [(x.time, x.msg.note) for x in s.sent if x.msg.type == "note_on"]
    overlaps, bounds = [], [-1.0, *s.rests, float("inf")]
    for i, rest in enumerate(s.rests):
        phrase = [n for t, n in played if bounds[i] < t <= rest]
        answer = [n for t, n in answers if rest - 1e-9 <= t < bounds[i + 2]]
        if phrase and answer:
            overlaps.append(float(np.minimum(histogram(phrase), histogram(answer)).sum()))
    stats = {
        "takes": s.takes,
        "first_ms": (
            np.nanpercentile(np.array(first) * 1000, [50, 99, 100]).round(2).tolist()
            if first
            else None
        ),
        "late_ms": np.percentile(np.array(late) * 1000, [50, 99, 100]).round(2).tolist(),
        # seconds from the player's first note
        "worst": [
            (
                round(x.scheduled - (s.tempo.origin or 0.0), 2),
                round((x.time - x.scheduled) * 1000, 1),
            )
            for x in worst
        ],
        "key_overlap": float(np.mean(overlaps)) if overlaps else float("nan"),
        "stuck": stuck([(0, m) for _, m in out.sent]),
        "given_way": s.stats.dropped,
        "refused": s.stats.rejected + s.stats.stale,
        "lost": lost(s),
    }
    return stats


def speed(model, seconds_of_music: float = 8.0) -> float:
    """Decoding speed over real time: tokens a second of the model's answers holds, against
    tokens it decodes a second, batch 1, cached, as the performer decodes."""
    import torch

    from musicgen.config import GenerateConfig
    from musicgen.generate import generate_songs

    cfg = GenerateConfig(unit="seconds", length=seconds_of_music, seed=3, tempo=QPM)
    with torch.inference_mode():
        generate_songs(model, GenerateConfig(unit="tokens", length=16))  # warm up
        t0 = time.perf_counter()
        songs, _ = generate_songs(model, cfg)
        took = time.perf_counter() - t0
    return seconds_of_music / took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--phrases", type=int, default=12)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--busy", action="store_true")
    ap.add_argument("--only-stops", action="store_true", help="run the random stops alone")
    ap.add_argument("--mode", choices=("answer", "accompany"), default="answer")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "live")
    ns = ap.parse_args()

    from musicgen.checkpoint import load_model

    sys.setswitchinterval(0.001)  # as `musicgen play` sets it
    # Ctrl-C as a user at a terminal sends it: a shell starting this in the background
    # (`... &`) starts it with SIGINT ignored, and Python then installs no handler, so the
    # random stops' Ctrl-C would be lost (every one ran to the end of its file)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ns.out.mkdir(parents=True, exist_ok=True)
    path = player_file(ns.out / "phrases.mid", ns.phrases)
    paths = ns.models or [
        ROOT / "checkpoints" / "pretrained" / n for n in ("gru", "gru-attn", "transformer")
    ]
    models = {p.name: load_model(p) for p in paths}
    print(f"player: {ns.phrases} two-bar phrases at {QPM:g} qpm, a one-bar wait, two-bar answers")
    for name, model in models.items() if not ns.only_stops else ():
        r = measure(model, path, ns.mode)
        idle = speed(model)
        line = (
            f"{name:12s} rest->first note p50/p99/max {r['first_ms']} ms; late p50/p99/max "
            f"{r['late_ms']} ms; {r['takes']} {'beats' if ns.mode == 'accompany' else 'answers'}; "
            f"{idle:.1f}x real time"
        )
        if ns.busy:
            stop = mp.Event()
            hog = mp.Process(target=keep_one_core_busy, args=(stop,))
            hog.start()
            try:
                busy = speed(model)
            finally:
                stop.set()
                hog.join()
            line += f" ({busy:.1f}x with a core busy)"
        print(
            line + f"; key overlap {r['key_overlap']:.2f}; stuck notes {r['stuck']}; messages "
            f"given way {r['given_way']}, refused {r['refused']}, lost {r['lost']}; latest "
            + ", ".join(f"{ms:g} ms at {t:g} s" for t, ms in r["worst"])
        )
    stuck_total = tracebacks = sounding = 0
    durations: list[float] = []
    rng = random.Random(0)
    names = list(models)
    t0 = time.perf_counter()
    for i in range(ns.trials):
        model = models[names[i % len(names)]]
        after = rng.uniform(0.2, 20.0)
        began = time.perf_counter()
        try:
            s, out = session(model, path, stop_after=after)
            took = time.perf_counter() - began
            durations.append(took)
            if took > after + 15:  # a stop that did not stop: say which
                print(
                    f"trial {i}: {names[i % len(names)]}, {s.how} at {after:.1f} s took "
                    f"{took:.1f} s ({s.ended})",
                    flush=True,
                )
            stuck_total += stuck([(0, m) for _, m in out.sent])
            if s.stopped_at is not None:  # did the stop catch the model's notes sounding?
                before = [(0, x.msg) for x in s.sent if x.time < s.stopped_at]
                sounding += stuck(before) > 0
        except BaseException:  # noqa: BLE001 - counted: the promise is that there are none
            import traceback

            traceback.print_exc()
            tracebacks += 1
    print(
        f"{ns.trials} random stops ({sounding} with the model's notes sounding; "
        f"{time.perf_counter() - t0:.0f} s in all, the longest {max(durations, default=0):.0f} s): "
        f"{stuck_total} stuck notes, "
        f"{tracebacks} tracebacks"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
