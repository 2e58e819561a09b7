"""What an ingestion writes about itself: the index (each file's place in tokens.npy,
its split and counts) and the report (what was kept, changed or skipped, and why)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from musicgen import __version__
from musicgen.config import EncodingConfig, IngestConfig, to_dict
from musicgen.data.files import FileResult
from musicgen.data.format import DATASET_FORMAT, DATASET_VERSION
from musicgen.data.sources import SourceFile
from musicgen.tokens.timebase import TimeChoice


@dataclass
class IngestSummary:
    out: Path
    files: int
    ok: int
    partial: int
    skipped: dict[str, int]
    notes: int
    tokens: int
    train_tokens: int
    val_tokens: int
    vocab_size: int
    seconds: float
    reused: int
    up_to_date: bool
    time: dict = field(default_factory=dict)  # the clock: {"mode", "reason"}

    def lines(self) -> list[str]:
        skipped = sum(self.skipped.values())
        out = [
            f"files: {self.files} ({self.ok} ok, {self.partial} partial, {skipped} skipped)"
            + (f", {self.reused} reused from cache" if self.reused else ""),
        ]
        for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            out.append(f"  skipped {n}: {reason}")
        out.append(
            f"notes: {self.notes:,}  tokens: {self.tokens:,} (train {self.train_tokens:,}, val {self.val_tokens:,})"
            f"  tokens/note: {self.tokens / max(self.notes, 1):.2f}"
        )
        if self.time:
            out.append(f"time: {self.time['mode']} ({self.time['reason']})")
        out.append(f"vocabulary: {self.vocab_size} tokens  took {self.seconds:.2f} s")
        out.append(
            f"wrote {self.out}" + (" (up to date, nothing re-parsed)" if self.up_to_date else "")
        )
        return out


# --- the run ------------------------------------------------------------------------------


@dataclass
class _Run:
    """Everything one ingestion decided, for writing its index and report."""

    files: list[SourceFile]
    splits: dict[str, str]
    results: dict[int, FileResult]
    streamed: dict[int, tuple[int, int]]
    layout: list[int]  # files with tokens, in tokens.npy order
    n_train: int  # how many of them are training files
    encoding: EncodingConfig  # the clock decided
    ingest: IngestConfig
    signature: str
    time: TimeChoice


def _index_and_report(run: _Run) -> tuple[dict, dict]:
    offsets, at = {}, 0
    for i in run.layout:
        offsets[i] = at
        at += run.streamed[i][1]
    n_train_tokens = sum(run.streamed[i][1] for i in run.layout[: run.n_train])
    entries, report_files = [], []
    for i, f in enumerate(run.files):
        res = run.results[i]
        row = {
            "path": f.rel,
            "sha1": f.digest,
            "status": res.status,
            "reason": res.reason,
            "tracks": res.n_tracks,
            "stats": res.stats,
            "timing": res.timing.to_list() if res.timing else None,
        }
        report_files.append(row)
        if i in offsets:
            entries.append(
                {
                    **row,
                    "split": run.splits[f.rel],
                    "offset": offsets[i],
                    "tokens": run.streamed[i][1],
                    "notes": int(res.stats.get("notes_kept", 0)),
                }
            )
    index = {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "musicgen_version": __version__,
        "signature": run.signature,
        "encoding": to_dict(run.encoding),
        "time": run.time.to_dict(),
        "ingest": to_dict(run.ingest),
        "splits": {"train": [0, n_train_tokens], "val": [n_train_tokens, at]},
        "files": entries,
    }
    report = {
        "format": "musicgen-ingest-report",
        "version": DATASET_VERSION,
        "time": run.time.to_dict(),
        "files": report_files,
    }
    return index, report


def _summary_from_index(
    out, index, report, t0, *, up_to_date: bool, reused: int = 0
) -> IngestSummary:
    statuses = Counter(r["status"] for r in report["files"])
    skipped = Counter(r["reason"] for r in report["files"] if r["status"] == "skipped")
    # group reasons that differ only in counts or parser detail
    grouped: Counter = Counter()
    for reason, n in skipped.items():
        grouped[reason.split(" (")[0].split(":")[0]] += n
    tr, va = index["splits"]["train"], index["splits"]["val"]
    vocab_size = len(json.loads((out / "vocab.json").read_text(encoding="utf-8"))["tokens"])
    return IngestSummary(
        out=out,
        files=len(report["files"]),
        ok=statuses["ok"],
        partial=statuses["partial"],
        skipped=dict(grouped),
        notes=sum(e["notes"] for e in index["files"]),
        tokens=va[1],
        train_tokens=tr[1] - tr[0],
        val_tokens=va[1] - va[0],
        vocab_size=vocab_size,
        seconds=time.perf_counter() - t0,
        reused=reused if not up_to_date else len(index["files"]),
        up_to_date=up_to_date,
        time=index.get("time", {}),
    )
