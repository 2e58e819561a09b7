"""A dataset in another vocabulary's ids: how a user's corpus reaches a base model.

A base learns every token of its encoding (`Vocabulary.full`), so a corpus ingested
with the same encoding maps token for token: the same universal ids, the base's
compact ids. A corpus in another encoding (the seconds clock of played music, other
velocity levels, a longer longest note) is decoded piece by piece and encoded again in
the base's: a seconds-mode piece is read on the beats clock at 120 qpm, where a step of
1/48 quarter is 1/96 s, so its timing moves by at most half of that (5.2 ms).
"""

from __future__ import annotations

import copy

import numpy as np

from musicgen.data.dataset import TokenDataset
from musicgen.errors import MusicgenError
from musicgen.tokens.decoding import decode
from musicgen.tokens.encoding import encode
from musicgen.tokens.vocab import Vocabulary


def into_vocabulary(ds: TokenDataset, vocab: Vocabulary) -> tuple[TokenDataset, str | None]:
    """`ds` in `vocab`'s ids, in memory (its files on disk are untouched), and a line
    saying what the mapping did (None when it changed nothing but the ids)."""
    if ds.vocab == vocab:
        return ds, None
    if ds.vocab.cfg == vocab.cfg:
        table = vocab.lookup[ds.vocab.uids]  # dataset compact id -> vocab compact id
        missing = [ds.vocab.tokens[i] for i in np.flatnonzero(table < 0)]
        if missing:
            raise MusicgenError(
                f"{ds.root} uses {len(missing)} tokens the model does not have "
                f"(e.g. {', '.join(missing[:3])}); train it with --init scratch"
            )
        tokens = table[np.asarray(ds.tokens, dtype=np.int64)]
        return TokenDataset(ds.root, vocab, tokens, ds.index), None
    return _encoded_again(ds, vocab)


def _encoded_again(ds: TokenDataset, vocab: Vocabulary) -> tuple[TokenDataset, str]:
    """Each piece decoded in its own encoding and encoded in `vocab`'s, the index (offsets
    and token counts, split by split) rebuilt to match."""
    parts, entries, splits, at = [], [], {}, 0
    notes_before = notes_after = 0
    for split in ("train", "val"):
        lo = at
        for entry in ds.index["files"]:
            if entry["split"] != split:
                continue
            doc = ds.tokens[entry["offset"] : entry["offset"] + entry["tokens"]]
            score, _ = decode(ds.vocab.to_universal(np.asarray(doc)), ds.vocab.cfg)
            ids, unknown = vocab.from_universal(encode(score, vocab.cfg).ids)
            if unknown:
                raise MusicgenError(
                    f"{entry['path']}: {unknown} of its tokens have no place in the model's "
                    "vocabulary; train it with --init scratch"
                )
            notes_before += score.num_notes
            notes_after += int(np.isin(ids, vocab.note_ids).sum())
            parts.append(ids)
            entries.append({**entry, "offset": at, "tokens": len(ids)})
            at += len(ids)
        splits[split] = [lo, at]
    index = copy.deepcopy(ds.index)
    index["files"], index["splits"] = entries, splits
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    was, now = ds.vocab.cfg, vocab.cfg
    clock = f"the {was.time} clock on the {now.time} clock" if was.time != now.time else "it"
    line = (
        f"encoded {ds.root}'s {len(entries)} pieces again in the model's encoding ({clock}): "
        f"{notes_after:,} of {notes_before:,} notes kept"
    )
    return TokenDataset(ds.root, vocab, tokens, index), line
