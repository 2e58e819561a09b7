"""Songs from a checkpoint: a new piece, or a primer continued, to a length target
(length.py), decoded as one batch; and the settings a task leaves to the model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from musicgen.analysis.form import FormPrior
from musicgen.checkpoint import LoadedModel
from musicgen.config import FORM_BIAS, LENGTH_UNITS, GenerateConfig  # noqa: F401 - re-exported
from musicgen.config.controls import TEXTURE, key_name, parse_key
from musicgen.config.generation import DRAWN_KEY_PULL, guidance_of
from musicgen.errors import MusicgenError
from musicgen.generate import decoder
from musicgen.generate.controls import ControlPlan, landing_shift, open_piece
from musicgen.generate.length import Cue, LengthTracker
from musicgen.generate.primer import Primer, start_of_piece
from musicgen.midi.score import Score
from musicgen.tokens.encoding import decode, quarters_per_step
from musicgen.tokens.space import PAD


@dataclass
class Song:
    score: Score
    ids: np.ndarray  # compact ids, primer included (as drawn: a moved piece's are not moved)
    primer_tokens: int
    new_notes: int
    path: Path | None = None
    notes: dict = field(default_factory=dict)
    drawn: dict = field(default_factory=dict)  # what a new piece took from the corpus
    moved: int = 0  # semitones it was moved into its key, asked or drawn (controls.landing_shift)


def decode_rows(
    model: LoadedModel, cfg: GenerateConfig, prompt: np.ndarray, max_tokens: int, rules, device
) -> np.ndarray:
    """`cfg.num_samples` rows continuing `prompt` (compact ids; or (B, T), one a row) under
    `rules`, with `cfg`'s sampling settings and seed: (B, T) compact ids, the prompt first,
    PAD after a row ends."""
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    guided = rules.guided() if rules is not None else None  # what --guidance guides on
    rows = prompt if np.ndim(prompt) == 2 else np.tile(prompt, (cfg.num_samples, 1))
    x = torch.from_numpy(rows).to(device)
    seq = decoder.decode(
        model.core,
        x,
        max_tokens,
        sampling=decoder.Sampling(cfg.temperature, cfg.top_k, cfg.top_p),
        generator=generator,
        rules=rules,
        pad_id=PAD,
        use_cache=cfg.use_cache,
        context_len=model.model_cfg.max_len if model.model_cfg is not None else None,
        guidance=guidance_of(cfg) if guided is not None else 0.0,
        unguided=torch.from_numpy(guided) if guided is not None else None,
    )
    return seq.cpu().numpy()


def settle(cfg: GenerateConfig, model: LoadedModel, passage: bool = False) -> GenerateConfig:
    """`cfg` with what it leaves to the model decided: the form bias, FORM_BIAS by default
    for a model that learnt its corpus's form and off for one that did not (an older
    checkpoint; asked for explicitly, a model without a form is an error later); the loop
    and silence guards' limits, the corpus's longest loops and silences as `train`
    measured them (off for a model that did not); the guidance on the controls asked for.
    A passage (infill, accompany) takes no pull and no guard, the guidance only: the span's
    ends or the kept part hold the form."""
    # the guidance used: none where nothing is asked (a key --prior corpus draws is a hint)
    cfg = replace(cfg, guidance=guidance_of(cfg) if cfg.asked() else 0.0)
    if passage:
        return replace(cfg, form_bias=0.0, repeat_bias=0.0, loop_limit=0, silence_limit=0.0)
    profile = model.meta.get("corpus") or {}
    if cfg.loop_limit is None:
        cfg = replace(cfg, loop_limit=int(profile.get("longest_loop", 0)))
    if cfg.silence_limit is None:
        cfg = replace(cfg, silence_limit=float(profile.get("longest_silence", 0.0)))
    if cfg.form_bias is not None:
        return cfg
    return replace(cfg, form_bias=FORM_BIAS if model.meta.get("form") is not None else 0.0)


def generate_songs(
    model: LoadedModel, cfg: GenerateConfig, device: str | torch.device = "cpu"
) -> tuple[list[Song], Primer | None]:
    """`cfg.num_samples` songs (see `settle` for what `cfg` may leave to the model, and
    `drawn` for what a new piece takes from the corpus). Songs that drew the same line-up
    and key are decoded together as one batch."""
    cfg = settle(cfg, model)
    groups: dict[tuple, list[int]] = {}
    picks = drawn(model, cfg)
    for row, pick in enumerate(picks):
        # rows of a batch share a prompt's length: a drawn texture opens each with its
        # first bar's controls, so rows with one and rows without are decoded apart
        groups.setdefault((pick.lineup, pick.key, pick.texture is None), []).append(row)
    songs: list[Song | None] = [None] * cfg.num_samples
    primer = None
    for g, ((lineup, key, _), rows) in enumerate(groups.items()):
        part = replace(
            cfg,
            num_samples=len(rows),
            instruments=lineup if lineup is not None else cfg.instruments,
            key=key if key is not None else cfg.key,
            key_pull=min(cfg.key_pull, DRAWN_KEY_PULL) if key is not None else cfg.key_pull,
            seed=cfg.seed if len(groups) == 1 else cfg.seed * 1000 + g,
        )
        band = [picks[row].cues for row in rows] if cfg.entry_guard else None
        textures = [picks[row].texture for row in rows]
        made, primer = _decode_songs(
            model, part, device, key_drawn=key is not None, cues=band, textures=textures
        )
        for row, song in zip(rows, made, strict=True):
            song.drawn = {"instruments": lineup, "key": key}
            if picks[row].texture is not None:  # levels 1..5, as the options count; - none
                song.drawn["texture"] = {
                    a: "".join("-" if v < 0 else str(v + 1) for v in levels)
                    for a, levels in picks[row].texture.items()
                }
            # a new piece into its key, asked or drawn (so the keys come out as often as
            # the corpus has them); a primer's continuation keeps the primer's, and a piece
            # asked for a register stays where it is (a move shifts every bar's register)
            if part.key is not None and cfg.key_move and cfg.primer is None and not cfg.register:
                song.moved = landing_shift(song.score, parse_key(part.key))
                song.score = song.score.transposed(song.moved)
            songs[row] = song
    return songs, primer


class Pick(NamedTuple):
    """What a new piece takes from the corpus with `--prior corpus` (None for what is not
    drawn: asked for, a primer's, or what a model did not measure)."""

    lineup: tuple | None  # a training piece's line-up
    key: str | None  # a key, as often as the corpus has it
    cues: dict[int, Cue] | None  # when its instruments came in and rested (`band_cues`)
    texture: dict | None  # the same piece's texture, bar by bar (`texture_of`)


def drawn(model: LoadedModel, cfg: GenerateConfig) -> list[Pick]:
    """Per song, what it draws from the corpus (see `Pick`)."""
    profile = model.meta.get("corpus") or {}
    lineups = [tuple(int(p) for p in t.split()) for t in profile.get("lineups") or []]
    entries = profile.get("entries") or [None] * len(lineups)
    rests = profile.get("rests") or [None] * len(lineups)  # measured since 2026-12-07
    textures = profile.get("textures") or [None] * len(lineups)  # since 2026-12-07 too
    counts = np.asarray(profile.get("keys") or [0] * 24, dtype=float)
    new_piece = cfg.prior == "corpus" and cfg.primer is None
    draw_lineup = new_piece and cfg.instruments is None and bool(lineups)
    draw_texture = (  # the drawn line-up's piece's: none beside an asked line-up
        draw_lineup
        and cfg.drawn_texture
        and model.vocab.has_controls
        and any(t is not None for t in textures)
        and any(getattr(cfg, a) is None for a in TEXTURE)
    )
    draw_key = new_piece and cfg.key is None and model.vocab.has_controls and counts.sum() > 0
    rng = np.random.default_rng([cfg.seed, 23])
    picks = []
    for _ in range(cfg.num_samples):
        i = int(rng.integers(len(lineups))) if draw_lineup else None
        key = key_name(int(rng.choice(24, p=counts / counts.sum()))) if draw_key else None
        if i is None:
            picks.append(Pick(None, key, None, None))
        else:
            cues = band_cues(lineups[i], entries[i], rests[i], model)
            texture = texture_of(textures[i], cfg) if draw_texture else None
            picks.append(Pick(lineups[i], key, cues, texture))
    return picks


def texture_of(texture: dict[str, str] | None, cfg: GenerateConfig) -> dict | None:
    """{attribute: level per bar, from 0 (-1: none that bar)} of a drawn piece's texture,
    for the attributes of TEXTURE that `cfg` does not ask for (None: the piece has none)."""
    if texture is None:
        return None
    return {
        a: tuple(-1 if c == "-" else int(c) for c in texture[a])
        for a in TEXTURE
        if getattr(cfg, a) is None and a in texture
    }


def band_cues(
    lineup: tuple, entries: list | None, rests: list | None, model: LoadedModel
) -> dict[int, Cue] | None:
    """{program: its Cue} of a drawn band, in steps: by when it must come in and the
    longest it may then rest, as its instruments did in the piece it was drawn from (None:
    not measured, or a single instrument, whose silences are the silence guard's). An
    instrument that never played there has no cue; without rests (a model trained before
    musicgen measured them) only the entries are kept."""
    if entries is None or len(entries) != len(lineup) or len(lineup) < 2:
        return None
    if rests is None or len(rests) != len(lineup):
        rests = [None] * len(lineup)
    unit = model.vocab.cfg.steps_per_unit

    def steps(t: float | None) -> int | None:
        return None if t is None else int(round(t * unit))

    return {
        p: Cue(steps(t), steps(r))
        for p, t, r in zip(lineup, entries, rests, strict=True)
        if t is not None
    }


def _decode_songs(
    model: LoadedModel,
    cfg: GenerateConfig,
    device,
    key_drawn: bool = False,
    cues: list[dict[int, Cue] | None] | None = None,
    textures: list[dict | None] | None = None,
) -> tuple[list[Song], Primer | None]:
    """`cfg.num_samples` songs from one prompt, decoded as one batch (`key_drawn`: its key
    is one `--prior corpus` drew; `cues`: each row's band, for the entry guard, see
    `band_cues`; `textures`: each row's drawn texture, all or none, see `texture_of`)."""
    plan = ControlPlan.of(cfg, model.vocab)
    if plan is not None and key_drawn:
        plan = plan.drawn_key()
    B = cfg.num_samples
    plans = [plan] * B  # a row's own when it drew a texture
    if textures is not None and all(textures):
        plans = [(plan or ControlPlan(None, {})).with_texture(t) for t in textures]
    prompt, primer, header_fixed = start_of_piece(model.vocab, cfg)
    if primer is None:  # a new piece: each row opens with its plan's first bar
        rows = np.stack([open_piece(prompt, p, model.vocab) for p in plans])
    else:
        rows = np.tile(prompt, (B, 1))
    prompt = rows[0]  # the rows differ in control tokens only, which no rule reads
    tracker = LengthTracker(
        model.vocab,
        cfg,
        prompt,
        B,
        header_fixed=header_fixed,
        form=form_of(model) if cfg.form_bias else None,
        plan=plans,
        first_bar=0 if primer is None else None,
        cues=cues,
    )
    seq = decode_rows(model, cfg, rows, tracker.max_tokens(), tracker, device)
    songs = []
    per_step = quarters_per_step(model.encoding)
    new_notes = tracker.notes
    for row in range(B):
        ids = seq[row]
        ids = ids[(ids != PAD)]
        score = tokens_to_score(ids, model.vocab)
        if tracker.end_step[row] >= 0:
            score = score.until(tracker.end_step[row] * per_step)
        if cfg.tempo is not None:
            score.tempos = [(0.0, float(cfg.tempo))]
        if cfg.program is not None:
            score.notes["program"] = cfg.program
            score.notes["drum"] = False
        songs.append(Song(score, ids, len(prompt), int(new_notes[row])))
    return songs, primer


def form_of(model: LoadedModel) -> FormPrior | None:
    """The form the model learnt from its corpus (`train` stores it), if it has one."""
    form = model.meta.get("form")
    if form is None:
        return None
    try:
        return FormPrior.from_dict(form)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MusicgenError(f"{model.path}: the form it learnt is damaged ({exc})") from None


def tokens_to_score(ids: np.ndarray, vocab) -> Score:
    score, _ = decode(vocab.to_universal(ids), vocab.cfg)
    return score
