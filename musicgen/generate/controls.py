"""The controls a piece is asked for, bar by bar, as the tokens generation forces.

A plan counts bars from the first bar of new music: bar 0 of a new piece, or the
first bar a primer's continuation enters. Each attribute has a level per bar (the
last one given holds to the end) and the piece has a key; at every bar the stream
enters, the rules (rules.py) force that bar's controls in the order the grammar
wants them (the key, then density, polyphony, register, dynamics) and ban every
control token that was not asked for, so a model never draws one of its own.

An asked key also pulls every pitch towards it (`key_pull`): the models learnt the Key
token weakly (in training the notes soon say the key, so the token tells little after
the first bar), and without the pull a piece drifts to the keys its corpus is in. A new
piece that still comes out in the mode asked but on another tonic is then moved to the
key asked (`landing_shift`): the pull and the token settle the mode less often than the
tonic goes astray, and moving a piece keeps every interval the model chose. A key that
`--prior corpus` drew is landed on the same way, unless a register was asked.

`--prior corpus` also draws a new piece's texture (TEXTURE: its density and polyphony)
bar by bar from the training piece its line-up comes from, for the attributes not asked:
a hint, as the drawn key is, left out of guidance. A model trained with controls read
them in most of its windows; with none it writes thinner textures than its corpus has.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from musicgen.analysis.key import estimate_key, key_profile
from musicgen.config import GenerateConfig
from musicgen.config.controls import BAR_CONTROLS, LEVELS, parse_key
from musicgen.errors import MusicgenError
from musicgen.midi.score import Score


@dataclass(frozen=True)
class ControlPlan:
    key: int | None  # tonic + 12 * mode
    # attribute -> level per bar, from 0 (-1: no control that bar); the last holds
    levels: dict[str, tuple[int, ...]]
    key_pull: float = 0.0  # see GenerateConfig.key_pull
    key_guided: bool = True  # False for a key `--prior corpus` drew: a hint, not guided
    # attributes `--prior corpus` drew, bar by bar, from a training piece (its texture):
    # hints, not guided, given for the bars the piece has and then left to the model
    drawn: frozenset[str] = frozenset()

    def drawn_key(self) -> ControlPlan:
        """This plan with its key drawn from the corpus (by `--prior corpus`), not asked."""
        return replace(self, key_guided=False)

    def with_texture(self, texture: dict[str, tuple[int, ...]]) -> ControlPlan:
        """This plan with a texture `--prior corpus` drew for the attributes it does not
        ask for."""
        own = {a: v for a, v in texture.items() if a not in self.levels}
        return replace(self, levels={**self.levels, **own}, drawn=self.drawn | set(own))

    def guided(self, vocab) -> np.ndarray:
        """Bool over compact ids: the control tokens `--guidance` guides on, every level of
        each attribute asked (and every key, for an asked key). A drawn key or texture is
        left in both readings, so it steers as a hint does, unguided."""
        out = np.zeros(len(vocab), dtype=bool)
        for a in self.levels:
            if a not in self.drawn:
                out[[vocab.ctrl_id(a, lvl) for lvl in range(LEVELS)]] = True
        if self.key is not None and self.key_guided:
            out[[vocab.key_id(k) for k in range(24)]] = True
        return out

    @classmethod
    def of(cls, cfg: GenerateConfig, vocab) -> ControlPlan | None:
        """The plan `cfg` asks for, or None; a one-line error for a model that cannot
        follow controls."""
        asked = cfg.asked()
        if not asked:
            return None
        if not vocab.has_controls:
            flags = ", ".join(f"--{name}" for name in asked)
            raise MusicgenError(
                f"{flags}: this model was trained without control tokens; train it again "
                "(musicgen train keeps them unless --controls 0)"
            )
        levels = {
            a: tuple(v - 1 for v in getattr(cfg, a))
            for a in BAR_CONTROLS
            if getattr(cfg, a) is not None
        }
        return cls(parse_key(cfg.key) if cfg.key is not None else None, levels, cfg.key_pull)

    def pitch_bias(self, vocab) -> np.ndarray | None:
        """(V,) logits added to every draw: each pitched note's pull towards the key (the
        log of its pitch class's rating in the key, relative to the tonic's, times
        `key_pull`); None when no key is asked or the pull is off."""
        if self.key is None or self.key_pull <= 0:
            return None
        profile = key_profile(self.key)
        weights = np.log(profile / profile.max())
        pitched = vocab.families == "pitch"
        out = np.zeros(len(vocab), dtype=np.float32)
        classes = vocab.space.value[vocab.uids[pitched]].astype(np.int64) % 12
        out[pitched] = self.key_pull * weights[classes]
        return out

    def tokens(self, vocab, bar: int) -> list[tuple[int, int]]:
        """(place, compact id) of bar `bar`'s controls, in the grammar's order (place 0 the
        key, 1.. the bar controls; the stream's `ctrl_last` counts the same places)."""
        out = []
        if self.key is not None:
            out.append((0, vocab.key_id(self.key)))
        for i, a in enumerate(BAR_CONTROLS):
            if a in self.levels:
                per_bar = self.levels[a]
                if a in self.drawn:  # a drawn texture ends with its piece's bars
                    level = per_bar[bar] if bar < len(per_bar) else -1
                else:
                    level = per_bar[min(bar, len(per_bar) - 1)]
                if level >= 0:
                    out.append((i + 1, vocab.ctrl_id(a, level)))
        return out


def landing_shift(score: Score, key: int) -> int:
    """Semitones that move `score` into `key` (tonic + 12 * mode) as the key measure hears
    it: 0 if it is there already, if it has no pitched notes, if it came out in the other
    mode (moving cannot change a mode), or if neither way keeps every note inside MIDI's
    0 .. 127; else the nearer way round (-6 .. +5), or the other way (up to 11) if the
    nearer would take a note outside."""
    got = estimate_key(score)
    if got is None or got // 12 != key // 12:
        return 0
    near = (key - got + 6) % 12 - 6
    pitches = score.notes["pitch"][~score.notes["drum"]].astype(int)
    for shift in (near, near + 12 if near < 0 else near - 12):
        if 0 <= pitches.min() + shift and pitches.max() + shift <= 127:
            return shift
    return 0


def open_piece(prompt, plan: ControlPlan | None, vocab):
    """A new piece's prompt (compact ids, BOS first) with the plan's first bar's controls
    right after BOS, where the grammar has them (before the line-up)."""
    if plan is None:
        return prompt
    head = np.array([t for _, t in plan.tokens(vocab, 0)], dtype=np.asarray(prompt).dtype)
    return np.concatenate([prompt[:1], head, prompt[1:]])


class PlanFollower:
    """One row's place in a plan: which bar of it the stream is in, and the control the
    stream needs next there, if any."""

    def __init__(self, plan: ControlPlan, vocab, stream, first: int | None = None):
        self.plan, self.vocab = plan, vocab
        # the plan's bar 0: given (a new piece: bar 0), or the bar the stream is in if its
        # controls may still come, else the next one it enters
        self.first = first if first is not None else stream.bar + (0 if stream.bar_open else 1)

    def next(self, stream) -> int | None:
        """The compact id to force now, or None."""
        if not stream.bar_open or stream.bar < self.first:
            return None
        for place, token in self.plan.tokens(self.vocab, stream.bar - self.first):
            if place > stream.ctrl_last:
                return token
        return None
