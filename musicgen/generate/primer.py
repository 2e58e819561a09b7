"""The start of a piece: a MIDI primer in a model's tokens, or BOS and a chosen line-up.

A primer is read, encoded in the model's encoding and then written again in the
tokens the model's vocabulary has, through the grammar, so that it stays a piece
the model could have written (`snap_to_vocabulary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.config import GenerateConfig
from musicgen.config.generation import instrument_name, parse_instruments  # noqa: F401
from musicgen.errors import MusicgenError, ReadError
from musicgen.midi.read import read_score
from musicgen.tokens.encoding import Encoded, encode, programs_of
from musicgen.tokens.mapping import snap_to_vocabulary
from musicgen.tokens.space import BOS, EOS


@dataclass
class Primer:
    ids: np.ndarray  # compact ids, BOS and the header included, no EOS
    unknown: int  # tokens the model's vocabulary lacks, snapped to its nearest value or left out
    notes: int
    left_out: int = 0  # notes on instruments (or drum keys) the model has never seen


def _check_instruments(vocab, instruments: tuple[int, ...]) -> None:
    known = [
        int(v)
        for v in vocab.space.inst.values
        if vocab.lookup[vocab.space.inst.offset + int(v)] >= 0
    ]
    missing = [p for p in instruments if p not in known]
    if missing:
        raise MusicgenError(
            f"the model never saw instrument {', '.join(map(instrument_name, missing))} in training; "
            f"it knows {', '.join(map(instrument_name, known)) or 'none'}"
        )


def load_primer(
    path: str | Path, vocab, bars: int | None, instruments: tuple[int, ...] | None = None
) -> Primer:
    """A MIDI file as the start of a piece in `vocab`'s tokens.

    Notes on an instrument or a key the vocabulary has never seen are left out (counted);
    every other token is written in the tokens the vocabulary has (`snap_to_vocabulary`),
    so the primer keeps every note it can and stays grammatical.
    """
    try:
        score = read_score(path)
    except ReadError as exc:
        raise MusicgenError(f"primer {path}: {exc}") from None
    if bars is not None:
        lines = score.bar_lines()
        if len(lines) > bars:
            score = score.until(lines[bars])
    try:
        enc, uids, unknown, left_out = model_tokens(score, vocab)
    except MusicgenError as exc:
        raise MusicgenError(f"primer {path}: {exc}") from None
    uids = uids[:-1]  # drop EOS: the piece goes on
    if instruments:
        uids = with_instruments(uids, vocab, instruments)
    return Primer(vocab.lookup[uids], unknown, len(enc.notes), left_out)


def model_tokens(score, vocab) -> tuple[Encoded, np.ndarray, int, int]:
    """A score in `vocab`'s tokens: (its encoding, universal ids with EOS, how many values
    were snapped to the nearest the vocabulary has, how many notes were left out).

    Notes on an instrument or a key the vocabulary has never seen are left out; every
    other token is written in the tokens the vocabulary has (`snap_to_vocabulary`)."""
    cfg, space = vocab.cfg, vocab.space
    notes = score.notes
    n_before = len(notes)
    pitch = notes["pitch"].astype(np.int64)
    drum = notes["drum"]
    in_range = (pitch >= cfg.pitch_min) & (pitch <= cfg.pitch_max)
    # what the encoder keeps; it counts the rest (out of range, drums when left out) itself
    encodable = (in_range | drum) & (~drum | cfg.drums)
    program = programs_of(notes, cfg)
    if cfg.programs == "main" and (encodable & ~drum).any():
        # the main program of the notes the encoder keeps, as it will choose it
        program[~drum] = programs_of(notes[encodable & ~drum], cfg)[0]
        notes["program"] = np.where(drum, notes["program"], program)
    key_id = np.where(
        drum,
        space.drum.offset + pitch,
        space.pitch.offset + np.clip(pitch, cfg.pitch_min, cfg.pitch_max) - cfg.pitch_min,
    )
    known = (vocab.lookup[space.inst.offset + program] >= 0) & (vocab.lookup[key_id] >= 0)
    known |= ~encodable
    score.notes = notes[known]
    enc = encode(score, cfg)
    if not len(enc.notes):
        why = "on instruments or keys the model has never seen" if n_before else "it has none"
        raise MusicgenError(f"has no notes the model's encoding keeps ({why})")
    uids, unknown = snap_to_vocabulary(enc.ids[:-1], vocab)
    return enc, np.append(uids, EOS), unknown, int((~known).sum())


def with_instruments(uids: np.ndarray, vocab, instruments: tuple[int, ...]) -> np.ndarray:
    """The piece's header (the Inst tokens after BOS) widened by `instruments`."""
    inst = vocab.space.inst
    n = 1
    while n < len(uids) and inst.contains(uids[n]):
        n += 1
    have = {int(u) - inst.offset for u in uids[1:n]}
    header = inst.id(sorted(have | set(instruments)))
    return np.concatenate([uids[:1], header, uids[n:]])


def start_of_piece(vocab, cfg: GenerateConfig) -> tuple[np.ndarray, Primer | None, bool]:
    """The prompt every sample continues: a primer, or BOS with the chosen line-up.
    Returns (compact ids, the primer if any, whether the line-up is fixed)."""
    if cfg.instruments:
        _check_instruments(vocab, cfg.instruments)
    if cfg.primer:
        primer = load_primer(cfg.primer, vocab, cfg.primer_bars, cfg.instruments)
        return primer.ids, primer, True
    uids = np.array([BOS], dtype=np.int64)
    if cfg.instruments:
        uids = with_instruments(uids, vocab, cfg.instruments)
    return vocab.lookup[uids], None, bool(cfg.instruments)
