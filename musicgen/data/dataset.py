"""Reading an ingested dataset folder: vocabulary, memory-mapped tokens, index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.data.ingest import DATASET_FORMAT, DATASET_VERSION
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
            raise MusicgenError(f"{root} is not an ingested dataset (no index.json); run `musicgen ingest` first")
        try:
            index = json.loads((root / "index.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MusicgenError(f"cannot read {root / 'index.json'}: {exc}") from None
        if index.get("format") != DATASET_FORMAT:
            raise MusicgenError(f"{root} is not a musicgen dataset")
        if index.get("version") != DATASET_VERSION:
            raise MusicgenError(
                f"{root} was written by dataset format {index.get('version')}; this musicgen reads "
                f"{DATASET_VERSION}: run `musicgen ingest` again"
            )
        vocab = Vocabulary.load(root / "vocab.json")
        try:
            tokens = np.load(root / "tokens.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise MusicgenError(f"cannot read {root / 'tokens.npy'}: {exc}") from None
        end = index["splits"]["val"][1]
        if tokens.ndim != 1 or len(tokens) != end:
            raise MusicgenError(f"{root / 'tokens.npy'} does not match index.json (run `musicgen ingest` again)")
        if len(tokens) and int(tokens.max(initial=0)) >= len(vocab):
            raise MusicgenError(f"{root / 'tokens.npy'} has ids outside its vocabulary")
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
            self.tokens[e["offset"] : e["offset"] + e["tokens"]] for e in self.index["files"] if e["split"] == split
        ]

    def num_notes(self, split: str) -> int:
        return sum(e["notes"] for e in self.index["files"] if e["split"] == split)
