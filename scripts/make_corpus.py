"""Regenerate data/midi/ from the Bach chorales that ship inside music21.

The chorales are public domain; the encodings come with music21 (BSD licence).
Every score music21 lists under composer "bach" in MusicXML or Humdrum form is
written to MIDI with music21's own exporter, so the folder is reproducible
from a plain `pip install music21` with no network access.

    python scripts/make_corpus.py [--out data/midi] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _export(args: tuple[str, str]) -> tuple[str, str | None]:
    src, out = args
    from music21 import converter

    try:
        score = converter.parse(src)
        score.write("midi", fp=out)
        return src, None
    except Exception as exc:  # music21 raises many types; report and go on
        return src, f"{type(exc).__name__}: {exc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/midi", help="output folder")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    ns = parser.parse_args()

    from music21 import corpus

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [p for p in corpus.getComposer("bach") if p.suffix in {".mxl", ".xml", ".krn"}]
    jobs = []
    for p in sorted(paths):
        name = p.name
        for suffix in (".mxl", ".xml", ".krn"):
            name = name.removesuffix(suffix)
        jobs.append((str(p), str(out / f"{name}.mid")))
    failed = 0
    with ProcessPoolExecutor(ns.jobs) as pool:
        for src, err in pool.map(_export, jobs, chunksize=4):
            if err:
                failed += 1
                print(f"skipped {Path(src).name}: {err}", file=sys.stderr)
    print(f"wrote {len(jobs) - failed} MIDI files to {out} ({failed} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
