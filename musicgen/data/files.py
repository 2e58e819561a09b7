"""One file's work, done in the worker processes: read, hash, parse, time, encode."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.data.sources import unreadable
from musicgen.errors import ReadError
from musicgen.midi.read import read_score
from musicgen.midi.score import Score
from musicgen.tokens.encoding import Encoded, encode
from musicgen.tokens.space import token_space
from musicgen.tokens.timebase import Timing, resolve_time, timing_of


@dataclass
class FileResult:
    status: str  # ok | partial | skipped
    reason: str = ""
    stats: dict = field(default_factory=dict)
    n_tracks: int = 0
    uids: np.ndarray | None = None  # universal token ids
    digest: str = ""  # sha1 of the file's bytes, as the worker read them
    timing: Timing | None = None  # what `--time auto` needs to know of it (None: unreadable)


def read_file(path: str | Path) -> tuple[str, Score | ReadError]:
    """Read, hash and parse one file (the part a hostile file may hang or crash)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return unreadable(exc), ReadError(f"cannot read file: {exc.strerror or exc}")
    digest = hashlib.sha1(data).hexdigest()
    try:
        return digest, read_score(path, data)
    except ReadError as exc:
        return digest, exc


def process_file(path: str | Path, cfg: EncodingConfig) -> FileResult:
    """One file, start to end: its tokens in `cfg` (its clock decided), and its timing
    (what `--time auto` decides from)."""
    digest, score = read_file(path)
    if isinstance(score, ReadError):
        return FileResult("skipped", str(score), digest=digest)
    timing = timing_of(score, cfg.steps_per_quarter)
    return _file_result(score, encode(score, cfg), digest, timing, stream_dtype(cfg))


def stream_dtype(cfg: EncodingConfig) -> np.dtype:
    """The smallest type that holds every universal id (results cross a pipe to the parent)."""
    return np.dtype(np.uint16) if token_space(cfg).size <= 1 << 16 else np.dtype(np.int32)


def ingest_file(path: str | Path, cfg: EncodingConfig) -> FileResult:
    """One file on its own (the Python API); an 'auto' clock is decided for it alone."""
    digest, score = read_file(path)
    if isinstance(score, ReadError):
        return FileResult("skipped", str(score), digest=digest)
    cfg, _ = resolve_time(cfg, [score])
    return _file_result(
        score,
        encode(score, cfg),
        digest,
        timing_of(score, cfg.steps_per_quarter),
        stream_dtype(cfg),
    )


def _file_result(
    score: Score, enc: Encoded, digest: str, timing: Timing, id_dtype: np.dtype
) -> FileResult:
    stats = {k: v for k, v in enc.stats.items() if v}
    dropped = _dropped_text(stats)
    if not len(enc.notes):
        drums = stats.get("drum_notes_dropped", 0)
        if drums and drums == stats.get("notes_in", 0):
            reason = f"drum-only file ({drums} drum notes, and drums are off: --no-drums)"
        elif stats.get("notes_in", 0):
            reason = f"no notes left ({dropped})"
        else:
            reason = "no notes"
        return FileResult("skipped", reason, stats, score.n_tracks, digest=digest, timing=timing)
    # Unison doublings merged as duplicates still sound, so they do not make a file partial.
    # A damaged file the reader had to repair is partial: its reason says what was repaired.
    lost = stats.get("drum_notes_dropped", 0) + stats.get("out_of_range_dropped", 0)
    status = "partial" if lost or score.warnings else "ok"
    reason = "; ".join(r for r in (*score.warnings, dropped) if r)
    return FileResult(
        status, reason, stats, score.n_tracks, enc.ids.astype(id_dtype), digest, timing
    )


def _dropped_text(stats: dict) -> str:
    parts = []
    for key, label in (
        ("drum_notes_dropped", "drum notes dropped"),
        ("out_of_range_dropped", "notes out of pitch range dropped"),
        ("duplicates_merged", "unison duplicates merged"),
    ):
        if stats.get(key):
            parts.append(f"{stats[key]} {label}")
    return ", ".join(parts)
