"""Songs from a checkpoint: prompt, length targets, batch decoding, MIDI + sidecar.

Length targets (`bars`, `seconds`, `notes`, `tokens`) count the newly generated
music, not the primer. End-of-piece is banned until the target is reached, and
a note still sounding at the target is cut there, so every piece ends cleanly
at the length asked for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicgen import __version__
from musicgen.checkpoint import LoadedModel
from musicgen.config import LENGTH_UNITS, GenerateConfig  # noqa: F401 - re-exported
from musicgen.errors import MusicgenError, ReadError
from musicgen.fsutil import atomic_write_group
from musicgen.midi.read import read_score
from musicgen.midi.score import Score
from musicgen.midi.write import score_to_midi_bytes
from musicgen.sampling import generate as decode_loop
from musicgen.tokens.encoding import decode, encode
from musicgen.tokens.space import BOS, EOS, PAD


@dataclass
class Song:
    score: Score
    ids: np.ndarray  # compact ids, primer included
    primer_tokens: int
    new_notes: int
    path: Path | None = None
    notes: dict = field(default_factory=dict)


@dataclass
class Primer:
    ids: np.ndarray
    unknown: int
    notes: int


def load_primer(path: str | Path, model: LoadedModel, bars: int | None) -> Primer:
    try:
        score = read_score(path)
    except ReadError as exc:
        raise MusicgenError(f"primer {path}: {exc}") from None
    if bars is not None:
        lines = score.bar_lines()
        if len(lines) > bars:
            score = score.until(lines[bars])
    enc = encode(score, model.encoding)
    if not len(enc.notes):
        raise MusicgenError(f"primer {path} has no notes the model's encoding keeps")
    ids, unknown = model.vocab.from_universal(enc.ids[:-1])  # drop EOS: the piece goes on
    # dropping a token can orphan a Pitch/Dur pair; keep only grammatical notes
    ids = _repair(ids, model)
    if not (model.vocab.families[ids] == "dur").any():
        raise MusicgenError(f"primer {path}: none of its {len(enc.notes)} notes is in the model's vocabulary")
    return Primer(ids, unknown, len(enc.notes))


def _repair(ids: np.ndarray, model: LoadedModel) -> np.ndarray:
    """Whole notes only, after unknown tokens were dropped; the timing of the rest is kept.

    A Pitch whose Dur was dropped loses its note, a Dur whose Pitch was dropped is
    dropped; Prog/Vel changes wait for the next whole note (they set state for the
    notes after them); Shift, Tempo and TimeSig tokens always stay, so the notes
    after a dropped one keep their place in time.
    """
    fam = model.vocab.families
    out = [int(ids[0])]  # BOS
    prog = vel = pitch = None
    for t in ids[1:].tolist():
        f = fam[t]
        if f == "prog":
            prog, pitch = t, None
        elif f == "vel":
            vel, pitch = t, None
        elif f == "pitch":
            pitch = t  # a Pitch still waiting for its Dur is dropped
        elif f == "dur":
            if pitch is not None:
                out += [x for x in (prog, vel) if x is not None] + [pitch, t]
                prog = vel = pitch = None
        else:
            pitch = None
            if t not in (PAD, BOS, EOS):
                out.append(t)
    return np.array(out, dtype=np.int64)


class LengthTracker:
    """Per-row running totals, updated by the decode loop's stop callback."""

    def __init__(self, model: LoadedModel, cfg: GenerateConfig, prompt: np.ndarray, batch: int):
        v, enc = model.vocab, model.encoding
        self.res = enc.steps_per_quarter
        # what each vocabulary id does to time, from the token space (not from token strings)
        self.shift, self.qpm, self.bar = (table[v.uids] for table in v.space.time_tables())
        self.is_dur = v.families == "dur"
        self.cfg = cfg
        p = prompt.tolist()
        tempos = [self.qpm[t] for t in p if self.qpm[t] > 0]
        bars = [self.bar[t] for t in p if self.bar[t] > 0]
        self.cur_qpm = np.full(batch, cfg.tempo or (tempos[-1] if tempos else 120.0))
        self.bar_len = np.full(batch, bars[-1] if bars else 4 * self.res)
        self.steps = np.zeros(batch, dtype=np.int64)
        self.seconds = np.zeros(batch)
        self.notes = np.zeros(batch, dtype=np.int64)
        self.tokens = np.zeros(batch, dtype=np.int64)
        self.done = np.zeros(batch, dtype=bool)
        self.end_step = np.full(batch, -1, dtype=np.int64)  # where a time target cut the piece

    def target_steps(self) -> np.ndarray:
        if self.cfg.unit == "bars":
            return np.round(self.cfg.length * self.bar_len).astype(np.int64)
        return np.full(len(self.steps), np.iinfo(np.int64).max)

    def __call__(self, new: torch.Tensor, step: int) -> torch.Tensor:
        t = new.cpu().numpy()
        live = ~self.done
        self.tokens += live
        if self.cfg.tempo is None:
            q = self.qpm[t]
            self.cur_qpm = np.where(live & (q > 0), q, self.cur_qpm)
        b = self.bar[t]
        early = live & (b > 0) & (self.steps == 0)  # a metre chosen before any time passes
        self.bar_len = np.where(early, b, self.bar_len)
        sh = np.where(live, self.shift[t], 0)
        prev_steps = self.steps.copy()
        self.steps += sh
        self.seconds += sh / self.res * 60.0 / self.cur_qpm
        self.notes += live & self.is_dur[t]
        cfg = self.cfg
        if cfg.unit == "tokens":
            reached = self.tokens >= cfg.length
        elif cfg.unit == "notes":
            reached = self.notes >= cfg.length
        elif cfg.unit == "bars":
            target = self.target_steps()
            reached = self.steps >= target
            self.end_step = np.where(live & reached, prev_steps + np.minimum(sh, target - prev_steps), self.end_step)
        else:
            sec_per_step = 60.0 / (self.cur_qpm * self.res)
            before = self.seconds - sh * sec_per_step
            reached = self.seconds >= cfg.length
            # whole steps that still fit: the piece ends at or before the target, never after
            needed = np.floor(np.maximum(cfg.length - before, 0) / sec_per_step + 1e-9).astype(np.int64)
            self.end_step = np.where(live & reached, prev_steps + np.minimum(sh, needed), self.end_step)
        self.done |= live & reached
        return torch.from_numpy(self.done.copy())

    def max_tokens(self) -> int:
        cfg = self.cfg
        if cfg.unit == "tokens":
            return int(cfg.length)
        if cfg.unit == "notes":
            return int(cfg.length) * 8 + 64
        return 200_000  # time targets stop through the tracker; this only guards a runaway model


def generate_songs(model: LoadedModel, cfg: GenerateConfig, device: str | torch.device = "cpu") -> tuple[list[Song], Primer | None]:
    primer = load_primer(cfg.primer, model, cfg.primer_bars) if cfg.primer else None
    prompt = primer.ids if primer else np.array([BOS], dtype=np.int64)
    B = cfg.num_samples
    tracker = LengthTracker(model, cfg, prompt, B)
    allowed = torch.from_numpy(model.vocab.allowed_next()).to(device)
    allowed[:, EOS] = False  # the length target, not the model, ends the piece
    allowed[EOS, PAD] = True
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    x = torch.from_numpy(np.tile(prompt, (B, 1))).to(device)
    seq = decode_loop(
        model.core,
        x,
        tracker.max_tokens(),
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        generator=generator,
        allowed_next=allowed,
        stop=tracker,
        pad_id=PAD,
        use_cache=cfg.use_cache,
        context_len=model.model_cfg.max_len,
    ).cpu().numpy()
    songs = []
    for row in range(B):
        ids = seq[row]
        ids = ids[(ids != PAD)]
        score = tokens_to_score(ids, model)
        res = model.encoding.steps_per_quarter
        end_step = tracker.end_step[row]
        if end_step >= 0:
            score = score.until((end_step + _primer_steps(prompt, tracker)) / res)
        if cfg.tempo is not None:
            score.tempos = [(0.0, float(cfg.tempo))]
        if cfg.program is not None:
            score.notes["program"] = cfg.program
            score.notes["drum"] = False
        songs.append(Song(score, ids, len(prompt), int(tracker.notes[row])))
    return songs, primer


def _primer_steps(prompt: np.ndarray, tracker: LengthTracker) -> int:
    return int(tracker.shift[prompt].sum())


def tokens_to_score(ids: np.ndarray, model: LoadedModel) -> Score:
    score, _ = decode(model.vocab.to_universal(ids), model.encoding)
    return score


def output_paths(out: Path, n: int) -> list[Path]:
    if out.suffix.lower() not in (".mid", ".midi"):
        out = out.with_name(out.name + ".mid")  # "-o song" means song.mid, never a file its sidecar could clobber
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i:03d}{out.suffix or '.mid'}") for i in range(1, n + 1)]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.iterdir()):
            if p.is_file():
                h.update(p.read_bytes())
    else:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def write_songs(songs: list[Song], out: Path, model: LoadedModel, cfg: GenerateConfig, primer: Primer | None) -> list[Path]:
    """Every MIDI file with its sidecar, or nothing: a full disk never leaves a new song
    beside an old sidecar (or half the samples of a batch) behind."""
    paths = output_paths(out, len(songs))
    ckpt_hash = file_sha256(model.path)
    files: list[tuple[Path, bytes]] = []
    for i, (song, path) in enumerate(zip(songs, paths, strict=True)):
        sidecar = {
            "format": "musicgen-song",
            "musicgen_version": __version__,
            "checkpoint": str(model.path),
            "checkpoint_sha256": ckpt_hash,
            "model": model.model_cfg.name,
            "sample_index": i,
            "settings": asdict(cfg),
            "notes": song.score.num_notes,
            "new_notes": song.new_notes,
            "seconds": round(song.score.duration_seconds, 3),
            "tokens": len(song.ids),
            "primer_tokens": song.primer_tokens,
            "primer_unknown_tokens": primer.unknown if primer else 0,
            "regenerate": regenerate_command(model.path, out, cfg),
        }
        files.append((path, score_to_midi_bytes(song.score)))
        files.append((path.with_suffix(".json"), (json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8")))
    for path, _ in files:
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_group(dict(files))  # a song and its sidecar land together or not at all
    for song, path in zip(songs, paths, strict=True):
        song.path = path
    return paths


def regenerate_command(ckpt: Path, out: Path, cfg: GenerateConfig) -> str:
    parts = ["musicgen", "generate", str(ckpt), "--out", str(out), "--num-samples", str(cfg.num_samples)]
    parts += ["--temperature", f"{cfg.temperature:g}", "--top-k", str(cfg.top_k), "--top-p", f"{cfg.top_p:g}"]
    parts += ["--seed", str(cfg.seed), f"--{cfg.unit}", f"{cfg.length:g}"]
    if cfg.primer:
        parts += ["--primer", cfg.primer]
    if cfg.primer_bars:
        parts += ["--primer-bars", str(cfg.primer_bars)]
    if cfg.tempo is not None:
        parts += ["--tempo", f"{cfg.tempo:g}"]
    if cfg.program is not None:
        parts += ["--program", str(cfg.program)]
    if not cfg.use_cache:
        parts.append("--no-cache")
    return " ".join(parts)


def load_sidecar(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
