"""Tiny corpus, dataset and untrained checkpoints for the listen tests (built once per session).

The checkpoints are real musicgen .ckpt files (weights-only dicts with the model
settings and vocabulary), written without training: the comparison page needs
models that load and generate, not good ones.
"""

from __future__ import annotations

import contextlib
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen.config import EncodingConfig, IngestConfig, ModelConfig, to_dict
from musicgen.midi.score import NOTE_DTYPE, Score

MOTIF = [60, 62, 64, 65, 67, 65, 64, 62]


def song(shift: int, bars: int = 8, program: int = 0) -> Score:
    """A melody in quarters over whole-bar chords, 4/4 at 100 qpm, transposed by `shift`."""
    rows = []
    for bar in range(bars):
        for beat in range(4):
            q = bar * 4 + beat
            rows.append((q, 1.0, MOTIF[(q + bar) % len(MOTIF)] + 12 + shift, 80, program, False))
        root = 48 + shift + (0, 5, 7, 0)[bar % 4]
        for p in (root, root + 4, root + 7):
            rows.append((bar * 4, 4.0, p, 64, program, False))
    notes = np.array(rows, dtype=NOTE_DTYPE)
    notes = notes[np.argsort(notes["start"], kind="stable")]
    return Score(notes=notes, tempos=[(0.0, 100.0)], time_signatures=[(0.0, 4, 4)], n_tracks=1)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    from musicgen.midi.write import write_midi

    root = tmp_path_factory.mktemp("listen-corpus")
    for i, shift in enumerate((0, 2, -3, 5, -1, 4, 7, -5)):
        write_midi(song(shift, program=(0, 40)[i % 2]), root / f"song{i}.mid")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_corpus, tmp_path_factory) -> Path:
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.ingest import ingest

    out = tmp_path_factory.mktemp("listen-data") / "ds"
    ingest(
        [tiny_corpus],
        out,
        EncodingConfig(steps_per_quarter=4),
        IngestConfig(val_fraction=0.3, workers=1),
    )
    ds = TokenDataset.open(out)
    assert ds.documents("train") and ds.documents("val"), "the fixture needs both splits"
    return out


def make_checkpoint(
    data_dir: Path, path: Path, name: str, seed: int = 0, fill: bool = False
) -> Path:
    """`fill`: with the seams of infilling in its vocabulary, as `train --infill` makes one."""
    from musicgen.checkpoint import dataset_meta
    from musicgen.data.dataset import TokenDataset
    from musicgen.models.registry import build_core

    vocab = TokenDataset.open(data_dir).vocab
    vocab = vocab.with_fill() if fill else vocab
    cfg = ModelConfig(
        name=name, vocab_size=len(vocab), d_model=16, n_layers=1, n_heads=2, dropout=0.0, max_len=64
    )
    torch.manual_seed(seed)
    core = build_core(cfg)
    meta = {**dataset_meta(vocab, data_dir), "model": to_dict(cfg), "val_bpn": float("nan")}
    state = {f"core.{k}": v for k, v in core.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"musicgen": meta, "state_dict": state}, path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_dataset, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("listen-ckpt")
    return [
        make_checkpoint(tiny_dataset, root / "gru" / "best.ckpt", "gru", 0),
        make_checkpoint(tiny_dataset, root / "transformer" / "best.ckpt", "transformer", 1),
    ]


@contextlib.contextmanager
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is several times faster."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _single_torch_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def plain_page(tiny_checkpoints, tiny_dataset, tmp_path_factory):
    """A non-blind comparison through the library: dataset primer, n-gram, real music, evaluation."""
    from musicgen.config import GenerateConfig
    from musicgen.listen.compare import CompareConfig, run_compare

    out = tmp_path_factory.mktemp("listen-plain") / "page"
    log: list[str] = []
    cfg = CompareConfig(
        out=out,
        data=tiny_dataset,
        primer_bars=2,
        sampling=GenerateConfig(num_samples=2, length=2),
        use_fluidsynth=False,
    )
    with one_thread():
        summary = run_compare(tiny_checkpoints, cfg, echo=log.append)
    return types.SimpleNamespace(out=out, summary=summary, log=log)


@pytest.fixture(scope="session")
def blind_page(tiny_checkpoints, tiny_corpus, tmp_path_factory):
    """A blind comparison through the CLI, primed with a MIDI file."""
    from click.testing import CliRunner

    from musicgen.cli import cli

    out = tmp_path_factory.mktemp("listen-blind") / "page"
    args = [
        "compare",
        *map(str, tiny_checkpoints),
        "--out",
        str(out),
        "--primer",
        str(tiny_corpus / "song1.mid"),
    ]
    args += [
        "--primer-bars",
        "2",
        "--samples",
        "2",
        "--bars",
        "2",
        "--blind",
        "--no-eval",
        "--builtin-synth",
        "--seed",
        "3",
    ]
    with one_thread():
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    return types.SimpleNamespace(out=out, summary=summary, output=result.output)
