"""What a task writes: each song as a MIDI file with its JSON sidecar (the settings as
numbers, the checkpoint's hash, and the command that draws the same song again)."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict
from pathlib import Path

from musicgen import __version__
from musicgen.checkpoint import LoadedModel
from musicgen.config import CONTROL_OPTIONS, PASSAGE_SAMPLING, GenerateConfig, command_args
from musicgen.fsutil import atomic_write_group
from musicgen.generate.primer import Primer
from musicgen.generate.songs import Song, settle
from musicgen.midi.write import score_to_midi_bytes


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
        if song.drawn and any(v is not None for v in song.drawn.values()):
            sidecar["drawn"] = song.drawn  # what the song took from the corpus (--prior corpus)
        if song.moved:
            sidecar["moved_semitones"] = song.moved  # into its key, asked or drawn (--key-move)
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
    """The command line that draws the same songs again: every setting of `cfg` that
    is an option of `musicgen generate`, as its field declares it."""
    return shlex.join(["musicgen", "generate", str(ckpt), "--out", str(out), *command_args(cfg)])


def rewrite_command(
    verb: str, ckpt: Path, file: Path, task_args: list[str], out: Path, cfg: GenerateConfig
) -> str:
    """The command line that writes the same infills or accompaniments again."""
    head = ["musicgen", verb, str(ckpt), str(file), *task_args, "--out", str(out)]
    return shlex.join(
        head + command_args(cfg, only=("num_samples", *PASSAGE_SAMPLING, *CONTROL_OPTIONS))
    )
