"""Songs from a checkpoint: prompt, length targets, batch decoding, MIDI + sidecar.

Length targets (`bars`, `seconds`, `notes`, `tokens`) count the newly generated
music, not the primer. End-of-piece is banned until the target is reached, and
a note still sounding at the target is cut there, so every piece ends cleanly
at the length asked for.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from musicgen import __version__
from musicgen.checkpoint import LoadedModel
from musicgen.config import FORM_BIAS, LENGTH_UNITS, GenerateConfig  # noqa: F401 - re-exported
from musicgen.errors import MusicgenError
from musicgen.fsutil import atomic_write_group
from musicgen.generate.form import BarCopier, FormPrior
from musicgen.generate.primer import Primer, instrument_name, start_of_piece
from musicgen.generate.repetition import RepeatMemory
from musicgen.generate.sampling import generate as decode_loop
from musicgen.midi.score import Score
from musicgen.midi.write import score_to_midi_bytes
from musicgen.tokens.encoding import decode, quarters_per_step
from musicgen.tokens.space import PAD


@dataclass
class Song:
    score: Score
    ids: np.ndarray  # compact ids, primer included
    primer_tokens: int
    new_notes: int
    path: Path | None = None
    notes: dict = field(default_factory=dict)


class LengthTracker:
    """Follows every row of a batch through the stream interpreter: the grammar mask
    for the next token, and how much new music each row holds (the length targets).

    It is the decode loop's `rules`: `mask()` before each draw, `update(new)` after.
    """

    def __init__(
        self,
        vocab,
        cfg: GenerateConfig,
        prompt: np.ndarray,
        batch: int,
        *,
        header_fixed: bool = False,
        form: FormPrior | None = None,
    ):
        self.vocab, self.cfg = vocab, cfg
        self.streams = []
        for _ in range(batch):
            stream = vocab.stream()
            stream.feed_all(vocab.to_universal(prompt))
            if header_fixed:
                stream.end_header()
            self.streams.append(stream)
        first = self.streams[0]
        self.start_step, self.start_seconds, self.start_notes = (
            first.step,
            first.seconds,
            first.notes,
        )
        self.bar_len = np.full(batch, first.bar_steps, dtype=np.int64)
        self.tokens = np.zeros(batch, dtype=np.int64)
        self.done = np.zeros(batch, dtype=bool)
        self.end_step = np.full(
            batch, -1, dtype=np.int64
        )  # where a time target cut the piece (absolute steps)
        self._eos = vocab.eos_id
        self.memories: list[RepeatMemory] = []
        self.copiers: list[BarCopier] = []
        if cfg.form_bias and form is None:
            raise MusicgenError(
                "--form-bias needs the form the model learnt from its corpus, and this "
                "checkpoint has none (it was trained before musicgen learnt form): train again"
            )
        if cfg.repeat_bias or cfg.form_bias:
            memory = RepeatMemory(cfg.repeat_context, cfg.repeat_bias)
            music = np.isin(vocab.families, ("shift", "prog", "vel", "pitch", "dur", "drum"))
            settings = np.isin(vocab.families, ("prog", "vel"))
            copier = BarCopier(form, cfg.form_bias, music, settings) if cfg.form_bias else None
            replay = vocab.stream()  # the prompt's bar positions, token by token
            for t in np.asarray(prompt).tolist():
                position = replay.bar_position
                replay.feed(vocab.uids[t])
                memory.push(t, replay.bar_position)
                if copier is not None:
                    copier.push(t, position, replay)
            if cfg.repeat_bias:
                self.memories = [copy.deepcopy(memory) for _ in range(batch)]
            if copier is not None:
                self.copiers = [copy.deepcopy(copier) for _ in range(batch)]
                for b, c in enumerate(self.copiers):  # each row its own form from here
                    c.start(np.random.default_rng([cfg.seed, b]))

    @property
    def notes(self) -> np.ndarray:
        return np.array([s.notes - self.start_notes for s in self.streams], dtype=np.int64)

    def mask(self) -> torch.Tensor:
        rows = []
        for stream, done in zip(self.streams, self.done, strict=True):
            if done:
                rows.append(np.ones(len(self.vocab), dtype=bool))  # its draw is replaced by padding
                continue
            row = self.vocab.allowed(stream).copy()
            row[self._eos] = False  # the length target, not the model, ends the piece
            rows.append(row)
        return torch.from_numpy(np.stack(rows))

    def bias(self) -> torch.Tensor | None:
        """(B, V): the pulls of repetition-aware sampling (towards what followed this
        context before) and of form-aware sampling (towards the bar that comes back)."""
        if not self.memories and not self.copiers:
            return None
        out = torch.zeros(len(self.streams), len(self.vocab))
        for b, memory in enumerate(self.memories):
            token = memory.suggestion()
            if token is not None and not self.done[b]:
                out[b, token] += memory.bias
        for b, copier in enumerate(self.copiers):
            token = copier.suggestion(lambda t, b=b: self.vocab.allowed(self.streams[b])[t])
            if token is not None and not self.done[b]:
                out[b, token] += copier.bias
        return out

    def update(self, new: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        for b, t in enumerate(new.cpu().tolist()):
            if self.done[b]:
                continue
            stream = self.streams[b]
            step0, sec0 = stream.step, stream.seconds
            sec_per_step = _seconds_per_step(stream)
            position = stream.bar_position
            stream.feed(self.vocab.uids[t])
            if self.memories:
                self.memories[b].push(t, stream.bar_position)
            if self.copiers:
                self.copiers[b].push(t, position, stream)
            self.tokens[b] += 1
            if (
                stream.step == self.start_step
                and stream.time_signatures
                and stream.time_signatures[-1][0] == stream.step
            ):
                self.bar_len[b] = stream.bar_steps  # a metre chosen before any time passes
            new_steps = stream.step - self.start_step
            if cfg.unit == "tokens":
                reached = self.tokens[b] >= cfg.length
            elif cfg.unit == "notes":
                reached = stream.notes - self.start_notes >= cfg.length
            elif cfg.unit == "bars":
                target = int(round(cfg.length * self.bar_len[b]))
                reached = new_steps >= target
                if reached:
                    self.end_step[b] = min(stream.step, self.start_step + target)
            else:
                reached = stream.seconds - self.start_seconds >= cfg.length
                if reached:
                    # whole steps that still fit: the piece ends at or before the target, never after
                    room = max(cfg.length - (sec0 - self.start_seconds), 0.0)
                    self.end_step[b] = step0 + min(
                        stream.step - step0, int(np.floor(room / sec_per_step + 1e-9))
                    )
            self.done[b] |= bool(reached)
        return torch.from_numpy(self.done.copy())

    def max_tokens(self) -> int:
        cfg = self.cfg
        if cfg.unit == "tokens":
            return int(cfg.length)
        if cfg.unit == "notes":
            return int(cfg.length) * 8 + 64
        return 200_000  # time targets stop through the tracker; this only guards a runaway model


def _seconds_per_step(stream) -> float:
    return (
        60.0 / (stream.qpm * stream.steps_per_unit) if stream.beats else 1.0 / stream.steps_per_unit
    )


def decode_rows(
    model: LoadedModel, cfg: GenerateConfig, prompt: np.ndarray, max_tokens: int, rules, device
) -> np.ndarray:
    """`cfg.num_samples` rows continuing `prompt` (compact ids) under `rules`, with `cfg`'s
    sampling settings and seed: (B, T) compact ids, the prompt first, PAD after a row ends."""
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    x = torch.from_numpy(np.tile(prompt, (cfg.num_samples, 1))).to(device)
    seq = decode_loop(
        model.core,
        x,
        max_tokens,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        generator=generator,
        rules=rules,
        pad_id=PAD,
        use_cache=cfg.use_cache,
        context_len=model.model_cfg.max_len if model.model_cfg is not None else None,
    )
    return seq.cpu().numpy()


def settle(cfg: GenerateConfig, model: LoadedModel, passage: bool = False) -> GenerateConfig:
    """`cfg` with what it leaves to the model decided: the form bias, FORM_BIAS by default
    for a model that learnt its corpus's form and off for one that did not (an older
    checkpoint; asked for explicitly, a model without a form is an error later). A
    passage (infill, accompany) takes none: the span's ends or the kept part hold the form."""
    if passage:
        return replace(cfg, form_bias=0.0, repeat_bias=0.0)
    if cfg.form_bias is not None:
        return cfg
    return replace(cfg, form_bias=FORM_BIAS if model.meta.get("form") is not None else 0.0)


def generate_songs(
    model: LoadedModel, cfg: GenerateConfig, device: str | torch.device = "cpu"
) -> tuple[list[Song], Primer | None]:
    """`cfg.num_samples` songs (see `settle` for what `cfg` may leave to the model)."""
    cfg = settle(cfg, model)
    prompt, primer, header_fixed = start_of_piece(model.vocab, cfg)
    B = cfg.num_samples
    tracker = LengthTracker(
        model.vocab,
        cfg,
        prompt,
        B,
        header_fixed=header_fixed,
        form=form_of(model) if cfg.form_bias else None,
    )
    seq = decode_rows(model, cfg, prompt, tracker.max_tokens(), tracker, device)
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


def output_paths(out: Path, n: int) -> list[Path]:
    if out.suffix.lower() not in (".mid", ".midi"):
        out = out.with_name(
            out.name + ".mid"
        )  # "-o song" means song.mid, never a file its sidecar could clobber
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


def write_songs(
    songs: list[Song],
    out: Path,
    model: LoadedModel,
    cfg: GenerateConfig,
    primer: Primer | None,
    *,
    task: dict | None = None,
    command: str | None = None,
) -> list[Path]:
    """Every MIDI file with its sidecar, or nothing: a full disk never leaves a new song
    beside an old sidecar (or half the samples of a batch) behind. `task` and `command`
    describe a song that rewrites part of a file (infill, accompany)."""
    cfg = settle(cfg, model, passage=task is not None)  # the settings used, as numbers
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
            "primer_notes_left_out": primer.left_out if primer else 0,
            "regenerate": command or regenerate_command(model.path, out, cfg),
        }
        if task is not None:
            sidecar["task"] = task
        files.append((path, score_to_midi_bytes(song.score)))
        files.append(
            (
                path.with_suffix(".json"),
                (json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
            )
        )
    for path, _ in files:
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_group(dict(files))  # a song and its sidecar land together or not at all
    for song, path in zip(songs, paths, strict=True):
        song.path = path
    return paths


def regenerate_command(ckpt: Path, out: Path, cfg: GenerateConfig) -> str:
    parts = [
        "musicgen",
        "generate",
        str(ckpt),
        "--out",
        str(out),
        "--num-samples",
        str(cfg.num_samples),
    ]
    parts += sampling_args(cfg) + [f"--{cfg.unit}", f"{cfg.length:g}"]
    if cfg.primer:
        parts += ["--primer", cfg.primer]
    if cfg.primer_bars:
        parts += ["--primer-bars", str(cfg.primer_bars)]
    if cfg.tempo is not None:
        parts += ["--tempo", f"{cfg.tempo:g}"]
    if cfg.program is not None:
        parts += ["--program", str(cfg.program)]
    if cfg.instruments:
        parts += ["--instruments", ",".join(map(instrument_name, cfg.instruments))]
    parts += ["--repeat-bias", f"{cfg.repeat_bias:g}", "--form-bias", f"{cfg.form_bias:g}"]
    if not cfg.use_cache:
        parts.append("--no-cache")
    return " ".join(parts)


def rewrite_command(
    verb: str, ckpt: Path, file: Path, task_args: list[str], out: Path, cfg: GenerateConfig
) -> str:
    """The command line that writes the same infills or accompaniments again."""
    head = ["musicgen", verb, str(ckpt), str(file), *task_args, "--out", str(out)]
    return shlex.join(head + ["-n", str(cfg.num_samples), *sampling_args(cfg)])


def sampling_args(cfg: GenerateConfig) -> list[str]:
    """The sampling options of a command line that draws the same songs again."""
    return [
        "--temperature",
        f"{cfg.temperature:g}",
        "--top-k",
        str(cfg.top_k),
        "--top-p",
        f"{cfg.top_p:g}",
        "--seed",
        str(cfg.seed),
    ]
