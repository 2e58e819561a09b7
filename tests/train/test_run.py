"""Training end to end on a tiny dataset: loss, checkpoints, resume, YAML config, CLI, DDP."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch
import yaml

import musicgen
from musicgen.checkpoint import load_model
from musicgen.config import EncodingConfig, ModelConfig, TrainConfig, from_dict, to_dict
from musicgen.data.datamodule import EvalStreams, TrainPieces
from musicgen.data.dataset import TokenDataset
from musicgen.errors import MusicgenError
from musicgen.evaluate import evaluate
from musicgen.models.lm import MusicLM
from musicgen.train import train
from tests.helpers import (
    MODEL_KW,
    MODEL_NAMES,
    SEQ_LEN,
    STEPS,
    TRAIN_KW,
    assert_cli_error,
    assert_ok,
    run_cli,
    train_tiny,
    untrained_model,
)

BPN_LINE = re.compile(
    r"^gru: (\d+) steps in [\d.]+ min, best validation (\d+\.\d+) bits/note$", re.M
)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_loss_goes_down(trained, dataset):
    run = trained["gru"]
    before = evaluate(untrained_model("gru", dataset), ngram=False)
    after = evaluate(load_model(run.best), ngram=False)
    assert after.tokens == before.tokens > 0
    assert after.bits_per_token < before.bits_per_token - 1.0, (
        before.bits_per_token,
        after.bits_per_token,
    )
    # the figure training reports is the one `evaluate` measures on the same chunks
    meta = load(run.best)["musicgen"]
    assert meta["val_bpt"] == pytest.approx(after.bits_per_token, rel=1e-4)
    assert meta["val_bpn"] == pytest.approx(after.bits_per_note, rel=1e-4)
    assert run.best_val_bpn == pytest.approx(meta["val_bpn"])


def test_checkpoints_hold_everything_needed_to_rebuild(trained, dataset):
    run = trained["gru"]
    assert run.best == run.out / "best.ckpt" and run.best.is_file()
    assert run.last == run.out / "last.ckpt" and run.last.is_file()
    assert run.steps == STEPS
    # the dataset's tokens, the mark of a piece training moved from its own key, the controls
    vocab = TokenDataset.open(dataset).vocab.with_moved().with_controls()
    assert TrainConfig(**TRAIN_KW).transpose > 0 and "Start_moved" in vocab.tokens
    assert TrainConfig(**TRAIN_KW).controls > 0 and vocab.tokens[-1] == "Dynamics_5"
    for path in (run.best, run.last):
        ckpt = load(path)  # weights_only=True: plain containers and tensors only
        meta = ckpt["musicgen"]
        model = from_dict(ModelConfig, meta["model"])
        assert model == ModelConfig(name="gru", vocab_size=len(vocab), max_len=SEQ_LEN, **MODEL_KW)
        assert meta["vocab"]["tokens"] == vocab.tokens
        assert meta["encoding"] == to_dict(EncodingConfig(time="beats"))  # as ingestion decided
        assert from_dict(TrainConfig, meta["train"]) == TrainConfig(
            **TRAIN_KW, carry_state=True
        )  # a GRU carries its state
        assert meta["versions"]["musicgen"] == musicgen.__version__
        assert meta["versions"]["torch"] == str(torch.__version__)
        assert meta["versions"]["lightning"] == lightning.__version__
        assert set(meta["versions"]) >= {"musicgen", "torch", "lightning", "python"}
        assert meta["note_ids"] == vocab.note_ids.tolist()
        assert Path(meta["data"]) == dataset.resolve()
        assert math.isfinite(meta["val_bpn"])
        assert meta["world_size"] == 1
    assert load(run.last)["global_step"] == load(run.last)["musicgen"]["global_step"] == STEPS


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_load_model_rebuilds_the_trained_core(trained, dataset, name):
    ckpt = load(trained[name].best)
    meta = ckpt["musicgen"]
    lm = MusicLM(
        from_dict(ModelConfig, meta["model"]),
        from_dict(TrainConfig, meta["train"]),
        tuple(meta["note_ids"]),
        meta,
    )
    lm.load_state_dict(ckpt["state_dict"])
    lm.eval()
    loaded = load_model(trained[name].best)
    assert loaded.model_cfg.name == name and not loaded.core.training
    x = torch.as_tensor(
        TokenDataset.open(dataset).split_tokens("val")[: 2 * SEQ_LEN].astype("int64")
    ).view(2, SEQ_LEN)
    with torch.no_grad():
        expected, _ = lm(x)
        got, _ = loaded.core(x)
    assert torch.equal(got, expected)


def test_resume_continues_step_count_and_optimizer(dataset, tmp_path):
    out = tmp_path / "run"
    first = train_tiny(dataset, out, max_steps=4, val_every=2)
    assert first.steps == 4
    saved = load(out / "last.ckpt")
    assert saved["global_step"] == 4
    weights_at_4 = saved["state_dict"]["core.emb.weight"].clone()

    second = train(
        dataset,
        out,
        ModelConfig(name="gru", **MODEL_KW),
        TrainConfig(**{**TRAIN_KW, "max_steps": 8, "val_every": 2}),
        resume=True,
        progress_bar=False,
        logs=False,
    )
    assert second.steps == 8  # continued to 8, not 4 + 8
    ckpt = load(out / "last.ckpt")
    assert ckpt["global_step"] == ckpt["musicgen"]["global_step"] == 8
    # AdamW counts its own steps: 8 means the moments of the first 4 steps were restored
    steps = {float(s["step"]) for s in ckpt["optimizer_states"][0]["state"].values()}
    assert steps == {8.0}
    assert not torch.equal(ckpt["state_dict"]["core.emb.weight"], weights_at_4)


def test_last_checkpoint_holds_the_final_step_between_validations(dataset, tmp_path):
    result = train_tiny(dataset, tmp_path / "run", max_steps=3, val_every=2)
    assert result.steps == 3
    assert load(result.last)["global_step"] == 3
    assert load(result.best)["global_step"] == 2


def test_validation_interval_longer_than_an_epoch(dataset, tmp_path):
    result = train_tiny(dataset, tmp_path / "run", max_steps=8, val_every=4, steps_per_epoch=3)
    assert result.steps == 8
    assert load(result.best)["global_step"] in (4, 8)  # validated across epoch boundaries
    assert math.isfinite(result.best_val_bpn)
    with pytest.raises(
        ValueError, match="val_every must be positive"
    ):  # the config refuses it, before any training
        TrainConfig(val_every=0)
    bad = run_cli("train", "--data", dataset, "--out", tmp_path / "never", "--val-every", "0")
    assert bad.exit_code == 2 and "error: val_every must be positive" in bad.stderr


def test_resume_refuses_another_model_or_nothing(dataset, trained, tmp_path):
    run = trained["gru"]
    with pytest.raises(MusicgenError, match="holds a 'gru' model"):
        train(
            dataset,
            run.out,
            ModelConfig(name="transformer", **MODEL_KW),
            TrainConfig(**TRAIN_KW),
            resume=True,
            logs=False,
        )
    with pytest.raises(MusicgenError, match="nothing to resume"):
        train(
            dataset,
            tmp_path / "empty",
            ModelConfig(name="gru", **MODEL_KW),
            TrainConfig(**TRAIN_KW),
            resume=True,
            logs=False,
        )


def test_resume_refuses_a_run_from_before_moved_pieces_were_marked(dataset, trained, tmp_path):
    import shutil

    import torch

    out = tmp_path / "old"
    shutil.copytree(trained["gru"].out, out)
    ckpt = torch.load(out / "last.ckpt", weights_only=False)  # our own file, made by the fixture
    tokens = ckpt["musicgen"]["vocab"]["tokens"]
    assert "Start_moved" in tokens
    ckpt["musicgen"]["vocab"]["tokens"] = [t for t in tokens if t != "Start_moved"]
    torch.save(ckpt, out / "last.ckpt")
    with pytest.raises(MusicgenError, match="without marking the pieces it transposes"):
        train(
            dataset,
            out,
            ModelConfig(name="gru", **MODEL_KW),
            TrainConfig(**TRAIN_KW),
            resume=True,
            logs=False,
        )


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_cli_train_yaml_sets_defaults_flags_win_and_reports_bits_per_note(dataset, tmp_path):
    config = write_yaml(
        tmp_path / "train.yaml",
        {
            "data": str(dataset),  # --data: stored as data_dir
            "model": "gru",  # --model: stored as model_name
            "hidden": 16,  # --hidden: stored as d_model; overridden below
            "layers": 1,
            "seq-len": 32,
            "batch_size": 4,
            "max-steps": 4,
            "epochs": 0,
            "val-every": 2,
            "warmup": 1,
            "lr": 0.005,
            "patience": 0,
            "progress": False,
        },
    )
    out = tmp_path / "run"
    result = run_cli("train", "--config", config, "--out", out, "--hidden", 32)
    assert_ok(result)
    m = BPN_LINE.search(result.stdout)
    assert m, result.stdout
    assert int(m.group(1)) == 4
    meta = load(out / "best.ckpt")["musicgen"]
    assert float(m.group(2)) == pytest.approx(meta["val_bpn"], abs=5e-4)
    assert f"best: {out / 'best.ckpt'}" in result.stdout
    assert f"last: {out / 'last.ckpt'}" in result.stdout
    assert meta["model"]["d_model"] == 32  # the flag beat the file
    assert meta["model"]["n_layers"] == 1
    assert (
        meta["train"]["lr"] == 0.005
        and meta["train"]["seq_len"] == 32
        and meta["train"]["max_steps"] == 4
    )
    assert meta["train"]["batch_size"] == 4 and meta["train"]["warmup_steps"] == 1


@pytest.mark.parametrize(
    "content, fragment",
    [
        ({"hiden": 32}, "unknown option 'hiden'"),
        ({"config": "other.yaml"}, "unknown option 'config'"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("model: [unclosed\n", "cannot read"),
    ],
)
def test_cli_train_bad_yaml_exits_2(dataset, tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    if isinstance(content, dict):
        write_yaml(path, content)
    else:
        path.write_text(content, encoding="utf-8")
    result = run_cli("train", "--config", path, "--data", dataset, "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_cli_train_errors_are_one_line(dataset, tmp_path):
    result = run_cli("train", "--data", dataset, "--out", tmp_path / "run", "--resume")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: nothing to resume")
    assert len(result.stderr.strip().splitlines()) == 1


def test_importing_the_main_module_does_not_run_the_cli():
    """Spawned processes (ddp_spawn, DataLoader workers on macOS) re-import the main module."""
    import importlib

    module = importlib.import_module("musicgen.__main__")  # would parse pytest's argv and exit
    assert callable(module.main)


@pytest.mark.slow
def test_ddp_two_processes_via_python_dash_m(dataset, tmp_path):
    """Lightning's launcher re-runs `python -m musicgen ...` for the second rank."""
    docs = TokenDataset.open(dataset).documents("val")
    # a validation set that two ranks cannot split evenly: padding must not count twice
    seq_len = next(n for n in range(32, 64) if len(EvalStreams(docs, n, 0, 4)) % 2)
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "musicgen",
        "train",
        "--data",
        str(dataset),
        "--out",
        str(out),
        "--model",
        "gru",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--seq-len",
        str(seq_len),
        "--batch-size",
        "4",
        "--max-steps",
        "4",
        "--epochs",
        "0",
        "--val-every",
        "2",
        "--warmup",
        "1",
        "--patience",
        "0",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--accelerator",
        "cpu",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert len(BPN_LINE.findall(proc.stdout)) == 1, proc.stdout  # one report, not one per process
    best = out / "best.ckpt"
    assert best.is_file() and (out / "last.ckpt").is_file()
    ckpt = load(best)
    assert ckpt["musicgen"]["world_size"] == 2, "the second process never joined"
    assert load(out / "last.ckpt")["global_step"] == 4
    # the validation figure of two ranks equals a single-process evaluation of the same weights
    model = load_model(best)
    rep = evaluate(model, ngram=False)
    assert ckpt["musicgen"]["val_bpt"] == pytest.approx(rep.bits_per_token, rel=1e-4)
    assert dataclasses.asdict(model.model_cfg)["max_len"] == seq_len


def test_a_second_run_into_a_busy_folder_fails_clearly_and_stale_temps_are_swept(dataset, tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    stale = out / ".last.ckpt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli(
            "train", "--data", str(dataset), "--out", str(out), "--max-steps", "2", "--no-progress"
        )
        assert_cli_error(result, "another training run is writing")
        assert stale.exists()  # nothing was touched while the other run held the folder
    train_tiny(dataset, out, "gru", max_steps=2)
    assert not stale.exists()
    assert (out / "last.ckpt").exists()


def test_a_time_budget_alone_is_not_cut_short_by_the_epoch_default(dataset, tmp_path):
    out = tmp_path / "timed"
    result = run_cli(
        "train",
        "--data",
        str(dataset),
        "--out",
        str(out),
        "--max-time",
        "0.01",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--seq-len",
        "32",
        "--batch-size",
        "4",
        "--steps-per-epoch",
        "1",
        "--no-progress",
    )
    assert_ok(result)
    meta = torch.load(out / "last.ckpt", weights_only=True)["musicgen"]
    assert meta["train"]["epochs"] == 0 and meta["train"]["max_time"] == 0.01


TINY_CLI = [
    "--model",
    "gru",
    "--hidden",
    16,
    "--layers",
    1,
    "--seq-len",
    32,
    "--batch-size",
    4,
    "--max-steps",
    2,
    "--epochs",
    0,
    "--val-every",
    2,
    "--warmup",
    1,
    "--patience",
    0,
    "--no-progress",
]


def test_best_and_last_are_named_the_way_out_was_given(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("train", "--data", dataset, "--out", "run", *TINY_CLI)
    assert_ok(result)
    assert "\nbest: run/best.ckpt\nlast: run/last.ckpt\n" in result.stdout
    assert "warning" not in result.stdout  # the fixture dataset holds files out


def test_training_without_validation_files_says_its_scores_are_not_held_out(tmp_path):
    from musicgen.config import IngestConfig
    from musicgen.data.ingest import ingest
    from tests.helpers import corpus_files

    data = tmp_path / "ds"
    ingest(corpus_files(3), data, ing_cfg=IngestConfig(val_fraction=0.0, workers=1))
    result = run_cli("train", "--data", data, "--out", tmp_path / "run", *TINY_CLI)
    assert_ok(result)
    assert result.stdout.rstrip().splitlines()[-1] == (
        f"warning: {data} has no validation files, so validation used the first training piece and "
        "its scores are not held out; ingest with a larger --val-fraction"
    )
    assert train_tiny(data, tmp_path / "lib", max_steps=2, val_every=2).val_is_held_out is False


def test_ctrl_c_saves_reports_and_exits_130(dataset, tmp_path):
    """SIGINT mid-run: last.ckpt is saved, the summary is printed, the exit code is 130."""
    import signal
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "musicgen", "train", "--data", str(dataset), "--out", str(out)]
    args += [str(a) for a in TINY_CLI]
    args[args.index("--max-steps") + 1] = "100000"
    # a SIGINT disposition the test process inherited or set (ignored) would pass to the
    # child, and Python would then install no KeyboardInterrupt: start it as a shell does
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (out / "best.ckpt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # some steps past the first validation
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert f"interrupted: saved {out / 'last.ckpt'}; continue with --resume" in stdout
    assert re.search(
        r"^gru: interrupted after \d+ steps in [\d.]+ min, best validation \d+\.\d+ bits/note$",
        stdout,
        re.M,
    ), stdout
    assert f"last: {out / 'last.ckpt'}  (continue with --resume)" in stdout
    assert "Traceback" not in stderr
    assert load(out / "last.ckpt")["global_step"] > 0


def test_resume_mid_epoch_continues_where_it_stopped(dataset, tmp_path, monkeypatch):
    """Stopped mid-epoch and resumed, a run sees exactly the windows an unbroken run sees:
    the rest of the epoch, not its first windows again."""
    seen: list[tuple[int, int]] = []
    real = TrainPieces.rows

    def spy(self, i, lanes):
        seen.append((self.epoch, i))
        return real(self, i, lanes)

    monkeypatch.setattr(TrainPieces, "rows", spy)  # the GRU trains on whole pieces
    cfg = {**TRAIN_KW, "steps_per_epoch": 4, "batch_size": 2, "val_every": 3}
    model = ModelConfig(name="gru", **MODEL_KW)

    train(
        dataset,
        tmp_path / "whole",
        model,
        TrainConfig(**{**cfg, "max_steps": 10}),
        progress_bar=False,
        logs=False,
    )
    whole, seen[:] = list(seen), []
    train(
        dataset,
        tmp_path / "broken",
        model,
        TrainConfig(**{**cfg, "max_steps": 6}),
        progress_bar=False,
        logs=False,
    )
    train(
        dataset,
        tmp_path / "broken",
        model,
        TrainConfig(**{**cfg, "max_steps": 10}),
        resume=True,
        progress_bar=False,
        logs=False,
    )
    assert len(whole) == 10  # one item per step: a batch of whole-piece windows
    assert seen == whole


def test_sizing_by_budget_takes_the_largest_size_that_still_trains_long_enough(
    dataset, monkeypatch
):
    import musicgen.train.sizing as S

    seconds = {192: 0.05, 256: 0.1, 320: 0.2, 384: 0.5}  # per step, by width

    timed = []

    def step_time(m, t, tokens, device, **kw):  # the transformer's in proportion to its batch
        if m.name == "transformer":
            timed.append((m.d_model, t.seq_len, t.batch_size))
            return 0.1 * t.batch_size * t.seq_len / S.TRANSFORMER_BATCH_TOKENS
        return seconds.get(m.d_model, 10.0)

    monkeypatch.setattr(S, "step_time", step_time)
    cfg = TrainConfig(max_time=5.0)  # 300 s: 1,500 steps at 0.2 s, 600 at 0.5 s
    sizing = S.size_for_budget(dataset, ModelConfig(name="gru"), cfg, torch.device("cpu"))
    assert (sizing.model.d_model, sizing.expected_steps) == (320, 1500)
    assert sizing.train.seq_len == S.RECURRENT_WINDOW
    tiny = S.size_for_budget(
        dataset, ModelConfig(name="gru"), TrainConfig(max_time=0.01), torch.device("cpu")
    )
    assert tiny.model.d_model == 192  # nothing fits: the smallest
    t = S.size_for_budget(dataset, ModelConfig(name="transformer"), cfg, torch.device("cpu"))
    assert (
        t.train.seq_len in (256, 512, 1024, 2048)
        and t.train.batch_size * t.train.seq_len == S.TRANSFORMER_BATCH_TOKENS
    )
    # 30 s: a full batch gets 300 steps, a quarter of one 1,200, so the batch shrinks
    timed.clear()
    short = S.size_for_budget(
        dataset, ModelConfig(name="transformer"), TrainConfig(max_time=0.5), torch.device("cpu")
    )
    assert short.expected_steps >= S.MIN_STEPS
    assert short.train.batch_size * short.train.seq_len == S.TRANSFORMER_BATCH_TOKENS // 4
    # timed: the cheapest shape, then only the one its cost says may do (not the half and
    # full batches, which cannot: each step costs 2 and 4 times as much)
    smallest = S.LADDER["transformer"][0][0]
    shapes = [(T * B) for d, T, B in timed if d == smallest]
    assert shapes == [S.MIN_BATCH * 256, S.TRANSFORMER_BATCH_TOKENS // 4]
    assert "sized for 5 min on this CPU: gru 320 wide, 2 layers, context 256" in sizing.describe(
        5, "this CPU"
    )


def test_a_time_budget_alone_sizes_the_model_and_says_so(dataset, tmp_path):
    out = tmp_path / "sized"
    result = run_cli(
        "train",
        "--data",
        dataset,
        "--model",
        "gru",
        "--out",
        out,
        "--max-time",
        "0.05",
        "--no-progress",
        "--val-every",
        "2",
    )
    assert_ok(result)
    assert "sized for 0.05 min on this CPU: gru 192 wide, 2 layers, context 256" in result.stdout
    meta = load(out / "last.ckpt")["musicgen"]
    assert (meta["model"]["d_model"], meta["train"]["seq_len"]) == (192, 256)
    # the budget is kept as asked (the probe's share beside it): the same command resumes
    # the run with no change, and without sizing again
    assert meta["train"]["max_time"] == 0.05 and meta["train"]["probe_minutes"] > 0
    again = run_cli(
        "train", "--data", dataset, "--model", "gru", "--out", out, "--max-time", "0.05",
        "--no-progress", "--val-every", "2", "--resume",
    )  # fmt: skip
    assert_ok(again)
    assert "sized for" not in again.stdout
    assert f"resuming {out / 'last.ckpt'} at step {meta['global_step']}\n" in again.stdout
    given = run_cli(
        "train",
        "--data",
        dataset,
        "--model",
        "gru",
        "--out",
        tmp_path / "given",
        "--max-time",
        "0.02",
        "--hidden",
        "32",
        "--no-progress",
        "--val-every",
        "2",
    )
    assert_ok(given)
    assert "sized for" not in given.stdout


def test_max_time_takes_the_budgets_people_write(dataset, tmp_path):
    bad = run_cli("train", "--data", dataset, "--out", tmp_path / "x", "--max-time", "five")
    assert bad.exit_code == 2 and "is not a time budget" in bad.output
    ok = run_cli(
        "train",
        "--data",
        dataset,
        "--model",
        "gru",
        "--out",
        tmp_path / "ok",
        "--max-time",
        "00:00:00:30",
        "--max-steps",
        "2",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--val-every",
        "2",
        "--patience",
        "0",
        "--no-progress",
    )
    assert_ok(ok)
    assert load(tmp_path / "ok" / "last.ckpt")["musicgen"]["train"]["max_time"] == 0.5
