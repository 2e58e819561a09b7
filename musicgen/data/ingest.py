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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen import __version__
from musicgen.config import EncodingConfig, IngestConfig, to_dict
from musicgen.data.files import FileResult, process_file, stream_dtype
from musicgen.data.format import DATASET_VERSION, OUTPUTS, commit
from musicgen.data.index import IngestSummary, _index_and_report, _Run, _summary_from_index  # noqa: F401
from musicgen.data.pool import Failure, WorkerPool
from musicgen.data.previous import load_previous, timed_out
from musicgen.data.sources import SourceFile, digest_of, discover, split_of
from musicgen.errors import MusicgenError
from musicgen.fsutil import folder_lock, remove_stale_temps
from musicgen.midi.read import SUPPORTED_SUFFIXES
from musicgen.tokens.space import token_space
from musicgen.tokens.timebase import TimeChoice, choose_time
from musicgen.tokens.vocab import Vocabulary

__all__ = ["IngestSummary", "discover", "ingest", "split_of"]


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


def ingest(
    sources: Iterable[str | Path],
    out: str | Path,
    enc_cfg: EncodingConfig | None = None,
    ing_cfg: IngestConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    t0 = time.perf_counter()
    files = discover(sources)
    if not files:
        raise MusicgenError(
            "no music files found (looked for " + ", ".join(sorted(SUPPORTED_SUFFIXES)) + ")"
        )
    out = Path(out)
    with folder_lock(out, "ingestion"):
        run = Ingestion(
            files, out, enc_cfg or EncodingConfig(), ing_cfg or IngestConfig(), progress
        )
        return run.run(t0)


class _Stream:
    """Token ids of every file, streamed to one temporary file as results arrive (in
    completion order, which varies from run to run), so memory does not grow with the
    corpus; tokens.npy is then written from it in file order."""

    def __init__(self, tmp: Path, cfg: EncodingConfig):
        self.tmp, self.dtype = tmp, stream_dtype(cfg)
        self.used = np.zeros(token_space(cfg).size, dtype=bool)
        self.pieces: dict[int, tuple[int, int]] = {}  # file -> (offset in the stream, length)
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


@dataclass
class Ingestion:
    """One ingestion of `files` into the dataset folder `out` (whose lock the caller holds)."""

    files: list[SourceFile]
    out: Path
    asked: EncodingConfig  # as asked: the clock may be "auto"
    cfg: IngestConfig
    progress: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        self.splits = {f.rel: split_of(f.rel, self.cfg.val_fraction) for f in self.files}
        self.tmp = self.out / ".tokens-stream.tmp"
        self.prev: dict | None = None

    def run(self, t0: float) -> IngestSummary:
        remove_stale_temps(self.out, list(OUTPUTS))  # a killed run's; the lock says none writes now
        self.prev = prev = load_previous(self.out)
        if prev is not None:
            # Content hashes decide what can be reused. With nothing to reuse, the workers
            # hash each file as they read it, which saves reading the corpus twice.
            for f in self.files:
                f.digest = digest_of(f.name)
            unchanged = prev["index"].get("signature") == self.signature()
            if unchanged and not timed_out(prev["report"]):
                return _summary_from_index(
                    self.out, prev["index"], prev["report"], t0, up_to_date=True
                )
        try:
            index, report, reused = self._encode_and_write()
        except OSError as exc:
            raise MusicgenError(f"cannot write to {self.out}: {exc.strerror or exc}") from None
        finally:
            self.tmp.unlink(missing_ok=True)
        return _summary_from_index(self.out, index, report, t0, up_to_date=False, reused=reused)

    def signature(self) -> str:
        return _signature(self.files, self.splits, self.asked)

    def _encode_and_write(self) -> tuple[dict, dict, int]:
        asked, prev = self.asked, self.prev
        # With --time auto every file is read in beats (the likelier clock) while its timing
        # is taken; only if the corpus turns out to be played is it encoded again, in seconds.
        # The last run's clock comes first when it was seconds: its results are reusable.
        enc_cfg = asked if asked.time != "auto" else asked.resolved("beats")
        if asked.time == "auto" and prev and prev["encoding"] == asked.resolved("seconds"):
            enc_cfg = prev["encoding"]
        results, stream, reused = self._encode_all(enc_cfg)
        choice = TimeChoice(asked.time, "asked for")
        if asked.time == "auto":
            ok = [
                r.timing
                for _, r in sorted(results.items())
                if r.timing is not None and r.status != "skipped"
            ]
            choice = choose_time(ok)
            if choice.mode != enc_cfg.time:
                enc_cfg = asked.resolved(choice.mode)
                results, stream, reused = self._encode_all(enc_cfg)
        if not stream.pieces:
            reasons = Counter(r.reason for r in results.values())
            top = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3))
            raise MusicgenError(f"nothing could be ingested from {len(self.files)} files ({top})")
        # training files first, then validation files, each in file (path) order
        kept = [i for i in range(len(self.files)) if i in stream.pieces]
        layout = [i for i in kept if self.splits[self.files[i].rel] == "train"]
        n_train = len(layout)
        layout += [i for i in kept if self.splits[self.files[i].rel] == "val"]
        vocab = Vocabulary(enc_cfg, np.flatnonzero(stream.used))
        # the signature now: every file's digest is known by now
        run = _Run(
            self.files,
            self.splits,
            results,
            stream.pieces,
            layout,
            n_train,
            enc_cfg,
            self.cfg,
            self.signature(),
            choice,
        )
        index, report = _index_and_report(run)
        commit(
            self.out,
            self.tmp,
            stream.dtype,
            [stream.pieces[i] for i in layout],
            vocab,
            index,
            report,
        )
        return index, report, reused

    def _encode_all(self, cfg: EncodingConfig) -> tuple[dict[int, FileResult], _Stream, int]:
        """Every file's result in the encoding `cfg` (its clock decided): the previous run's
        where the content and the encoding are unchanged, the workers' for the rest.
        Returns the results, their streamed tokens and how many were reused."""
        reusable = self.prev["by_digest"] if self.prev and self.prev["encoding"] == cfg else {}
        results: dict[int, FileResult] = {}
        todo = []
        for i, f in enumerate(self.files):
            cached = reusable.get(f.digest)
            if cached is not None:
                results[i] = dataclasses.replace(
                    cached
                )  # storing empties its tokens: keep the cache whole
            else:
                todo.append(i)
        stream = _Stream(self.tmp, cfg)
        try:
            for i, res in results.items():
                stream.store(i, res)
            for i, res in self._run_pool(todo, cfg):
                results[i] = res
                stream.store(i, res)
        finally:
            stream.close()
        return results, stream, len(self.files) - len(todo)

    def _run_pool(self, todo: list[int], cfg: EncodingConfig) -> Iterator[tuple[int, FileResult]]:
        """(file index, result) for each of `todo`, processed in isolated workers."""
        if not todo:
            return
        workers = self.cfg.workers or _usable_cpus()
        token_space(cfg)  # built once here, inherited by every forked worker
        pool = WorkerPool(
            _Job(cfg),
            workers=workers,
            timeout=self.cfg.file_timeout,
            chunk_size=self.cfg.chunk_size,
        )
        with pool:
            for done, (k, result) in enumerate(
                pool.run([self.files[i].name for i in todo]), start=1
            ):
                i = todo[k]
                res = (
                    FileResult("skipped", result.reason) if isinstance(result, Failure) else result
                )
                f = self.files[i]
                f.digest = f.digest or res.digest or digest_of(f.name)
                if self.progress:
                    self.progress(done, len(todo))
                yield i, res


def _signature(files: list[SourceFile], splits: dict[str, str], cfg: EncodingConfig) -> str:
    h = hashlib.sha1(json.dumps(to_dict(cfg), sort_keys=True).encode())
    h.update(f"{DATASET_VERSION}:{__version__}".encode())
    for f in files:
        h.update(f"{f.rel}\0{f.digest}\0{splits[f.rel]}\n".encode())
    return h.hexdigest()
