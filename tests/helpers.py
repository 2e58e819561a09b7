"""Helpers for the end-to-end tests: a tiny ingested dataset and tiny trained checkpoints
(built once per session: the `dataset` and `trained` fixtures in conftest.py call these),
MIDI builders and CLI assertions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner, Result

from musicgen.checkpoint import LoadedModel, dataset_meta
from musicgen.cli import cli
from musicgen.config import MODEL_NAMES, EncodingConfig, IngestConfig, ModelConfig, TrainConfig  # noqa: F401 - MODEL_NAMES for the tests
from musicgen.data.dataset import TokenDataset
from musicgen.data.ingest import ingest
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.midi.write import write_midi
from musicgen.models.registry import build_core
from musicgen.train import TrainResult, train

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "midi"
N_FILES = 12
VAL_FRACTION = 0.25  # the split hashes each path: 2 of the first 12 chorales land in val

MODEL_KW = dict(d_model=32, n_layers=1, n_heads=4, dropout=0.0)
SEQ_LEN = 64
STEPS = 80
TRAIN_KW = dict(
    seq_len=SEQ_LEN,
    batch_size=8,
    epochs=0,
    max_steps=STEPS,
    warmup_steps=2,
    val_every=8,
    patience=0,
    lr=1e-2,
    transpose=2,
    seed=0,
)

_cache: dict = {}

# The models here are tiny: a second intra-op thread only fights other work for the CPU.
torch.set_num_threads(1)


def corpus_files(n: int = N_FILES) -> list[Path]:
    return sorted(CORPUS.glob("*.mid"))[:n]


def build_dataset(tmp_path_factory) -> Path:
    if "dataset" not in _cache:
        out = tmp_path_factory.mktemp("dataset")
        ingest(
            corpus_files(),
            out,
            EncodingConfig(),
            IngestConfig(val_fraction=VAL_FRACTION, workers=1),
        )
        ds = TokenDataset.open(out)
        assert ds.documents("val"), "choose VAL_FRACTION so that some chorales are held out"
        assert ds.documents("train")
        _cache["dataset"] = out
    return _cache["dataset"]


def train_tiny(data: Path, out: Path, name: str = "gru", **overrides) -> TrainResult:
    """A few optimizer steps of a 32-wide, one-layer model."""
    model_kw = {k: overrides.pop(k) for k in list(overrides) if k in MODEL_KW}
    cfg = TrainConfig(**{**TRAIN_KW, **overrides})
    return train(
        data,
        out,
        ModelConfig(name=name, **{**MODEL_KW, **model_kw}),
        cfg,
        progress_bar=False,
        logs=False,
    )


class TrainedModels:
    """name -> TrainResult of one tiny run, trained the first time it is asked for."""

    def __init__(self, tmp_path_factory, data: Path):
        self.tmp_path_factory, self.data = tmp_path_factory, data
        self.runs: dict[str, TrainResult] = _cache.setdefault("trained", {})

    def __getitem__(self, name: str) -> TrainResult:
        if name not in self.runs:
            out = self.tmp_path_factory.mktemp(f"run-{name}")
            result = train_tiny(self.data, out, name)
            assert result.best is not None and result.best.exists(), f"{name}: no best.ckpt"
            self.runs[name] = result
        return self.runs[name]


# --- helpers --------------------------------------------------------------------------------


def untrained_model(name: str, data: Path, seed: int = 0) -> LoadedModel:
    """A freshly initialised core with the dataset's vocabulary, as `load_model` returns one."""
    vocab = TokenDataset.open(data).vocab
    cfg = ModelConfig(name=name, vocab_size=len(vocab), max_len=SEQ_LEN, **MODEL_KW)
    torch.manual_seed(seed)
    core = build_core(cfg).eval()
    return LoadedModel(core, cfg, vocab, dataset_meta(vocab, data), data / "untrained")


def uniform_bits(model: LoadedModel) -> float:
    return math.log2(len(model.vocab))


def run_cli(*args) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def assert_cli_error(result: Result, *fragments: str) -> str:
    """Exit code 2, exactly one line on stderr starting with `error:`, no traceback."""
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_notes_midi(
    path: Path,
    notes: list[tuple],
    *,
    program: int = 0,
    tempo: float | None = None,
    velocity: int = 80,
) -> Path:
    """A MIDI file of (start quarter, duration quarters, pitch[, program]) notes."""
    arr = np.zeros(len(notes), dtype=NOTE_DTYPE)
    for i, (start, dur, pitch, *prog) in enumerate(notes):
        arr[i] = (start, dur, pitch, velocity, prog[0] if prog else program, False)
    score = Score(arr, tempos=[(0.0, tempo)] if tempo else [], time_signatures=[(0.0, 4, 4)])
    return write_midi(score, path)


@dataclass
class OddMidi:
    """A MIDI file whose encoding holds tokens the tiny dataset's vocabulary lacks."""

    path: Path
    unknown: int  # tokens of its encoding (EOS excluded) missing from the vocabulary
    missing: list[str]


def odd_midi(path: Path, model: LoadedModel) -> OddMidi:
    """Piano notes with a tempo and a note length the chorales never use, and one violin note
    (program 40, an instrument the model has never seen)."""
    from musicgen.midi.read import read_score
    from musicgen.tokens.encoding import encode
    from musicgen.tokens.space import token_space

    vocab, enc = model.vocab, model.encoding
    space = token_space(enc)
    res = enc.steps_per_quarter
    dur = next(int(v) for v in reversed(space.dur.values) if f"Dur_{v}" not in vocab.index)
    tempo = next(float(q) for q in space.tempo.values if f"Tempo_{q:g}" not in vocab.index)
    notes = [
        (0.0, 1.0, 60),
        (1.0, 1.0, 64),
        (2.0, dur / res, 67),
        (2.0 + dur / res, 1.0, 72),
        (3.0 + dur / res, 1.0, 76, 40),
    ]
    write_notes_midi(path, notes, tempo=tempo)
    ids = encode(read_score(path), enc).ids[:-1]
    strings = space.strings()
    missing = [strings[u] for u in ids.tolist() if vocab.lookup[u] < 0]
    assert {"Inst_40", "Prog_40", f"Dur_{dur}", f"Tempo_{tempo:g}"} <= set(missing), missing
    return OddMidi(path, len(missing), missing)


def score_of(rows) -> Score:
    """A 4/4 score at 120 bpm from rows of (start, duration, pitch[, program]), in quarters."""
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    for i, r in enumerate(rows):
        notes[i] = (r[0], r[1], r[2], 80, r[3] if len(r) > 3 else 0, False)
    return Score(
        notes=notes[np.argsort(notes["start"], kind="stable")],
        tempos=[(0.0, 120.0)],
        time_signatures=[(0.0, 4, 4)],
    )
