"""Control tokens in training windows: where each bar's controls go, what they say, and
which of them a window keeps.

Every training piece is measured once (musicgen/analysis: each bar's density,
polyphony, register and dynamics, and the piece's key) and walked once through the
stream interpreter to find where each bar begins in its tokens (`bar_entries`). The
levels are cut at the quantiles of the training bars (`edges`), so a level means the
same thing across the corpus: Density_1 is its sparsest fifth of bars.

The controls are inserted into each window after transposition (the key and the
register move with the pitches) and each window keeps a random part of them: none at
all in a share of windows, otherwise each control on its own with even odds, so every
control is optional and a prompt without any reads as the corpus does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.analysis.bars import ATTRIBUTES, bar_features, levels, quantile_edges
from musicgen.analysis.key import estimate_key
from musicgen.config.controls import TEXTURE
from musicgen.tokens.controls import BAR_CONTROLS, LEVELS, key_of, key_value
from musicgen.tokens.decoding import decode
from musicgen.tokens.stream import HEADER, START

assert ATTRIBUTES == BAR_CONTROLS  # one list of names, measured and tokenised alike

KEEP_EACH = 0.5  # the odds that a window which carries controls keeps each one


def bar_entries(uids: np.ndarray, vocab) -> tuple[np.ndarray, np.ndarray]:
    """(positions, bars): the token index before which each bar's controls go (right after
    BOS; after the Shift that enters a bar) and the bar it enters, counted as the stream
    counts bars (as Score.bar_lines lays them out)."""
    stream = vocab.stream()
    positions, bars = [], []
    for i, uid in enumerate(np.asarray(uids).tolist()):
        phase, bar = stream.phase, stream.bar
        stream.feed(uid)
        if phase == START and stream.phase == HEADER:  # BOS: the first bar's go right after it
            positions.append(i + 1)
            bars.append(0)
        if stream.bar > bar and stream.bar_open:  # a Shift entered a new bar
            positions.append(i + 1)
            bars.append(stream.bar)
    return np.asarray(positions, dtype=np.int64), np.asarray(bars, dtype=np.int64)


@dataclass
class PieceMeasures:
    """One piece's control entries: where (token index in the piece) and what each bar
    measures, as `bar_features` measures it; and the piece's key (-1: none)."""

    positions: np.ndarray  # (E,)
    values: np.ndarray  # (E, len(BAR_CONTROLS)), nan where the bar has nothing to measure
    key: int
    bars: np.ndarray  # (E,) the bar each entry enters


def measure_piece(doc: np.ndarray, vocab) -> PieceMeasures:
    uids = vocab.to_universal(doc)
    score, _ = decode(uids, vocab.cfg)
    feats = bar_features(score)
    table = np.stack([feats[a] for a in BAR_CONTROLS], axis=1)  # (bars, 4)
    positions, bars = bar_entries(uids, vocab)
    inside = bars < len(table)
    positions, bars = positions[inside], bars[inside]
    values = table[bars]
    filled = values[:, 0] > 0  # bars without a note onset get no controls
    key = estimate_key(score)
    return PieceMeasures(
        positions[filled], values[filled], -1 if key is None else key, bars[filled]
    )


class BarControls:
    """The control tokens of a training split's pieces (see the module docstring)."""

    def __init__(self, docs: list[np.ndarray], vocab, share: float, edges: dict | None = None):
        self.vocab, self.share = vocab, share
        self.pieces = [measure_piece(d, vocab) for d in docs]
        every = np.concatenate([p.values for p in self.pieces]) if self.pieces else np.zeros((0, 4))
        # the corpus's own levels, unless given (a fine-tune may keep its base's)
        self.edges = edges or {
            a: quantile_edges(every[:, i], LEVELS).tolist() for i, a in enumerate(BAR_CONTROLS)
        }
        self._ctrl = np.array(
            [[vocab.ctrl_id(a, lvl) for lvl in range(LEVELS)] for a in BAR_CONTROLS]
        )  # (4, LEVELS) compact ids
        self._key = np.array([vocab.key_id(k) for k in range(24)])

    def kept(self, rng: np.random.Generator) -> np.ndarray:
        """(5,) bool: which controls a window keeps (the key, then BAR_CONTROLS)."""
        if rng.random() >= self.share:
            return np.zeros(1 + len(BAR_CONTROLS), dtype=bool)
        return rng.random(1 + len(BAR_CONTROLS)) < KEEP_EACH

    def tokens(self, k: int, e: int, shift: int, kept: np.ndarray) -> list[int]:
        """Compact ids of entry `e` of piece `k`, the piece moved by `shift` semitones."""
        piece = self.pieces[k]
        out = []
        if kept[0] and piece.key >= 0:
            tonic, mode = key_of(piece.key)
            out.append(int(self._key[key_value(tonic + shift, mode)]))
        values = piece.values[e].copy()
        values[BAR_CONTROLS.index("register")] += shift
        for i, a in enumerate(BAR_CONTROLS):
            if kept[i + 1]:
                level = int(levels(values[i : i + 1], np.asarray(self.edges[a]))[0])
                if level >= 0:
                    out.append(int(self._ctrl[i, level]))
        return out

    def insert(
        self, window: np.ndarray, k: int, first: int, shift: int, kept: np.ndarray
    ) -> np.ndarray:
        """`window`: tokens `first`.. of piece `k` (moved by `shift`), with the controls of
        the bars entered inside it (none before its first token)."""
        piece = self.pieces[k]
        if not kept.any() or not len(piece.positions):
            return window
        lo, hi = np.searchsorted(piece.positions, [first, first + len(window)])
        if lo == hi:
            return window
        parts, at = [], 0
        for e in range(lo, hi):
            cut = int(piece.positions[e]) - first
            parts += [window[at:cut], np.asarray(self.tokens(k, e, shift, kept), dtype=np.int64)]
            at = cut
        parts.append(window[at:])
        return np.concatenate(parts)

    def window(
        self, window: np.ndarray, offset: int, starts: np.ndarray, shifts: np.ndarray, rng
    ) -> np.ndarray:
        """A window of a split's tokens from `offset` (its pieces begin at `starts`, moved by
        `shifts`), with the controls it keeps, cut back to its length."""
        kept = self.kept(rng)
        if not kept.any():
            return window
        first = int(np.searchsorted(starts, offset, side="right")) - 1
        parts, at = [], 0
        for k in range(max(first, 0), len(starts)):
            begin = int(starts[k]) - offset
            if begin >= len(window):
                break
            end = int(starts[k + 1]) - offset if k + 1 < len(starts) else len(window)
            a, b = max(begin, 0), min(end, len(window))
            parts.append(self.insert(window[a:b], k, a - begin, int(shifts[k]), kept))
            at = b
        parts.append(window[at:])
        return np.concatenate(parts)[: len(window)]

    def piece(self, doc: np.ndarray, k: int, shift: int, rng) -> np.ndarray:
        """A whole piece with the controls it keeps (one draw for the whole piece)."""
        return self.insert(np.asarray(doc, dtype=np.int64), k, 0, shift, self.kept(rng))

    def texture(self, k: int, bars: int) -> dict[str, str] | None:
        """Piece `k`'s texture for `--prior corpus`: per attribute of TEXTURE, its level in
        each of its first `bars` bars, one character a bar ("0" the lowest level, "-" a
        bar without notes, which training gives no control either); the first bar takes
        the first level the piece has, so every drawn piece opens with one. None for a
        piece without a measured bar."""
        piece = self.pieces[k]
        inside = piece.bars < bars
        if not inside.any():
            return None
        out = {}
        for a in TEXTURE:
            i = BAR_CONTROLS.index(a)
            found = levels(piece.values[inside, i], np.asarray(self.edges[a]))
            per_bar = np.full(int(piece.bars[inside].max()) + 1, -1)
            per_bar[piece.bars[inside]] = found
            if per_bar.max() < 0:
                return None
            if per_bar[0] < 0:
                per_bar[0] = per_bar[per_bar >= 0][0]
            out[a] = "".join("-" if v < 0 else str(int(v)) for v in per_bar)
        return out

    def to_dict(self) -> dict:
        """What a checkpoint keeps: the levels' cut points, in each attribute's units."""
        return {"levels": LEVELS, "edges": self.edges}
