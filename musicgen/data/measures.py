"""Measures of a token dataset's pieces: decoded to scores, then measured by
musicgen/analysis (which knows nothing of tokens)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from musicgen.analysis.features import Silence, longest_repeat_run
from musicgen.analysis.form import FormPrior, learn_form
from musicgen.analysis.key import estimate_key
from musicgen.tokens.encoding import decode


def learn_form_of(docs: Iterable[np.ndarray], vocab) -> FormPrior:
    """The form of a dataset's pieces (compact ids of `vocab`), as `train` stores it."""
    return learn_form(decode(vocab.to_universal(d), vocab.cfg)[0] for d in docs)


MAX_LINEUPS = 256  # line-ups kept with a model: a few kilobytes in its metadata
# bars of each kept piece's texture (a character a bar and attribute: 32 KB at most); a
# longer new piece goes on without a drawn texture after them
TEXTURE_BARS = 64
# The loop guard's default limit: the longest loop of this share of the training pieces
# (generate/repetition.py LoopGuard), so a new piece loops no longer than 9 in 10 of them;
# the silence guard's likewise (generate/length.py).
LOOP_QUANTILE = 0.9


def corpus_profile(docs: list[np.ndarray], vocab, controls=None) -> dict:
    """What a new piece may take from the corpus (`--prior corpus`): the training pieces'
    line-ups (up to MAX_LINEUPS, drawn with a fixed seed, each as often as the corpus has
    it) with when each of their instruments came in and the longest each then rested
    (`entries`, `rests`: the entry guard's), the same pieces' textures bar by bar
    (`textures`, for a model that learnt the controls: `controls`, the BarControls of
    `docs`), and how many pieces are in each of the 24 keys (the keys `controls`
    measured, or measured here)."""
    inst = vocab.families == "inst"
    values = vocab.space.value[vocab.uids]
    found = []  # (the piece's index in docs, its line-up)
    for k, doc in enumerate(docs):
        ids = np.asarray(doc[1 : 1 + 130])  # after BOS: the header's Inst tokens
        n = int(np.argmin(inst[ids])) if not inst[ids].all() else len(ids)
        if n:
            found.append((k, [int(v) for v in values[ids[:n]]]))
    if len(found) > MAX_LINEUPS:
        keep = np.random.default_rng(0).choice(len(found), MAX_LINEUPS, replace=False)
        found = [found[i] for i in sorted(keep)]
    lineups = [" ".join(map(str, lineup)) for _, lineup in found]
    # read only for the line-ups kept: a whole piece through the interpreter each
    timing = [band_timing(docs[k], vocab, lineup) for k, lineup in found]
    if controls is not None:
        keys = [p.key for p in controls.pieces]
    else:
        keys = [estimate_key(decode(vocab.to_universal(d), vocab.cfg)[0]) for d in docs]
    counts = np.bincount([k for k in keys if k is not None and k >= 0], minlength=24)
    profile = {
        "lineups": lineups,
        "entries": [entries for entries, _ in timing],
        "rests": [rests for _, rests in timing],
        "keys": counts[:24].tolist(),
        "longest_loop": longest_loop(docs, vocab),
        "longest_silence": longest_silence(docs, vocab),
    }
    if controls is not None:
        profile["textures"] = [controls.texture(k, TEXTURE_BARS) for k, _ in found]
    return profile


def band_timing(
    doc: np.ndarray, vocab, lineup: list[int]
) -> tuple[list[float | None], list[float | None]]:
    """For each instrument of `lineup` in the piece `doc`: when it plays its first note,
    from the piece's first step, and the longest it then rests (from where its notes stop
    sounding to its next note, or to the end of the piece's last note), both in the clock's
    unit (quarters or seconds); None for one that never plays."""
    first: dict[int, int] = {}
    sounding: dict[int, int] = {}  # program -> the step its notes sound until
    rest: dict[int, int] = {}
    end = 0
    for note in vocab.stream().feed_all(vocab.to_universal(np.asarray(doc))):
        p = note.program
        first.setdefault(p, note.step)
        if p in sounding:
            rest[p] = max(rest.get(p, 0), note.step - sounding[p])
        sounding[p] = max(sounding.get(p, 0), note.step + note.dur)
        end = max(end, note.step + note.dur)
    unit = vocab.cfg.steps_per_unit

    def in_units(steps: dict[int, int], p: int) -> float | None:
        return round(steps[p] / unit, 4) if p in steps else None

    for p, until in sounding.items():
        rest[p] = max(rest.get(p, 0), end - until)
    return [in_units(first, p) for p in lineup], [in_units(rest, p) for p in lineup]


def longest_loop(docs: list[np.ndarray], vocab) -> int:
    """Notes over which one short pattern of pitches repeats, at most, in LOOP_QUANTILE of
    the pieces: read on the pitch tokens in the order they come, as the loop guard reads
    them (0 when no piece has pitches)."""
    runs = []
    for doc in docs:
        doc = np.asarray(doc)
        pitches = doc[vocab.is_pitch(doc)]
        if len(pitches):
            runs.append(longest_repeat_run(pitches))
    return int(np.ceil(np.quantile(runs, LOOP_QUANTILE))) if runs else 0


def longest_silence(docs: list[np.ndarray], vocab) -> float:
    """The longest stretch with nothing sounding, lead-in included (from the first step
    to the first note), that LOOP_QUANTILE of the pieces stay within, in the clock's unit
    (quarters or seconds): read from the tokens as the silence guard reads them."""
    longest = []
    for doc in docs:
        silence = Silence()
        for note in vocab.stream().feed_all(vocab.to_universal(np.asarray(doc))):
            silence.note(note.step, note.dur)
        if silence.notes:
            longest.append(silence.longest)
    if not longest:
        return 0.0
    # at least a step: 0 would turn the guard off for a corpus that is never silent
    steps = max(1, int(np.ceil(np.quantile(longest, LOOP_QUANTILE))))
    return round(steps / vocab.cfg.steps_per_unit, 4)
