"""How late the live scheduler sends, on this machine, with the real clock.

    python benchmarks/live_scheduler.py [--events 3000] [--gap-ms 2:12]

A feeder thread (standing in for the performer) submits notes in chunks 200 ms ahead of
the clock, as the model side will; the scheduler sends them to an in-process port (a
device port adds its own write, outside this figure). Lateness is sent minus scheduled
time for each message. Each row is one condition, run in the same process one after
another, so compare rows with the idle one rather than across machines:

  idle            nothing else running
  python-busy     a thread running pure Python (a decode loop's Python overhead holds
                  the GIL; the scheduler waits for the interpreter's switch interval)
  python-busy 1ms the same, with sys.setswitchinterval(0.001)
  numpy-busy      a thread doing matrix products (like torch ops: the GIL is released)
  spin 0.5ms      idle, RealClock(spin=0.0005): yields in a loop for the last 0.5 ms

Measured with the default arguments on a shared 2-core Linux VM (load average ~3 from
other work), two runs; lateness in ms, p50 / p99 / max:

  idle                      0.15 / 1.2-1.6 / 4.9
  python-busy               5.17 / 8.9-9.2 / 15.5
  python-busy, switch 1 ms  1.19-1.21 / 4.6-5.0 / 7.4-10.7
  numpy-busy                0.11-0.14 / 3.9-4.1 / 7.5-8.4
  idle, spin 0.5 ms         0.05 / 1.4-2.2 / 3.8-5.4
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from musicgen.live.clock import RealClock  # noqa: E402
from musicgen.live.messages import note  # noqa: E402
from musicgen.live.ports import MemoryOutput  # noqa: E402
from musicgen.live.scheduler import Scheduler  # noqa: E402


def _python_busy(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i * i


def _numpy_busy(stop: threading.Event) -> None:
    a = np.random.default_rng(0).standard_normal((256, 256))
    while not stop.is_set():
        a = np.tanh(a @ a.T / 256.0)


def run(n_events: int, gap: tuple[float, float], load=None, spin=0.0, switch=None) -> dict:
    rng = random.Random(0)
    clock = RealClock(spin=spin)
    out = MemoryOutput("bench", clock=clock)
    old_switch = sys.getswitchinterval()
    if switch is not None:
        sys.setswitchinterval(switch)
    stop = threading.Event()
    busy = threading.Thread(target=load, args=(stop,), daemon=True) if load else None
    if busy:
        busy.start()
    t0 = clock.now() + 0.3
    times, t = [], t0
    for _ in range(n_events // 2):  # a note is two messages
        t += rng.uniform(*gap) * 2
        times.append(t)
    with Scheduler(out, clock) as sched:
        i = 0
        while i < len(times):  # the performer: keep 200 ms queued ahead of the clock
            batch = []
            while i < len(times) and times[i] < clock.now() + 0.2:
                start = times[i]
                batch += note(start, start + rng.uniform(*gap), 60 + i % 24, 80, channel=i % 4)
                i += 1
            if batch:
                sched.submit(batch)
            time.sleep(0.02)
        sched.stop(drain=True)
        s = sched.stats()
    stop.set()
    if busy:
        busy.join()
    sys.setswitchinterval(old_switch)
    return {"sent": s.sent, "p50": s.late_p50, "p99": s.late_p99, "max": s.late_max}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000, help="messages per condition")
    ap.add_argument("--gap-ms", default="2:12", help="range of gaps between messages, ms")
    args = ap.parse_args()
    lo, hi = (float(x) / 1000 for x in args.gap_ms.split(":"))
    rows = [
        ("idle", {}),
        ("python-busy", {"load": _python_busy}),
        ("python-busy, switch 1 ms", {"load": _python_busy, "switch": 0.001}),
        ("numpy-busy", {"load": _numpy_busy}),
        ("idle, spin 0.5 ms", {"spin": 0.0005}),
    ]
    print(f"{args.events} messages per row, gaps {args.gap_ms} ms; lateness in ms")
    print("| condition | messages | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for name, kw in rows:
        r = run(args.events, (lo, hi), **kw)
        ms = {k: r[k] * 1000 for k in ("p50", "p99", "max")}
        print(f"| {name} | {r['sent']} | {ms['p50']:.3f} | {ms['p99']:.3f} | {ms['max']:.3f} |")


if __name__ == "__main__":
    main()
