"""Loading sets of pieces (folders of music, or datasets) and making figures JSON-safe."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from musicgen.midi.score import Score


def _subsample(items: list, limit: int | None) -> list:
    if limit is None or len(items) <= limit:
        return items
    import random

    keep = sorted(random.Random(0).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def load_corpus(
    path: str | Path, split: str | None = None, limit: int | None = None
) -> tuple[list[tuple[str, Score]], dict[str, str]]:
    """(name, score) pairs from a folder of music files or an ingested dataset folder.

    For a dataset, `split` picks "train" or "val" (None: every piece); pieces are
    decoded from their tokens, so they are what a model trained on it saw.
    `limit` keeps that many pieces, a fixed random choice in corpus order.
    Returns the pieces and {name: reason} for files that could not be read.
    """
    from musicgen.errors import MusicgenError, ReadError
    from musicgen.midi.read import read_score

    path = Path(path)
    if (path / "index.json").exists():
        from musicgen.data.dataset import TokenDataset
        from musicgen.tokens.encoding import decode

        ds = TokenDataset.open(path)
        out = []
        for e in _subsample(
            [e for e in ds.index["files"] if split is None or e["split"] == split], limit
        ):
            ids = np.asarray(ds.tokens[e["offset"] : e["offset"] + e["tokens"]])
            score, _ = decode(ds.vocab.to_universal(ids), ds.vocab.cfg)
            out.append((e["path"], score))
        return out, {}
    from musicgen.data.ingest import discover

    if not path.exists():
        raise MusicgenError(f"no such file or folder: {path}")
    pieces, skipped = [], {}
    for f in _subsample(discover([path]), limit):
        try:
            pieces.append((f.rel, read_score(f.path)))
        except ReadError as exc:
            skipped[f.rel] = str(exc)
    return pieces, skipped


def jsonable(obj):
    """nan/inf -> None and numpy scalars -> Python, recursively, for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj
