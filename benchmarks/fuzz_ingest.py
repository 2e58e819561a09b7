"""A longer fuzz campaign against the MIDI reader and ingestion (not run by the tests).

    python benchmarks/fuzz_ingest.py [--count 3000] [--seconds 120] [--seed 0] [--workers 2]

Each input is a real chorale from data/midi with 1-4 byte-level mutations (bit
flips, byte insertions and deletions, truncations, chunk-length rewrites,
splices of two files; see tests/hardening/mutate.py). Every input is read and
encoded exactly as `musicgen ingest` does, in isolated worker processes with a
per-file time limit, and must end as ok, partial or skipped with a one-line
reason. Anything else -- another exception, a crash, a time-out, a score that
breaks an invariant, notes lost without a warning after a truncation or a chunk
length rewrite -- is a finding: its bytes and its mutation list are saved
under --out/findings for tests/hardening/fixtures. Finally one real ingestion
runs over a sample of the inputs mixed with good files, and its report must
hold one entry per file with every good file ok.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from musicgen.config import EncodingConfig, IngestConfig  # noqa: E402
from musicgen.data.ingest import ingest  # noqa: E402
from musicgen.data.pool import Failure, run_isolated  # noqa: E402
from tests.hardening.mutate import apply_ops, notes_of, outcome, random_op  # noqa: E402

# Mutations that remove or mislabel bytes but change no event: whatever notes they cost
# must be named in the score's warnings (so the file is partial), never dropped quietly.
STRUCTURAL = {"truncate", "chunk_len"}


class Check:
    def __call__(self, item: tuple[Path, Path, bool]) -> tuple[str, str, float]:
        from musicgen.errors import ReadError
        from musicgen.midi.read import read_score

        path, base, structural = item
        t = time.perf_counter()
        status, reason = outcome(path, EncodingConfig())
        seconds = time.perf_counter() - t
        if structural and status != "skipped":
            try:
                score = read_score(path)
            except ReadError:
                return status, reason, seconds
            if not score.warnings:
                lost = len(notes_of(read_score(base))) - len(notes_of(score))
                assert lost <= 0, f"{lost} notes lost without a warning"
        return status, reason, seconds


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "midi")
    ap.add_argument("--count", type=int, default=3000, help="inputs to try (at most)")
    ap.add_argument("--seconds", type=float, default=120.0, help="stop generating after this long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0, help="per-file time limit in seconds")
    ap.add_argument(
        "--ingest-sample", type=int, default=300, help="mutated files in the final ingestion"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "fuzz")
    args = ap.parse_args()

    corpus = sorted(args.corpus.glob("*.mid"))
    blobs = {p.name: p.read_bytes() for p in corpus}
    names = sorted(blobs)
    rng = random.Random(args.seed)
    findings = args.out / "findings"
    t0 = time.perf_counter()
    statuses: Counter = Counter()
    reasons: Counter = Counter()
    slowest = (0.0, "")
    bugs: list[dict] = []
    tried = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        tmp = Path(tmp)
        inputs: dict[Path, dict] = {}
        batch = 200
        while tried < args.count and time.perf_counter() - t0 < args.seconds:
            paths = []
            for _ in range(min(batch, args.count - tried)):
                base, other = rng.choice(names), rng.choice(names)
                ops = [random_op(rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4)))]
                path = tmp / f"m{tried:06d}.mid"
                path.write_bytes(apply_ops(blobs[base], ops, blobs[other]))
                inputs[path] = {"base": base, "other": other, "ops": ops}
                paths.append((path, args.corpus / base, all(op[0] in STRUCTURAL for op in ops)))
                tried += 1
            for k, res in run_isolated(
                Check(), paths, workers=args.workers, timeout=args.timeout, chunk_size=16
            ):
                path = paths[k][0]
                if isinstance(res, Failure):
                    statuses["FINDING"] += 1
                    findings.mkdir(parents=True, exist_ok=True)
                    name = f"fuzz-{args.seed}-{path.stem}"
                    (findings / f"{name}.mid").write_bytes(path.read_bytes())
                    record = {**inputs[path], "finding": res.reason}
                    (findings / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
                    bugs.append({"name": name, **record})
                    continue
                status, reason, secs = res
                statuses[status] += 1
                if status == "skipped":
                    reasons[reason.split(" (")[0].split(":")[0]] += 1
                if secs > slowest[0]:
                    slowest = (secs, path.name)
        fuzz_seconds = time.perf_counter() - t0

        # One real ingestion: mutated files beside good ones, one report entry each.
        sample = rng.sample(sorted(inputs), min(args.ingest_sample, len(inputs)))
        good = corpus[:20]
        src = tmp / "mixed"
        src.mkdir()
        for p in sample:
            (src / p.name).symlink_to(p)
        for p in good:
            (src / p.name).symlink_to(p)
        t1 = time.perf_counter()
        ingest(
            [src],
            tmp / "ds",
            EncodingConfig(),
            IngestConfig(workers=args.workers, file_timeout=args.timeout),
        )
        report = json.loads((tmp / "ds" / "report.json").read_text())["files"]
        by_path = {r["path"]: r for r in report}
        ingest_ok = len(report) == len(sample) + len(good) and all(
            by_path[p.name]["status"] == "ok" for p in good
        )
        ingest_counts = Counter(r["status"] for r in report)
        ingest_seconds = time.perf_counter() - t1

    print(
        f"inputs tried: {tried} in {fuzz_seconds:.1f} s ({tried / max(fuzz_seconds, 1e-9):.0f}/s, {args.workers} workers)"
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print(f"slowest input: {slowest[0] * 1000:.1f} ms ({slowest[1]})")
    print("skip reasons:")
    for reason, n in reasons.most_common(12):
        print(f"  {n:6d}  {reason}")
    print(
        f"ingestion of {len(sample)} mutated + {len(good)} good files: "
        + ", ".join(f"{k} {v}" for k, v in sorted(ingest_counts.items()))
        + f" in {ingest_seconds:.1f} s; one entry per file and every good file ok: {ingest_ok}"
    )
    if bugs:
        print(f"FINDINGS: {len(bugs)} (saved under {findings})")
        for b in bugs[:20]:
            print(f"  {b['name']}: {b['finding']}")
    sys.exit(1 if bugs or not ingest_ok else 0)


if __name__ == "__main__":
    main()
