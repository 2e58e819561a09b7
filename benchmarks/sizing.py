"""What sizing by budget costs a run: seconds of its budget spent timing shapes.

    python benchmarks/sizing.py DATA [--model transformer] [--minutes 5]

Runs `size_for_budget` on a dataset (a folder `musicgen ingest` wrote) as `musicgen train
--init scratch --max-time M` would, on one thread: as shipped (the cheapest shape timed
first, shapes its cost rules out skipped) and with every shape timed (the baseline, the
earlier rule), in turn, and prints each one's seconds, its choice and the ratio.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", default="transformer")
    ap.add_argument("--minutes", type=float, default=5.0)
    ns = ap.parse_args()

    import torch

    import musicgen.train.sizing as S
    from musicgen.config import ModelConfig, TrainConfig

    torch.set_num_threads(1)
    shipped = S.LARGER_BATCH_GAIN
    took = {}
    for name, gain in (("shipped", shipped), ("every shape timed", math.inf), ("shipped", shipped)):
        S.LARGER_BATCH_GAIN = gain
        t0 = time.perf_counter()
        cfg = TrainConfig(max_time=ns.minutes)
        z = S.size_for_budget(ns.data, ModelConfig(name=ns.model), cfg, torch.device("cpu"))
        took.setdefault(name, []).append(time.perf_counter() - t0)
        print(f"{name}: {took[name][-1]:.1f} s; {z.describe(ns.minutes, 'this CPU')}", flush=True)
    S.LARGER_BATCH_GAIN = shipped
    ratio = min(took["shipped"]) / took["every shape timed"][0]
    print(f"shipped / every shape timed: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
