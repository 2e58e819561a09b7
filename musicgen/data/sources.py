"""Finding a corpus's files and deciding each one's split."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from musicgen.errors import MusicgenError
from musicgen.midi.read import SUPPORTED_SUFFIXES


@dataclass
class SourceFile:
    name: str  # the file's path, as found (a string: a corpus may hold a million files)
    rel: str  # stable name used for the split and the report
    digest: str = ""

    @property
    def path(self) -> Path:
        return Path(self.name)


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


def digest_of(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha1(fh.read()).hexdigest()
    except OSError as exc:
        return unreadable(exc)


def unreadable(exc: OSError) -> str:
    """What stands for the content hash of a file that could not be read."""
    return f"unreadable:{exc.errno}"
