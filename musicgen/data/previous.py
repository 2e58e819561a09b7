"""A previous ingestion of the same output folder, for reuse: what a re-run need not parse again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from musicgen import __version__
from musicgen.config import EncodingConfig, from_dict
from musicgen.data.files import FileResult
from musicgen.data.format import DATASET_FORMAT, DATASET_VERSION, verify_outputs
from musicgen.errors import MusicgenError
from musicgen.tokens.timebase import Timing
from musicgen.tokens.vocab import Vocabulary


def load_previous(out: Path) -> dict | None:
    """A previous dataset in `out`, if complete and written by this version, for reuse:
    its index, report and encoding, and per content hash each file's result."""
    by_digest: dict[str, FileResult] = {}
    try:
        index = json.loads((out / "index.json").read_text(encoding="utf-8"))
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        if index.get("format") != DATASET_FORMAT or index.get("version") != DATASET_VERSION:
            return None
        # Results depend on the code that parsed them, not only on the settings.
        if index.get("musicgen_version") != __version__:
            return None
        encoding = from_dict(EncodingConfig, index["encoding"])
        verify_outputs(out, index)  # never reuse a mix of two ingestions
        vocab = Vocabulary.load(out / "vocab.json")
        tokens = np.load(out / "tokens.npy", mmap_mode="r")
        # A damaged index (edited by hand, cut short) means parsing again, never a crash.
        for e in index["files"]:
            start, length = int(e["offset"]), int(e["tokens"])
            if start < 0 or length < 0 or start + length > len(tokens):
                return None
            ids = np.asarray(tokens[start : start + length])
            timing = Timing.from_list(e["timing"]) if e.get("timing") else None
            by_digest[e["sha1"]] = FileResult(
                e["status"],
                e["reason"],
                e["stats"],
                e["tracks"],
                vocab.to_universal(ids),
                e["sha1"],
                timing,
            )
        for r in report["files"]:
            # A time-out depends on how busy the machine was: such files are tried again.
            if (
                r["status"] != "skipped"
                or r["sha1"].startswith("unreadable")
                or r["reason"].startswith("timed out")
            ):
                continue
            timing = Timing.from_list(r["timing"]) if r.get("timing") else None
            by_digest.setdefault(
                r["sha1"],
                FileResult(
                    "skipped", r["reason"], r["stats"], r["tracks"], digest=r["sha1"], timing=timing
                ),
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, MusicgenError):
        return None
    return {"index": index, "report": report, "encoding": encoding, "by_digest": by_digest}


def timed_out(report: dict) -> bool:
    return any(
        r["status"] == "skipped" and r["reason"].startswith("timed out") for r in report["files"]
    )
