"""Reading an ingested dataset folder: vocabulary, memory-mapped tokens, index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.data.format import DATASET_FORMAT, DATASET_VERSION, verify_outputs
from musicgen.errors import MusicgenError
from musicgen.tokens.vocab import Vocabulary


@dataclass
class TokenDataset:
    root: Path
    vocab: Vocabulary
    tokens: np.ndarray  # memory-mapped, never loaded whole
    index: dict

    @classmethod
    def open(cls, root: str | Path) -> TokenDataset:
        root = Path(root)
        if not (root / "index.json").exists():
            raise MusicgenError(
                f"{root} is not an ingested dataset (no index.json); run `musicgen ingest` first"
            )
        try:
            index = json.loads((root / "index.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MusicgenError(f"cannot read {root / 'index.json'}: {exc}") from None
        if not isinstance(index, dict):
            raise MusicgenError(f"{root} is not a musicgen dataset (index.json holds no settings)")
        if index.get("format") != DATASET_FORMAT:
            if "format" not in index and ("files" in index or "splits" in index):
                raise MusicgenError(
                    f"{root} was written by an older musicgen (index.json has no format marker): run `musicgen ingest` again"
                )
            raise MusicgenError(f"{root} is not a musicgen dataset")
        if index.get("version") != DATASET_VERSION:
            raise MusicgenError(
                f"{root} was written by dataset format {index.get('version')}; this musicgen reads "
                f"{DATASET_VERSION}: run `musicgen ingest` again"
            )
        vocab = Vocabulary.load(root / "vocab.json")
        try:
            tokens = np.load(root / "tokens.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise MusicgenError(
                f"cannot read {root / 'tokens.npy'}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from None
        if (
            not isinstance(tokens, np.ndarray)
            or tokens.ndim != 1
            or not np.issubdtype(tokens.dtype, np.integer)
        ):
            raise MusicgenError(
                f"{root / 'tokens.npy'} is not a flat array of token ids (run `musicgen ingest` again)"
            )
        verify_outputs(
            root, index
        )  # the vocabulary and tokens are the ones index.json was written with
        _check_index(root, index, len(tokens))
        signed = np.issubdtype(tokens.dtype, np.signedinteger)
        if len(tokens) and (int(tokens.max()) >= len(vocab) or (signed and int(tokens.min()) < 0)):
            raise MusicgenError(
                f"{root / 'tokens.npy'} has ids outside its vocabulary of {len(vocab)} tokens"
            )
        return cls(root, vocab, tokens, index)

    def split_range(self, split: str) -> tuple[int, int]:
        lo, hi = self.index["splits"][split]
        return int(lo), int(hi)

    def split_tokens(self, split: str) -> np.ndarray:
        lo, hi = self.split_range(split)
        return self.tokens[lo:hi]

    def documents(self, split: str) -> list[np.ndarray]:
        """Per-file token arrays (views into the memory map)."""
        return [
            self.tokens[e["offset"] : e["offset"] + e["tokens"]]
            for e in self.index["files"]
            if e["split"] == split
        ]

    def num_notes(self, split: str) -> int:
        return sum(e["notes"] for e in self.index["files"] if e["split"] == split)


def _check_index(root: Path, index: dict, n_tokens: int) -> None:
    """Every range in index.json lies inside tokens.npy and inside its split."""
    where = root / "index.json"
    try:
        splits = {
            k: (int(index["splits"][k][0]), int(index["splits"][k][1])) for k in ("train", "val")
        }
        files = index["files"]
        if not isinstance(files, list):
            raise TypeError("'files' is not a list")
        entries = [(e["split"], int(e["offset"]), int(e["tokens"]), int(e["notes"])) for e in files]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MusicgenError(
            f"{where} is damaged ({type(exc).__name__}: {exc}); run `musicgen ingest` again"
        ) from None
    (t0, t1), (v0, v1) = splits["train"], splits["val"]
    if not (t0 == 0 and t0 <= t1 == v0 <= v1):
        raise MusicgenError(f"{where} is damaged (splits {splits}); run `musicgen ingest` again")
    if v1 != n_tokens:
        raise MusicgenError(
            f"{root / 'tokens.npy'} holds {n_tokens} tokens but index.json describes {v1} (run `musicgen ingest` again)"
        )
    for split, off, length, notes in entries:
        lo, hi = splits.get(split, (0, -1))
        if length < 0 or notes < 0 or off < lo or off + length > hi:
            raise MusicgenError(
                f"{where} points past tokens.npy or outside its {split!r} split "
                f"(tokens {off}..{off + length} of {n_tokens}); run `musicgen ingest` again"
            )
