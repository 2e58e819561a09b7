"""Hostile and mismatched files around a dataset and a checkpoint, through the CLI.

Each is refused before anything runs: exit 2, one line starting with `error:`, no
checkpoint or log written, no code from inside a file executed. (Pickled code inside
a checkpoint, for `generate`, `evaluate` and `train --resume`, is covered in
tests/test_checkpoint.py.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen.config import EncodingConfig
from musicgen.data.ingest import ingest
from musicgen.tokens.vocab import Vocabulary
from tests.helpers import (
    assert_cli_error,
    assert_ok,
    run_cli,
    write_notes_midi,
)

TRAIN_ARGS = [
    "--model",
    "gru",
    "--hidden",
    32,
    "--layers",
    1,
    "--seq-len",
    64,
    "--batch-size",
    8,
    "--epochs",
    0,
    "--max-steps",
    4,
    "--val-every",
    2,
    "--patience",
    0,
    "--no-progress",
]


class Payload:
    """Unpickling this creates a file: what a hostile array would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(data)), encoding="utf-8")


def rewrite_tokens(ds: Path, change) -> None:
    tokens = np.load(ds / "tokens.npy")
    np.save(ds / "tokens.npy", change(tokens.copy()))


def out_of_vocab(ds: Path) -> None:
    n = len(Vocabulary.load(ds / "vocab.json"))

    def change(t):
        t[len(t) // 2] = n + 5  # same size, same dtype: only the ids tell
        return t

    rewrite_tokens(ds, change)


def smaller_vocab(ds: Path) -> None:
    """A valid vocabulary, but another dataset's: specials and pitches only."""
    Vocabulary(EncodingConfig(time="beats"), []).save(ds / "vocab.json")


def pickled_tokens(ds: Path) -> None:
    arr = np.array([Payload(ds / "PWNED"), 1, 2], dtype=object)
    np.save(ds / "tokens.npy", arr, allow_pickle=True)


def drop(*keys):
    return lambda d: {k: v for k, v in d.items() if k not in keys}


def index(change):
    return lambda ds: edit_json(ds / "index.json", change)


def last_file_longer(d):
    d["files"][-1]["tokens"] += 1000
    return d


def val_split_longer(d):
    d["splits"]["val"][1] += 10
    return d


def offset_negative(d):
    d["files"][0]["offset"] = -3
    return d


# name, damage(ds folder), fragment of the one error line
DATASET_CASES = [
    (
        "vocab-not-json",
        lambda ds: (ds / "vocab.json").write_text("{not json"),
        "cannot read vocabulary",
    ),
    (
        "vocab-a-list",
        lambda ds: (ds / "vocab.json").write_text("[1, 2, 3]"),
        "not a musicgen vocabulary",
    ),
    (
        "vocab-version-0",
        lambda ds: edit_json(ds / "vocab.json", lambda d: {**d, "version": 0}),
        "vocabulary version 0",
    ),
    (
        "vocab-unknown-token",
        lambda ds: edit_json(
            ds / "vocab.json", lambda d: {**d, "tokens": [*d["tokens"], "Banjo_5"]}
        ),
        "tokens its encoding cannot produce",
    ),
    ("vocab-of-another-dataset", smaller_vocab, "does not belong with"),
    # an index that does not record its outputs (as an older one) still meets the ids check
    (
        "vocab-of-another-dataset-old-index",
        lambda ds: (smaller_vocab(ds), index(drop("outputs"))(ds)),
        "has ids outside its vocabulary",
    ),
    ("tokens-outside-vocab", out_of_vocab, "has ids outside its vocabulary"),
    (
        "tokens-cut-short",
        lambda ds: (ds / "tokens.npy").write_bytes((ds / "tokens.npy").read_bytes()[:300]),
        "cannot read",
    ),
    (
        "tokens-floats",
        lambda ds: rewrite_tokens(ds, lambda t: t.astype(np.float32)),
        "not a flat array of token ids",
    ),
    ("tokens-pickled-objects", pickled_tokens, "cannot read"),
    ("index-file-past-tokens", index(last_file_longer), "points past tokens.npy"),
    ("index-negative-offset", index(offset_negative), "points past tokens.npy"),
    ("index-split-past-tokens", index(val_split_longer), "index.json describes"),
    ("index-no-splits", index(drop("splits")), "is damaged"),
    (
        "index-not-json",
        lambda ds: (ds / "index.json").write_text('{"format": "musicgen-dataset",'),
        "cannot read",
    ),
    ("index-a-list", lambda ds: (ds / "index.json").write_text("[]"), "not a musicgen dataset"),
    ("dataset-version-0", index(lambda d: {**d, "version": 0}), "dataset format 0"),
    ("dataset-no-format", index(drop("format", "version", "outputs")), "older musicgen"),
    (
        "foreign-index",
        lambda ds: (ds / "index.json").write_text('{"name": "something else"}'),
        "not a musicgen dataset",
    ),
]


@pytest.fixture
def damaged(dataset, tmp_path, request):
    _, damage, _ = request.param
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    damage(ds)
    return ds


def assert_nothing_ran(ds: Path, run: Path | None = None) -> None:
    assert not (ds / "PWNED").exists(), "code inside a file ran"
    if run is not None and run.exists():
        assert list(run.iterdir()) == [], "training wrote something"


@pytest.mark.parametrize("damaged", DATASET_CASES, ids=[c[0] for c in DATASET_CASES], indirect=True)
def test_train_refuses_a_damaged_dataset(damaged, tmp_path, request):
    fragment = request.node.callspec.params["damaged"][2]
    run = tmp_path / "run"
    assert_cli_error(run_cli("train", "--data", damaged, "--out", run, *TRAIN_ARGS), fragment)
    assert_nothing_ran(damaged, run)


@pytest.mark.parametrize("damaged", DATASET_CASES, ids=[c[0] for c in DATASET_CASES], indirect=True)
def test_evaluate_refuses_a_damaged_dataset(damaged, trained, request):
    fragment = request.node.callspec.params["damaged"][2]
    result = run_cli("evaluate", trained["gru"].best, "--data", damaged)
    assert_cli_error(result, fragment)
    assert result.stdout == ""
    assert_nothing_ran(damaged)


# --- a checkpoint that does not match its dataset, or its own model ------------------------------


@pytest.fixture(scope="module")
def other_dataset(tmp_path_factory) -> Path:
    """A dataset with another vocabulary: one program-40 melody at an unusual tempo."""
    src = tmp_path_factory.mktemp("other-src")
    notes = [(float(i), 1.0, 60 + i % 12) for i in range(200)]
    write_notes_midi(src / "violin.mid", notes, program=40, tempo=200.0)
    out = tmp_path_factory.mktemp("other") / "ds"
    ingest([src], out)
    return out


def test_resume_on_a_dataset_with_another_vocabulary_is_refused(trained, other_dataset, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["gru"].out, run)
    before = {p.name: p.read_bytes() for p in run.glob("*.ckpt")}
    line = assert_cli_error(
        run_cli("train", "--data", other_dataset, "--out", run, "--resume", *TRAIN_ARGS)
    )
    assert "different vocabulary" in line
    assert {p.name: p.read_bytes() for p in run.glob("*.ckpt")} == before


def test_evaluate_on_a_dataset_with_another_vocabulary_is_refused(trained, other_dataset):
    assert_cli_error(
        run_cli("evaluate", trained["gru"].best, "--data", other_dataset), "different vocabulary"
    )


def tamper(src: Path, dst: Path, change) -> Path:
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    change(ckpt["musicgen"])
    torch.save(ckpt, dst)
    return dst


def vocab_tokens(value):
    def change(meta):
        meta["vocab"]["tokens"] = value(meta["vocab"]["tokens"])

    return change


CKPT_CASES = [
    (
        "vocab-tokens-not-a-list",
        vocab_tokens(lambda t: "PAD BOS EOS"),
        "model settings are damaged",
    ),
    ("vocab-unknown-token", vocab_tokens(lambda t: [*t, "Banjo_5"]), "model settings are damaged"),
    ("vocab-version-0", lambda m: m["vocab"].update(version=0), "model settings are damaged"),
    (
        "vocab-fewer-tokens-than-the-model",
        vocab_tokens(lambda t: [x for x in t if not x.startswith("Dur_")]),
        "but the model was built for",
    ),
    ("no-vocab", lambda m: m.pop("vocab"), "model settings are damaged"),
]


@pytest.mark.parametrize(("name", "change", "fragment"), CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_checkpoint_whose_vocabulary_does_not_fit_is_refused(
    trained, dataset, tmp_path, command, name, change, fragment
):
    bad = tamper(trained["gru"].best, tmp_path / "bad.ckpt", change)
    song = tmp_path / "song.mid"
    args = ["--out", song, "--tokens", 8] if command == "generate" else ["--data", dataset]
    result = run_cli(command, bad, *args)
    assert_cli_error(result, fragment, str(bad))
    assert not song.exists() and result.stdout == ""


def test_the_untouched_copy_works(dataset, trained, tmp_path):
    """The damage above is what fails: the same commands on an intact copy succeed."""
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    assert_ok(run_cli("evaluate", trained["gru"].best, "--data", ds, "--no-ngram"))
    bad = tamper(trained["gru"].best, tmp_path / "same.ckpt", lambda m: None)
    assert_ok(run_cli("generate", bad, "--out", tmp_path / "song.mid", "--tokens", 8))
