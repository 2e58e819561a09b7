"""Ingestion speed and memory, as ratios against baselines measured in the same run.

    python benchmarks/ingest.py [--corpus data/midi] [--music21-sample 20]

Prints: symusic parse-only time for every file (one process, best of three);
each stage of ingestion's work per file, timed in one process (reading and
parsing, the time-mode statistics, encoding); musicgen's full cold ingestion
(both passes of `--time auto`, worker processes, writing; best of three, each
into a new folder); a re-run on unchanged inputs; a music21-based ingestion
(parse and extract notes, the classic approach) on a sample, the baseline the
target is set against (musicgen at least 100x faster); and peak memory (RSS,
parent plus workers) of ingesting the corpus and a corpus ten times its size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_only(files: list[Path]) -> float:
    import symusic

    t = time.perf_counter()
    for f in files:
        try:
            symusic.Score.from_file(str(f))
        except Exception:
            pass
    return time.perf_counter() - t


def stages(files: list[Path]) -> dict[str, float]:
    """Seconds per file of each stage of a worker's work, in this one process (best of three)."""
    from musicgen.config import EncodingConfig
    from musicgen.data.files import read_file
    from musicgen.tokens.encoding import encode
    from musicgen.tokens.timebase import timing_of

    cfg = EncodingConfig(time="beats")
    scores = [read_file(f)[1] for f in files]

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times) / len(files)

    return {
        "read_hash_parse": best(lambda: [read_file(f) for f in files]),
        "timing": best(lambda: [timing_of(s, 48) for s in scores]),
        "encode": best(lambda: [encode(s, cfg) for s in scores]),
    }


def music21_ingest(files: list[Path]) -> float:
    from music21 import chord, converter, note

    t = time.perf_counter()
    for f in files:
        s = converter.parse(str(f))
        rows = []
        for el in s.flatten().notes:  # the classic tutorial's note extraction
            if isinstance(el, note.Note):
                rows.append((float(el.offset), el.pitch.midi))
            elif isinstance(el, chord.Chord):
                rows.extend((float(el.offset), p.midi) for p in el.pitches)
    return time.perf_counter() - t


def musicgen_ingest(corpus: Path, out: Path) -> tuple[float, object]:
    from musicgen.data.ingest import ingest

    t = time.perf_counter()
    summary = ingest([corpus], out)
    return time.perf_counter() - t, summary


def peak_rss_of_ingest(corpus: Path, out: Path) -> float:
    """Peak RSS in MiB of a fresh process ingesting `corpus` (itself and its workers)."""
    code = (
        "import resource, sys\n"
        "from musicgen.data.ingest import ingest\n"
        f"ingest([{str(corpus)!r}], {str(out)!r})\n"
        "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(max(me, kids) / 1024)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def make_big_corpus(corpus: Path, dest: Path, copies: int) -> int:
    import symusic

    n = 0
    for f in sorted(corpus.rglob("*.mid")):
        s = symusic.Score.from_file(str(f))
        for k in range(copies):
            shifted = s.shift_pitch(k - copies // 2) if k else s
            shifted.dump_midi(str(dest / f"{f.stem}-t{k}.mid"))
            n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "midi")
    ap.add_argument("--music21-sample", type=int, default=20)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ns = ap.parse_args()

    from musicgen.midi.read import SUPPORTED_SUFFIXES

    files = sorted(p for p in ns.corpus.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parse_only(files[:20])  # warm the page cache and imports
        t_parse = min(parse_only(files) for _ in range(3))
        # Cold: a fresh output folder each time, so nothing is reused; the best of
        # three, measured like the parse-only pass.
        t_cold, summary = min(
            (musicgen_ingest(ns.corpus, tmp / f"cold-{k}") for k in range(3)), key=lambda r: r[0]
        )
        t_warm, _ = musicgen_ingest(ns.corpus, tmp / "cold-0")
        per_stage = stages(
            files
        )  # after the timed runs: it leaves the parsed corpus in this process's heap
        sample = files[: ns.music21_sample]
        t_m21 = music21_ingest(sample)
        per_m21 = t_m21 / len(sample)
        per_ours = t_cold / len(files)
        big = tmp / "big"
        big.mkdir()
        n_big = make_big_corpus(ns.corpus, big, ns.copies)
        big_files = sorted(big.iterdir())
        parse_only(big_files[:20])
        t_parse_big = min(parse_only(big_files) for _ in range(2))
        t_cold_big = min(musicgen_ingest(big, tmp / f"big-{k}")[0] for k in range(2))
        rss_small = peak_rss_of_ingest(ns.corpus, tmp / "rss-small")
        rss_big = peak_rss_of_ingest(big, tmp / "rss-big")

    fig = {
        "files": len(files),
        "notes": summary.notes,
        "tokens": summary.tokens,
        "parse_only_s": round(t_parse, 4),
        "ingest_cold_s": round(t_cold, 4),
        "ingest_cold_over_parse_only": round(t_cold / t_parse, 2),
        "ingest_rerun_s": round(t_warm, 4),
        "stage_us_per_file": {k: round(v * 1e6, 1) for k, v in per_stage.items()},
        "music21_per_file_s": round(per_m21, 4),
        "musicgen_per_file_s": round(per_ours, 6),
        "speedup_vs_music21": round(per_m21 / per_ours, 1),
        "peak_rss_mib_corpus": round(rss_small, 1),
        "peak_rss_mib_10x": round(rss_big, 1),
        "files_10x": n_big,
        "parse_only_10x_s": round(t_parse_big, 4),
        "ingest_cold_10x_s": round(t_cold_big, 4),
        "ingest_cold_over_parse_only_10x": round(t_cold_big / t_parse_big, 2),
        "cores": os.cpu_count(),
    }
    print(f"corpus: {len(files)} files, {summary.notes:,} notes, {summary.tokens:,} tokens")
    print(f"symusic parse only       {t_parse:8.3f} s   ({len(files) / t_parse:,.0f} files/s)")
    print(
        f"musicgen ingest (cold)   {t_cold:8.3f} s   = {t_cold / t_parse:.2f}x parse-only   ({summary.time['mode']}, chosen by --time auto)"
    )
    print(f"musicgen ingest (re-run) {t_warm:8.3f} s")
    print(
        "one process, per file:   "
        + ", ".join(f"{k.replace('_', ' ')} {v * 1e6:.0f} us" for k, v in per_stage.items())
        + f"  (symusic parse only {t_parse / len(files) * 1e6:.0f} us)"
    )
    print(
        f"on {n_big} files (10x)     parse only {t_parse_big:.3f} s, ingest (cold) {t_cold_big:.3f} s = {t_cold_big / t_parse_big:.2f}x"
    )
    print(
        f"music21 ingest           {per_m21 * 1000:8.1f} ms/file on {len(sample)} files; musicgen {per_ours * 1000:.2f} ms/file = {per_m21 / per_ours:,.0f}x faster (target >= 100x)"
    )
    print(
        f"peak RSS                 {rss_small:8.1f} MiB on the corpus, {rss_big:.1f} MiB on {n_big} files (10x)   (target < 1024 MiB, flat)"
    )
    if ns.json:
        ns.json.write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
