"""The dataset format: the four files a dataset folder holds, how they are written as
one (atomically, index.json last) and how a reader checks that they belong together.

    vocab.json    the vocabulary and encoding settings (versioned JSON)
    tokens.npy    every kept file's token ids, training files first, then
                  validation files; memory-mapped by the data module
    index.json    per file: path, content hash, split, offset, tokens, notes, timing;
                  the [start, end) range of each split in tokens.npy; the encoding, the
                  clock chosen and why; the size and hash of the other outputs
    report.json   per file: ok / partial / skipped, the reason, every counter
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from musicgen.errors import MusicgenError
from musicgen.fsutil import atomic_write_group, json_bytes
from musicgen.tokens.vocab import Vocabulary

DATASET_FORMAT = "musicgen-dataset"
DATASET_VERSION = 2  # 2: representation v2; 1 is refused with "ingest again"

OUTPUTS = ("tokens.npy", "vocab.json", "report.json", "index.json")


def commit(
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
