"""Atomic file writes: temporary file in the same folder, fsync, rename.

A crash or a full disk mid-write leaves the old file (or none), never half a file.
`atomic_write_group` extends that to several files that belong together (a
dataset's tokens, vocabulary and index; a song and its sidecar): every new file
is written in full before any old one is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

Writer = Callable[[IO[bytes]], Any]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the folder's entry must reach the disk too."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not every system lets a folder be opened (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def interrupt_deferred():
    """Hold a Ctrl-C that arrives inside the block until the block ends, then raise it.

    A KeyboardInterrupt raised in the middle of a writer may not come out as one: torch.save
    closes its zip archive on the way out and that raises a RuntimeError over it, so a run
    stopped while saving a checkpoint ended in a traceback and exit code 1 rather than its
    save-and-exit-130. The writes are short; the Ctrl-C waits until the file is in place.
    Only the main thread can take signals, so elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield  # ignored, or someone else's handler: leave it to them
        return
    caught: list[int] = []

    def held(signum, frame):
        if caught:  # a second Ctrl-C: the write may hang (a stalled disk); stop now
            raise KeyboardInterrupt
        caught.append(signum)

    signal.signal(signal.SIGINT, held)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:  # also over an error of the write's own: the Ctrl-C is what was asked
            raise KeyboardInterrupt


def _write_temp(path: Path, write: Writer) -> Path:
    """`write` into a new temporary file beside `path`, flushed and fsynced; removed on failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: str | Path, write: Writer) -> Path:
    path = Path(path)
    with interrupt_deferred():
        tmp = _write_temp(path, write)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    return path


def atomic_write_group(
    files: Mapping[str | Path, Writer | bytes], marker: str | Path | None = None
) -> list[Path]:
    """Replace several files together.

    Every file is first written in full to a temporary file beside it (a full disk
    or any error here removes the temporaries and leaves every old file as it was);
    only then are they renamed into place, in order. `marker` (one of `files`, e.g.
    a dataset's index) is removed before the first rename and renamed last, so a
    crash between two renames leaves no marker rather than a mix of old and new
    files under one. A Ctrl-C waits until every file is in place.
    """
    with interrupt_deferred():
        return _write_group(files, marker)


def _write_group(
    files: Mapping[str | Path, Writer | bytes], marker: str | Path | None
) -> list[Path]:
    items = [(Path(p), w) for p, w in files.items()]
    order = list(range(len(items)))
    if marker is not None:
        last = [i for i, (p, _) in enumerate(items) if p == Path(marker)]
        if len(last) != 1:
            raise ValueError(f"the marker {marker} must be one of the files written")
        order = [i for i in order if i != last[0]] + last
    temps: list[Path] = []
    done: set[int] = set()
    try:
        for path, w in items:
            temps.append(
                _write_temp(
                    path, (lambda fh, b=w: fh.write(b)) if isinstance(w, bytes | bytearray) else w
                )
            )
        if marker is not None:
            Path(marker).unlink(missing_ok=True)
        for i in order:
            os.replace(temps[i], items[i][0])
            done.add(i)
    finally:
        for i, t in enumerate(temps):
            if i not in done:
                t.unlink(missing_ok=True)
    for folder in {p.parent for p, _ in items}:
        _fsync_dir(folder)
    return [p for p, _ in items]


def json_bytes(obj: Any, indent: int | None = 2) -> bytes:
    """indent=None writes compact JSON: for large machine-read files such as a dataset index."""
    separators = None if indent is not None else (",", ":")
    return (
        json.dumps(obj, indent=indent, separators=separators, ensure_ascii=False) + "\n"
    ).encode("utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_bytes(path, json_bytes(obj))


def remove_stale_temps(folder: str | Path, names: list[str]) -> int:
    """Delete temporaries that a killed writer of `names` left in `folder`.

    Only safe while nothing else may be writing those names (e.g. under a lock).
    """
    n = 0
    for name in names:
        for p in Path(folder).glob(f".{name}.*.tmp"):
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    return n


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str, hint: str = "wait for it to finish"):
    """Hold `folder/.lock` for the block: one writer per folder (an ingestion, a training
    run). A second one fails at once with "another <what> is writing <folder>"."""
    import fcntl

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / ".lock", "w")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        from musicgen.errors import MusicgenError

        raise MusicgenError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from musicgen.errors import MusicgenError

            raise MusicgenError(f"another {what} is writing {folder}; {hint}") from None
        yield folder
    finally:
        fh.close()
