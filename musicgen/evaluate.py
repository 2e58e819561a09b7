"""Held-out likelihood of a model beside an interpolated Kneser-Ney baseline.

Both score the same tokens: every token after BOS of every held-out piece.
Bits per note (total bits / number of notes) is the headline figure: it does
not depend on how many tokens the encoding spends per note.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musicgen.checkpoint import LoadedModel
from musicgen.data.datamodule import IGNORE, EvalStreams
from musicgen.data.dataset import TokenDataset
from musicgen.data.remap import into_vocabulary
from musicgen.errors import MusicgenError, ReadError
from musicgen.midi.read import read_score
from musicgen.ngram import KneserNey, best_order


@dataclass
class Scores:
    bits: float
    tokens: int
    notes: int
    correct: int = 0

    @property
    def bits_per_token(self) -> float:
        return self.bits / max(self.tokens, 1)

    @property
    def bits_per_note(self) -> float:
        return self.bits / max(self.notes, 1)

    @property
    def perplexity(self) -> float:
        return 2.0**self.bits_per_token

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.tokens, 1)


@dataclass
class Report:
    model: str
    checkpoint: str
    pieces: int
    tokens: int
    notes: int
    bits_per_token: float
    bits_per_note: float
    perplexity: float
    accuracy: float
    context: int
    unknown_tokens: int = 0
    files_skipped: dict[str, str] = field(default_factory=dict)
    files_in_training: int = (
        0  # scored files that are in the dataset's training split: not held out
    )
    ngram_order: int | None = None
    ngram_bits_per_note: float | None = None
    ngram_bits_per_token: float | None = None
    ngram_by_order: dict[int, float] = field(default_factory=dict)
    ratio_to_ngram: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def score_model(
    model: LoadedModel, docs: list[np.ndarray], context: int | None = None, batch_size: int = 16
) -> Scores:
    """Bits of every token after BOS of every piece. With no `context`, each piece is scored
    whole, chunk by chunk with the state carried, so a token sees all that came before it
    (up to the core's window), as in generation; with `context` N, in independent windows
    of N tokens, each starting cold."""
    core = model.core.eval()
    device = next(core.parameters()).device
    chunks = EvalStreams(docs, context or model.model_cfg.max_len, model.vocab.pad_id, batch_size)
    note_ids = torch.from_numpy(model.vocab.note_ids).to(device)
    bits = 0.0
    tokens = notes = correct = 0
    state = None
    for i in range(len(chunks)):
        x, y, first = chunks[i]
        x, y = x.to(device), y.to(device)  # (B, T)
        logits, state = core(x, None if first or context else state)  # (B, T, V)
        flat = logits.reshape(-1, logits.size(-1)).float()
        yf = y.reshape(-1)
        valid = yf != IGNORE
        bits += float(F.cross_entropy(flat, yf, ignore_index=IGNORE, reduction="sum")) / math.log(2)
        tokens += int(valid.sum())
        notes += int(torch.isin(yf, note_ids).sum())
        correct += int(((flat.argmax(-1) == yf) & valid).sum())
    return Scores(bits, tokens, notes, correct)


def score_ngram(
    lm: KneserNey, docs: list[np.ndarray], note_ids: np.ndarray
) -> tuple[dict[int, Scores], int]:
    """A fitted Kneser-Ney model's scores, order by order, on the same tokens a model is
    scored on (every token after BOS), and its best order (the smaller on a tie)."""
    notes = sum(int(np.isin(d[1:], note_ids).sum()) for d in docs)
    tokens = sum(max(len(d) - 1, 0) for d in docs)
    bits = lm.evaluate(docs, given=1)
    out = {k: Scores(b, tokens, notes) for k, b in bits.items()}
    return out, best_order(bits)


def fit_ngram(train_docs: list[np.ndarray], vocab_size: int, max_order: int = 8) -> KneserNey:
    return KneserNey(max_order, vocab_size=vocab_size).fit(
        np.asarray(d, dtype=np.int64) for d in train_docs
    )


def encode_files(
    paths: list[Path], model: LoadedModel, digests: list[str] | None = None
) -> tuple[list[np.ndarray], int, dict[str, str]]:
    """MIDI files -> the checkpoint's token ids; unknown tokens are counted and dropped.

    `digests`, if given, receives the SHA-1 of every scored file (to spot training files)."""
    import hashlib

    from musicgen.data.ingest import discover
    from musicgen.tokens.encoding import encode

    docs, unknown, skipped = [], 0, {}
    for f in discover(paths):
        try:
            data = f.path.read_bytes()
            enc = encode(read_score(f.path, data), model.encoding)
        except OSError as exc:
            skipped[f.rel] = f"cannot read file: {exc.strerror or exc}"
            continue
        except ReadError as exc:
            skipped[f.rel] = str(exc)
            continue
        if not len(enc.notes):
            skipped[f.rel] = "no notes"
            continue
        ids, unk = model.vocab.from_universal(enc.ids)
        unknown += unk
        docs.append(ids)
        if digests is not None:
            digests.append(hashlib.sha1(data).hexdigest())  # the bytes just scored, read once
    return docs, unknown, skipped


def evaluate(
    model: LoadedModel,
    *,
    data_dir: str | Path | None = None,
    sources: list[Path] | None = None,
    context: int | None = None,
    ngram: bool = True,
    max_order: int = 8,
) -> Report:
    ds = None
    if (
        data_dir is None
        and model.meta.get("data")
        and Path(model.meta["data"], "index.json").exists()
    ):
        data_dir = model.meta["data"]
    mapped = None  # the dataset in the model's ids (a fine-tune learnt its base's vocabulary)
    if data_dir is not None:
        ds = TokenDataset.open(data_dir)
        if ds.vocab.plays_like(model.vocab):
            mapped = ds
        else:
            try:
                mapped, _ = into_vocabulary(ds, model.vocab)
            except MusicgenError:
                raise MusicgenError(
                    f"{data_dir} uses a different vocabulary than the checkpoint; evaluate on MIDI files instead"
                ) from None
    unknown, skipped, digests = 0, {}, []
    if sources:
        docs, unknown, skipped = encode_files(sources, model, digests)
    elif mapped is not None:
        docs = [np.asarray(d) for d in mapped.documents("val")]
    else:
        raise MusicgenError("nothing to evaluate: give MIDI files or --data DIR")
    if not docs:
        raise MusicgenError("no evaluable pieces (all files were skipped)")
    s = score_model(model, docs, context)
    rep = Report(
        model=model.model_cfg.name,
        checkpoint=str(model.path),
        pieces=len(docs),
        tokens=s.tokens,
        notes=s.notes,
        bits_per_token=s.bits_per_token,
        bits_per_note=s.bits_per_note,
        perplexity=s.perplexity,
        accuracy=s.accuracy,
        context=context or 0,
        unknown_tokens=unknown,
        files_in_training=_in_training(digests, ds),
        files_skipped=skipped,
    )
    if ngram and mapped is not None:
        # the n-gram learns the dataset in the model's ids: the same tokens the model reads
        train_docs = [np.asarray(d) for d in mapped.documents("train")]
        lm = fit_ngram(train_docs, len(model.vocab), max_order)
        by_order, best = score_ngram(lm, docs, model.vocab.note_ids)
        rep.ngram_order = best
        rep.ngram_bits_per_note = by_order[best].bits_per_note
        rep.ngram_bits_per_token = by_order[best].bits_per_token
        rep.ngram_by_order = {k: v.bits_per_note for k, v in by_order.items()}
        rep.ratio_to_ngram = s.bits_per_note / by_order[best].bits_per_note
    return rep


def _in_training(digests: list[str], ds: TokenDataset | None) -> int:
    if ds is None or not digests:
        return 0
    train = {e["sha1"] for e in ds.index["files"] if e["split"] == "train"}
    return sum(d in train for d in digests)
