"""Infilling: a passage of a piece written again between what comes before and after.

The model reads the piece laid out as it learnt to fill (tokens/fill.py): the music
before the span, the span's length, the music after it, Fill_middle; then it writes the
middle, through a grammar that keeps it decodable and holds it to the span: its
Shifts may not pass the span's end, and Fill_end comes exactly there (`MiddleRules`).
Everything outside the span is written back as read.

A small model trained on a laptop learns only weakly to lead a middle into what
follows it. So each version is drawn from `candidates` middles, with probability in
proportion to how likely the same model, reading the piece in order, finds the music
after the span once that middle has been played (`after_bits`): sample and rerank, a
step of sampling-importance-resampling towards "the middle given both sides". It
needs no training of its own and asks the model what it is best at, continuing.

Spans are bars, numbered from 1 as the file's time signatures lay them out from its
start (a pickup bar written as a bar of its own is bar 1), or seconds of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from musicgen.checkpoint import LoadedModel
from musicgen.config import GenerateConfig, InfillConfig
from musicgen.errors import MusicgenError
from musicgen.generate.controls import ControlPlan
from musicgen.generate.piece import Piece, read_piece
from musicgen.generate.rules import RowRules, follow
from musicgen.generate.songs import Song, decode_rows
from musicgen.tokens.fill import Timeline, rearrange, sides
from musicgen.tokens.space import PAD
from musicgen.tokens.stream import FREE


def check_fills(model: LoadedModel) -> None:
    if model.vocab.fills_an_old_layout:
        raise MusicgenError(
            f"{model.path} was trained to fill with an earlier layout that did not give "
            "the gap's length; train it again with --infill 0.5"
        )
    if not model.vocab.can_fill:
        raise MusicgenError(
            f"{model.path} was not trained for infilling; train a model with --infill 0.5"
        )


@dataclass(frozen=True)
class Span:
    start: int  # steps of the model's clock
    end: int


def span_of(piece: Piece, task: InfillConfig) -> Span:
    """The steps a bar or seconds span covers; one-line errors for a span the piece lacks."""
    if task.unit == "bars":
        lines = piece.score.bar_lines()
        first, last = int(task.start), int(task.end)
        if first < 1 or last < first:
            raise MusicgenError(f"--bars {first}-{last} is empty: give bars FIRST-LAST, from 1")
        if last > len(lines):
            raise MusicgenError(
                f"--bars {first}-{last} is outside the piece, which has {len(lines)} bars"
            )
        a = lines[first - 1]
        b = lines[last] if last < len(lines) else piece.score.end
        label = f"bars {first}-{last}"
    else:
        if not task.end > task.start >= 0:
            raise MusicgenError(f"--seconds {task.start:g}-{task.end:g} is empty")
        if task.start >= piece.score.duration_seconds:
            raise MusicgenError(
                f"--seconds {task.start:g}-{task.end:g} is outside the piece, "
                f"which lasts {piece.score.duration_seconds:.1f} s"
            )
        a, b = (float(q) for q in piece.quarters_at_seconds([task.start, task.end]))
        label = f"seconds {task.start:g}-{task.end:g}"
    start, end = (int(s) for s in piece.steps_of([a, b]))
    if end <= start:
        raise MusicgenError(f"{label} holds no time on the model's clock")
    last_onset = int(piece.line.before[-1])  # EOS comes at the last onset
    if end > last_onset:
        raise MusicgenError(
            f"{label} reaches the end of the piece: infill needs music after the span "
            "(use `musicgen generate --primer` for a new ending)"
        )
    # where the model's Shifts can cut (on a bar line they always can)
    start, end = piece.line.cut(start).step, piece.line.cut(end).step
    if end <= start:
        raise MusicgenError(f"{label} holds no time the model's Shifts can cut")
    return Span(start, end)


class MiddleRules(RowRules):
    """The decode loop's rules while a middle is written: the grammar, continuing from
    the music before the span; Shifts only up to the span's end; Fill_end only there.
    For a model that cannot fill (`reads_ahead` False) reaching the end ends the row."""

    def __init__(
        self, vocab, before: np.ndarray, end: int, batch: int, reads_ahead=True, plan=None
    ):
        # a span from bar 1: the line-up is the piece's; the plan's first bar is the span's
        streams = follow(vocab, before, batch, end_header=True, passage=True)
        super().__init__(vocab, streams, plan)
        self.end = end
        self.fill_end = vocab.fill_id("end") if reads_ahead else None
        self.min_shift = float(vocab.shift_steps.min())
        self.notes: list[list] = [[] for _ in range(batch)]

    def allowed(self, b: int) -> np.ndarray:
        stream = self.streams[b]
        if stream.after == FREE and self.end - stream.step < self.min_shift:
            # the span's end (or as near as the Shifts reach); only a model that reads
            # ahead gets here undone, since reaching the end finishes the others
            row = np.zeros(len(self.vocab), dtype=bool)
            row[self.fill_end if self.fill_end is not None else self.vocab.eos_id] = True
            return row
        row = self.vocab.allowed_within(stream, self.end - stream.step)
        row[self.vocab.eos_id] = False  # the after-part ends the piece, not the middle
        return row

    def take(self, b: int, t: int) -> bool:
        if t == self.fill_end:
            return True
        stream = self.streams[b]
        note = stream.feed(self.vocab.uids[t])
        if note is not None:
            self.notes[b].append(note)
        return (
            self.fill_end is None
            and stream.after == FREE
            and self.end - stream.step < self.min_shift
        )


@dataclass(frozen=True)
class Context:
    """What the model reads before it writes a middle."""

    prompt: np.ndarray  # compact ids, up to Fill_middle (or the music before, continuing)
    before: np.ndarray  # universal ids: all the music before the span
    near_before: np.ndarray  # universal ids: the music on either side the layout holds
    near_after: np.ndarray
    budget: int  # tokens a middle may take, about
    length: int  # tokens of a training row (the model's window and the token it predicts)


def _context(
    line: Timeline, start: int, end: int, max_len: int | None, reads_ahead: bool = True
) -> Context:
    """The span's passage laid out and cropped as the model learnt to fill it (sized by
    the real middle)."""
    vocab = line.vocab
    before, middle, after = line.parts(line.cut(start), line.cut(end))
    body = max(len(line.uids) - line.body, 1)
    per_step = body / max(line.end_step, 1)
    budget = int(len(middle) * 1.25 + per_step * (end - start) * 0.25) + 16
    if max_len is None:  # a model with no window (the n-gram) reads all that came before
        max_len = len(before) + len(after) + len(middle) + 64
    if not reads_ahead:  # a continuation of the music before the span, as much as fits
        keep = max(max_len - len(middle), 16)
        near = before[max(0, len(before) - keep) :]
        return Context(vocab.lookup[near], before, near, after[:0], budget, max_len + 1)
    # training lays out max_len + 1 tokens: the last, Fill_end, is only ever a target
    near_before, near_after = sides(before, middle, after, vocab, end - start, max_len + 1)
    passage = rearrange(near_before, [], near_after, vocab, end - start)
    prompt = passage[:-1]  # up to Fill_middle: the middle is the model's
    return Context(vocab.lookup[prompt], before, near_before, near_after, budget, max_len + 1)


SCORED_AT_ONCE = 32  # rows of `after_bits` per forward pass: -n 256 x 8 candidates stay small


@torch.no_grad()
def after_bits(model: LoadedModel, ctx: Context, middles: list[np.ndarray], device="cpu"):
    """Bits of the music after the span (as much as the layout holds), read in order after
    the music before it and each of `middles` (compact ids, Fill_end left out), by the
    model as a continuation; each row `ctx.length` tokens at most (the music before cut
    from its start) unless a middle and the after-part alone are longer."""
    vocab = model.vocab
    after = vocab.lookup[ctx.near_after]
    rows = []
    for middle in middles:
        keep = min(max(ctx.length - len(middle) - len(after), 0), len(ctx.near_before))
        near = vocab.lookup[ctx.near_before[len(ctx.near_before) - keep :]]
        rows.append(np.concatenate([near, middle, after]).astype(np.int64))
    out = np.zeros(len(rows))
    was_training = model.core.training
    model.core.eval()
    for first in range(0, len(rows), SCORED_AT_ONCE):
        chunk = rows[first : first + SCORED_AT_ONCE]
        x = np.full((len(chunk), max(map(len, chunk))), vocab.pad_id, dtype=np.int64)
        for r, row in enumerate(chunk):
            x[r, : len(row)] = row
        logits, _ = model.core(torch.from_numpy(x).to(device))  # (R, T, V)
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (R, T, V)
        for r, row in enumerate(chunk):
            s = len(row) - len(after)  # the after-part's first token
            if len(after) and s > 0:
                pos = torch.arange(s - 1, len(row) - 1)
                picked = logp[r, pos, torch.from_numpy(row[s:])]
                out[first + r] = -picked.sum().item() / np.log(2)
    model.core.train(was_training)
    return out


def choose(bits: np.ndarray, candidates: int, seed: int) -> list[int]:
    """For each group of `candidates` rows, one of them, drawn with probability in
    proportion to 2^-bits (the rows whose after-part the model finds likeliest, mostly)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for first in range(0, len(bits), candidates):
        group = bits[first : first + candidates]
        weight = 2.0 ** -(group - group.min())
        chosen.append(first + int(rng.choice(len(group), p=weight / weight.sum())))
    return chosen


def fill_middles(
    model: LoadedModel,
    cfg: GenerateConfig,
    line: Timeline,
    start: int,
    end: int,
    device="cpu",
    reads_ahead: bool = True,
    candidates: int = 1,
) -> tuple[list[np.ndarray], list[list], int]:
    """`cfg.num_samples` middles of the piece `line` between steps `start` and `end` (cuts):
    (each middle's compact ids, Fill_end last; its notes; the prompt's length). Each is
    drawn from `candidates` middles by how well the music after the span follows it
    (`choose`). With `reads_ahead` False the model continues the music before the span
    and never sees what follows it: the baseline for a model that cannot fill (the
    n-gram), which takes the first middle it draws."""
    if reads_ahead:
        check_fills(model)
    window = model.model_cfg.max_len if model.model_cfg is not None else None
    ctx = _context(line, start, end, window, reads_ahead)
    K = candidates if reads_ahead else 1
    rows = cfg.num_samples * K  # the candidates of version b are rows b*K .. b*K + K - 1
    plan = ControlPlan.of(cfg, model.vocab) if reads_ahead else None
    rules = MiddleRules(model.vocab, ctx.before, end, rows, reads_ahead, plan)
    # a guard against a model that never reaches the end
    seq = decode_rows(
        model, replace(cfg, num_samples=rows), ctx.prompt, ctx.budget * 4 + 64, rules, device
    )
    middles = [row[len(ctx.prompt) :] for row in seq]
    middles = [m[m != PAD] for m in middles]
    if K == 1:
        return middles, rules.notes, len(ctx.prompt)
    bits = after_bits(model, ctx, [m[:-1] for m in middles], device)  # Fill_end left out
    chosen = choose(bits, K, cfg.seed)
    return [middles[i] for i in chosen], [rules.notes[i] for i in chosen], len(ctx.prompt)


def infill_songs(
    model: LoadedModel, cfg: GenerateConfig, task: InfillConfig, device="cpu", reads_ahead=True
) -> tuple[list[Song], Piece, Span]:
    """Each of `cfg.num_samples` versions of the span as a whole piece (see `fill_middles`
    for `reads_ahead`)."""
    if reads_ahead:
        check_fills(model)
    piece = read_piece(task.file, model.vocab)
    span = span_of(piece, task)
    middles, notes, prompt_len = fill_middles(
        model, cfg, piece.line, span.start, span.end, device, reads_ahead, task.candidates
    )
    kept = piece.score.notes
    onset = piece.steps_of(kept["start"])  # on the model's clock, as the encoder placed them
    outside = (onset < span.start) | (onset >= span.end)
    songs = []
    for ids, played in zip(middles, notes, strict=True):
        score = piece.with_notes(kept[outside], piece.notes_to_score(played))
        new = score.num_notes - int(outside.sum())  # a new note inside a kept one is left out
        songs.append(Song(score, ids, prompt_len, new))
    return songs, piece, span
