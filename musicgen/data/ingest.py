"""Folders of music files -> vocabulary + memory-mapped token arrays + report.

Output folder layout (format version `DATASET_VERSION`):

    vocab.json    the vocabulary and encoding settings (versioned JSON)
    tokens.npy    every kept file's token ids, training files first, then
                  validation files; memory-mapped by the data module
    index.json    per file: path, content hash, split, offset, tokens, notes;
                  and the [start, end) range of each split in tokens.npy
    report.json   per file: ok / partial / skipped, the reason, every counter

Files are read and encoded one at a time in worker processes with a time limit
(see pool.py). With `--time auto` a first pass reads every file's timing and
chooses the clock for the corpus (tokens/timebase.py); the second encodes.
Results stream to a temporary file as they arrive, so memory does not grow
with the corpus. Re-running on unchanged inputs is answered from index.json;
changed or new files are the only ones parsed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgen import __version__
from musicgen.config import EncodingConfig, IngestConfig, from_dict, to_dict
from musicgen.data.pool import Failure, WorkerPool
from musicgen.errors import MusicgenError, ReadError
from musicgen.fsutil import atomic_write_group, folder_lock, json_bytes, remove_stale_temps
from musicgen.midi.read import SUPPORTED_SUFFIXES, read_score
from musicgen.midi.score import Score
from musicgen.tokens.encoding import Encoded, encode
from musicgen.tokens.space import token_space
from musicgen.tokens.timebase import TimeChoice, Timing, choose_time, resolve_time, timing_of
from musicgen.tokens.vocab import Vocabulary

DATASET_FORMAT = "musicgen-dataset"
DATASET_VERSION = 2  # 2: representation v2; 1 is refused with "ingest again"


@dataclass
class SourceFile:
    name: str  # the file's path, as found (a string: a corpus may hold a million files)
    rel: str  # stable name used for the split and the report
    digest: str = ""

    @property
    def path(self) -> Path:
        return Path(self.name)


@dataclass
class FileResult:
    status: str  # ok | partial | skipped
    reason: str = ""
    stats: dict = field(default_factory=dict)
    n_tracks: int = 0
    uids: np.ndarray | None = None  # universal token ids
    digest: str = ""  # sha1 of the file's bytes, as the worker read them
    timing: Timing | None = None  # what `--time auto` needs to know of it (None: unreadable)


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


# --- discovery and splitting ---------------------------------------------------------------


def discover(sources: Iterable[str | Path]) -> list[SourceFile]:
    """Files with a supported suffix (any case), recursively, sorted, deduplicated."""
    found: dict[tuple[int, int], SourceFile] = {}  # (device, inode): one entry per real file
    for src in map(Path, sources):
        if src.is_dir():
            for name, rel, key in _walk(str(src)):
                found.setdefault(key, SourceFile(name, _printable(rel)))
        elif src.is_file():
            st = src.stat()
            found.setdefault((st.st_dev, st.st_ino), SourceFile(str(src), _printable(src.name)))
        else:
            raise MusicgenError(f"no such file or folder: {src}")
    files = sorted(found.values(), key=lambda f: f.rel)
    seen: Counter = Counter()
    for f in files:  # two sources may hold the same relative name
        seen[f.rel] += 1
        if seen[f.rel] > 1:
            f.rel = f"{f.rel}#{seen[f.rel]}"
    return files


def _walk(root: str):
    """(path, path relative to `root` with "/", (device, inode)) of supported files below `root`.

    Plain strings and scandir's free file types and inode numbers: one system call
    per folder, plus one per symbolic link (followed, so a link and its target count once).
    """
    prefix = len(os.path.join(root, ""))
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            device = os.stat(folder).st_dev
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):  # no link cycles
                    stack.append(e.path)
                elif os.path.splitext(e.name)[1].lower() in SUPPORTED_SUFFIXES and e.is_file():
                    if e.is_symlink():
                        st = e.stat()
                        key = (st.st_dev, st.st_ino)
                    else:
                        key = (device, e.inode())
                    rel = e.path[prefix:]
                    yield e.path, rel if os.sep == "/" else rel.replace(os.sep, "/"), key
            except OSError:
                continue


def _printable(name: str) -> str:
    """A file name that is not valid UTF-8 (bytes from another system's encoding) gets
    U+FFFD for the bad bytes, so the split hash and the JSON files can hold it."""
    if name.isascii():
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def split_of(rel: str, val_fraction: float) -> str:
    """Decided by the path alone, so adding files never moves the old ones."""
    h = int.from_bytes(hashlib.sha1(rel.encode("utf-8")).digest()[:8], "big") / 2**64
    return "val" if h < val_fraction else "train"


def _digest(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha1(fh.read()).hexdigest()
    except OSError as exc:
        return _unreadable(exc)


def _unreadable(exc: OSError) -> str:
    """What stands for the content hash of a file that could not be read."""
    return f"unreadable:{exc.errno}"


# --- files (run in workers) -------------------------------------------------------------------


def read_file(path: str | Path) -> tuple[str, Score | ReadError]:
    """Read, hash and parse one file (the part a hostile file may hang or crash)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return _unreadable(exc), ReadError(f"cannot read file: {exc.strerror or exc}")
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


def _usable_cpus() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Job:
    """Picklable job for the worker pool: `process_file` with these settings."""

    def __init__(self, cfg: EncodingConfig):
        self.cfg = cfg

    def __call__(self, path: str) -> FileResult:
        return process_file(path, self.cfg)


# --- the run ------------------------------------------------------------------------------


def ingest(
    sources: Iterable[str | Path],
    out: str | Path,
    enc_cfg: EncodingConfig | None = None,
    ing_cfg: IngestConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    t0 = time.perf_counter()
    enc_cfg = enc_cfg or EncodingConfig()
    ing_cfg = ing_cfg or IngestConfig()
    out = Path(out)
    files = discover(sources)
    if not files:
        raise MusicgenError(
            "no music files found (looked for " + ", ".join(sorted(SUPPORTED_SUFFIXES)) + ")"
        )
    with folder_lock(out, "ingestion"):
        return _ingest_locked(files, out, enc_cfg, ing_cfg, progress, t0)


def _run_pool(
    files: list[SourceFile], todo: list[int], cfg: EncodingConfig, ing_cfg: IngestConfig, progress
) -> Iterator[tuple[int, FileResult]]:
    """(file index, result) for each of `todo`, processed in isolated workers."""
    if not todo:
        return
    workers = ing_cfg.workers or _usable_cpus()
    token_space(cfg)  # built once here, inherited by every forked worker
    with WorkerPool(
        _Job(cfg), workers=workers, timeout=ing_cfg.file_timeout, chunk_size=ing_cfg.chunk_size
    ) as pool:
        for done, (k, result) in enumerate(pool.run([files[i].name for i in todo]), start=1):
            i = todo[k]
            res = FileResult("skipped", result.reason) if isinstance(result, Failure) else result
            files[i].digest = files[i].digest or res.digest or _digest(files[i].name)
            if progress:
                progress(done, len(todo))
            yield i, res


class _Stream:
    """Token ids of every file, streamed to one temporary file as results arrive (in
    completion order, which varies from run to run), so memory does not grow with the
    corpus; tokens.npy is then written from it in file order."""

    def __init__(self, tmp: Path, cfg: EncodingConfig):
        self.tmp, self.dtype = tmp, stream_dtype(cfg)
        self.used = np.zeros(token_space(cfg).size, dtype=bool)
        self.pieces: dict[
            int, tuple[int, int]
        ] = {}  # file -> (offset in the temporary file, length)
        self.fh = open(tmp, "wb")  # noqa: SIM115 - closed by close()
        self.at = 0

    def store(self, i: int, res: FileResult) -> None:
        if res.uids is None:
            return
        uids = np.ascontiguousarray(res.uids, dtype=self.dtype)
        self.used[uids] = True
        self.pieces[i] = (self.at, len(uids))
        self.at += len(uids)
        self.fh.write(uids)
        res.uids = None  # on disk now; the corpus is never held in memory

    def close(self) -> None:
        self.fh.close()


def _encode_all(
    files, cfg: EncodingConfig, ing_cfg, prev, tmp: Path, progress
) -> tuple[dict[int, FileResult], _Stream, int]:
    """Every file's result in the encoding `cfg` (its clock decided): the previous run's
    where the content and the encoding are unchanged, the workers' for the rest.
    Returns the results, their streamed tokens and how many were reused."""
    reusable = prev["by_digest"] if prev and prev["encoding"] == cfg else {}
    results: dict[int, FileResult] = {}
    todo = []
    for i, f in enumerate(files):
        cached = reusable.get(f.digest)
        if cached is not None:
            results[i] = dataclasses.replace(
                cached
            )  # storing empties its tokens: keep the cache whole
        else:
            todo.append(i)
    stream = _Stream(tmp, cfg)
    try:
        for i, res in results.items():
            stream.store(i, res)
        for i, res in _run_pool(files, todo, cfg, ing_cfg, progress):
            results[i] = res
            stream.store(i, res)
    finally:
        stream.close()
    return results, stream, len(files) - len(todo)


def _ingest_locked(files, out: Path, asked: EncodingConfig, ing_cfg, progress, t0) -> IngestSummary:
    remove_stale_temps(
        out, list(OUTPUTS)
    )  # left by a killed run; the lock says none is writing now
    prev = load_previous(out)
    splits = {f.rel: split_of(f.rel, ing_cfg.val_fraction) for f in files}
    if prev is not None:
        # Content hashes decide what can be reused. With nothing to reuse, the workers
        # hash each file as they read it, which saves reading the corpus twice.
        for f in files:
            f.digest = _digest(f.name)
        if prev["index"].get("signature") == _signature(files, splits, asked) and not _timed_out(
            prev["report"]
        ):
            return _summary_from_index(out, prev["index"], prev["report"], t0, up_to_date=True)

    tmp = out / ".tokens-stream.tmp"
    try:
        # With --time auto every file is read in beats (the likelier clock) while its timing
        # is taken; only if the corpus turns out to be played is it encoded again, in seconds.
        enc_cfg = asked if asked.time != "auto" else asked.resolved("beats")
        if asked.time == "auto" and prev and prev["encoding"] == asked.resolved("seconds"):
            enc_cfg = prev[
                "encoding"
            ]  # the last run's clock is the likeliest, and its results are reusable
        results, stream, reused = _encode_all(files, enc_cfg, ing_cfg, prev, tmp, progress)
        choice = TimeChoice(asked.time, "asked for")
        if asked.time == "auto":
            choice = choose_time(
                [
                    r.timing
                    for _, r in sorted(results.items())
                    if r.timing is not None and r.status != "skipped"
                ]
            )
            if choice.mode != enc_cfg.time:
                enc_cfg = asked.resolved(choice.mode)
                results, stream, reused = _encode_all(files, enc_cfg, ing_cfg, prev, tmp, progress)
        if not stream.pieces:
            reasons = Counter(r.reason for r in results.values())
            top = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3))
            raise MusicgenError(f"nothing could be ingested from {len(files)} files ({top})")
        # training files first, then validation files, each in file (path) order
        layout = [
            i for i in range(len(files)) if i in stream.pieces and splits[files[i].rel] == "train"
        ]
        n_train = len(layout)
        layout += [
            i for i in range(len(files)) if i in stream.pieces and splits[files[i].rel] == "val"
        ]
        vocab = Vocabulary(enc_cfg, np.flatnonzero(stream.used))
        signature = _signature(files, splits, asked)  # every file's digest is known by now
        run = _Run(
            files,
            splits,
            results,
            stream.pieces,
            layout,
            n_train,
            enc_cfg,
            ing_cfg,
            signature,
            choice,
        )
        index, report = _index_and_report(run)
        _commit(out, tmp, stream.dtype, [stream.pieces[i] for i in layout], vocab, index, report)
    except OSError as exc:
        raise MusicgenError(f"cannot write to {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return _summary_from_index(out, index, report, t0, up_to_date=False, reused=reused)


OUTPUTS = ("tokens.npy", "vocab.json", "report.json", "index.json")


def _commit(
    out: Path,
    tmp: Path,
    tmp_dtype,
    pieces: list[tuple[int, int]],
    vocab: Vocabulary,
    index: dict,
    report: dict,
) -> None:
    """Write the four outputs as one: all in full first, then renamed with index.json last.

    A full disk (or any error) while writing leaves an earlier dataset in `out`
    byte for byte; a crash during the renames leaves no index.json, so the folder
    reads as "not an ingested dataset", never as a mix of two ingestions. index.json
    records the size and hash of the tokens and the vocabulary, so a reader can tell.
    """
    vocab_bytes, report_bytes = json_bytes(vocab.to_json()), json_bytes(report, indent=None)
    index["outputs"] = {
        "vocab.json": {"bytes": len(vocab_bytes), "sha1": hashlib.sha1(vocab_bytes).hexdigest()},
    }

    def tokens(fh) -> None:
        index["outputs"]["tokens.npy"] = _write_tokens(fh, tmp, tmp_dtype, pieces, vocab)

    atomic_write_group(
        {
            out / "tokens.npy": tokens,
            out / "vocab.json": vocab_bytes,
            out / "report.json": report_bytes,
            out / "index.json": lambda fh: fh.write(
                json_bytes(index, indent=None)
            ),  # after tokens: holds their hash
        },
        marker=out / "index.json",
    )


def verify_outputs(root: Path, index: dict) -> None:
    """The files beside index.json are the ones it was written with (cheap: sizes, small hashes)."""
    outputs = index.get("outputs")
    if outputs is None:
        return  # written before index.json recorded its outputs
    if not isinstance(outputs, dict):
        raise MusicgenError(
            f"{root / 'index.json'} is damaged (bad 'outputs'); run `musicgen ingest` again"
        )
    for name, want in outputs.items():
        if name not in ("tokens.npy", "vocab.json") or not isinstance(want, dict):
            raise MusicgenError(
                f"{root / 'index.json'} is damaged (bad 'outputs'); run `musicgen ingest` again"
            )
        path = root / name
        try:
            same = path.stat().st_size == want.get("bytes")
            if (
                same and name == "vocab.json"
            ):  # small: hashed; tokens.npy may be gigabytes: its size is checked
                same = hashlib.sha1(path.read_bytes()).hexdigest() == want.get("sha1")
        except OSError as exc:
            raise MusicgenError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not same:
            raise MusicgenError(
                f"{path} does not belong with {root / 'index.json'} (another ingestion's, or changed since); "
                "run `musicgen ingest` again"
            )


def _timed_out(report: dict) -> bool:
    return any(
        r["status"] == "skipped" and r["reason"].startswith("timed out") for r in report["files"]
    )


class _Hashing:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, fh):
        self.fh, self.sha1, self.bytes = fh, hashlib.sha1(), 0

    def write(self, data) -> int:
        data = bytes(data)
        self.sha1.update(data)
        self.bytes += len(data)
        return self.fh.write(data)


def _write_tokens(
    fh, tmp: Path, tmp_dtype, pieces: list[tuple[int, int]], vocab: Vocabulary
) -> dict:
    """Copy (offset, length) pieces of the streamed ids, in order, remapped to the vocabulary.

    Pieces are gathered into blocks of about a million tokens, so memory stays flat
    and numpy is called per block, not per file. Returns the size and hash written.
    """
    dtype = np.uint16 if len(vocab) <= np.iinfo(np.uint16).max else np.uint32
    total = sum(n for _, n in pieces)
    out = _Hashing(fh)
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": (total,),
    }
    np.lib.format.write_array_header_1_0(out, header)
    # a plain view of the memmap: slicing a memmap subclass costs more than copying a piece
    src = np.memmap(tmp, dtype=tmp_dtype, mode="r") if total else np.zeros(0, tmp_dtype)
    starts = np.array([o for o, _ in pieces], dtype=np.int64)
    lengths = np.array([n for _, n in pieces], dtype=np.int64)
    ends = np.cumsum(lengths)
    first = 0
    while first < len(pieces):
        # whole pieces, about a million tokens at a time
        last = max(
            int(np.searchsorted(ends, ends[first] - lengths[first] + (1 << 20), side="right")),
            first + 1,
        )
        n, base = lengths[first:last], ends[first] - lengths[first]
        # positions in the stream of every token of these pieces, in their new order
        where = np.repeat(starts[first:last] - (ends[first:last] - n - base), n) + np.arange(
            int(n.sum())
        )
        out.write(vocab.lookup[src[where]].astype(dtype).tobytes())
        first = last
    del src
    return {"bytes": out.bytes, "sha1": out.sha1.hexdigest()}


def _signature(files: list[SourceFile], splits: dict[str, str], cfg: EncodingConfig) -> str:
    h = hashlib.sha1(json.dumps(to_dict(cfg), sort_keys=True).encode())
    h.update(f"{DATASET_VERSION}:{__version__}".encode())
    for f in files:
        h.update(f"{f.rel}\0{f.digest}\0{splits[f.rel]}\n".encode())
    return h.hexdigest()


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
