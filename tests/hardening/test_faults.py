"""Faults from outside: SIGKILL mid-training and mid-write, a full disk, an unwritable
folder, and two ingestions into one folder at once -- each in a real subprocess.

Promises checked: a file at its final name is always complete (old or new, never
half); `--resume` continues from the last complete checkpoint; a failed command
exits 2 with one line and leaves earlier results byte for byte; a dataset folder
is never a mix of two ingestions.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import musicgen.fsutil as fsutil
from musicgen.checkpoint import read_musicgen_checkpoint
from musicgen.config import IngestConfig
from musicgen.data.dataset import TokenDataset
from musicgen.data.ingest import ingest
from musicgen.models.lm import MusicLM
from tests.helpers import (
    CORPUS,
    assert_cli_error,
    assert_ok,
    run_cli,
    write_notes_midi,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


def python(code: str, *args, cwd: Path | None = None) -> subprocess.Popen:
    """Start `code` in a fresh interpreter that can import musicgen and tests."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("MUSICGEN_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        cwd=cwd or ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every result file (not the lock, not a killed writer's temporaries), byte for byte."""
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != ".lock" and not p.name.endswith(".tmp")
    }


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def one_error_line(stderr: str, *fragments: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-3000:]
    assert "Traceback" not in stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


# --- SIGKILL during training ---------------------------------------------------------------

KILL_TRAINING = """
import io, os, signal, sys
from pathlib import Path
from tests.helpers import train_tiny

mode, data, out, at = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def target(f):  # the file behind a handle: atomic_write hands torch.save a temp file
    return os.readlink(f"/proc/self/fd/{f.fileno()}")

if mode == "mid-epoch":
    from musicgen.models.lm import MusicLM
    real_step = MusicLM.training_step
    def training_step(self, *args, **kwargs):
        if self.global_step == at:
            die()
        return real_step(self, *args, **kwargs)
    MusicLM.training_step = training_step
elif mode == "mid-save":
    import torch
    real_save, seen = torch.save, []
    def save(obj, f, *args, **kwargs):
        if hasattr(f, "fileno") and ".last.ckpt." in target(f):
            seen.append(f)
            if len(seen) == at:  # write half the bytes of this checkpoint, then die
                buf = io.BytesIO()
                real_save(obj, buf, *args, **kwargs)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.fsync(f.fileno())
                die()
        return real_save(obj, f, *args, **kwargs)
    torch.save = save
elif mode == "before-rename":
    real_replace, seen = os.replace, []
    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("last.ckpt"):
            seen.append(dst)
            if len(seen) == at:  # the new checkpoint is complete in its temp file
                die()
        return real_replace(src, dst, *args, **kwargs)
    os.replace = replace
train_tiny(data, out, "gru", max_steps=8, val_every=2)
sys.exit(3)  # the kill must come first
"""

# (mode, argument, global_step of the last complete last.ckpt, is a temp file left behind)
KILLS = [
    ("mid-epoch", 5, 4, False),  # step 5 of the first epoch's 14; last.ckpt was written at 4
    ("mid-save", 2, 2, True),  # the second write of last.ckpt (step 4) dies half way
    ("before-rename", 2, 2, True),  # ... dies with the new checkpoint complete but not renamed
]


@pytest.fixture(scope="module")
def killed_runs(dataset, tmp_path_factory):
    """All three killed trainings, run at the same time (each is mostly interpreter start-up)."""
    base = tmp_path_factory.mktemp("killed")
    procs = {mode: python(KILL_TRAINING, mode, dataset, base / mode, at) for mode, at, *_ in KILLS}
    return {mode: (base / mode, *finish(p, 240)) for mode, p in procs.items()}


def steps_run_by(monkeypatch) -> list[int]:
    counted: list[int] = []
    real = MusicLM.training_step

    def training_step(self, *args, **kwargs):
        counted.append(self.global_step)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicLM, "training_step", training_step)
    return counted


@pytest.mark.parametrize(("mode", "at", "last_step", "temp_left"), KILLS, ids=[k[0] for k in KILLS])
def test_sigkill_then_resume_continues_from_the_last_complete_checkpoint(
    killed_runs, dataset, monkeypatch, mode, at, last_step, temp_left
):
    out, code, stdout, stderr = killed_runs[mode]
    assert code == -signal.SIGKILL, f"exit {code}\n{stdout[-2000:]}\n{stderr[-3000:]}"
    # every file at a final name is a complete checkpoint; last.ckpt is the previous version
    for ckpt in out.glob("*.ckpt"):
        read_musicgen_checkpoint(ckpt)
    last = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == last_step
    left = temps(out)
    assert bool(left) == temp_left, left
    if mode == "mid-save":
        (half,) = left
        assert 0 < (out / half).stat().st_size < (out / "last.ckpt").stat().st_size

    counted = steps_run_by(monkeypatch)
    result = run_cli(
        "train",
        "--data",
        dataset,
        "--out",
        out,
        "--model",
        "gru",
        "--hidden",
        32,
        "--layers",
        1,
        "--heads",
        4,
        "--dropout",
        0,
        "--seq-len",
        64,
        "--batch-size",
        8,
        "--epochs",
        0,
        "--max-steps",
        8,
        "--val-every",
        2,
        "--warmup",
        2,
        "--patience",
        0,
        "--lr",
        0.01,
        "--transpose",
        2,
        "--resume",
        "--no-progress",
    )
    assert_ok(result)
    assert counted == list(range(last_step, 8)), (
        counted
    )  # picked up exactly where the checkpoint was
    final = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == 8
    # AdamW counts its own steps: 8 means the moments saved at last_step were restored
    assert {float(s["step"]) for s in final["optimizer_states"][0]["state"].values()} == {8.0}
    for ckpt in out.glob("*.ckpt"):
        read_musicgen_checkpoint(ckpt)
    assert set(temps(out)) <= set(left)  # a killed writer's temp file is ignored, never loaded


# --- SIGKILL during an ingestion's writes ------------------------------------------------------

KILL_INGEST = """
import os, signal, sys
from pathlib import Path
import musicgen.fsutil as fsutil
from musicgen.config import IngestConfig
from musicgen.data.ingest import ingest

where, out, sources = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if where == "writing-tokens":
    real_temp = fsutil._write_temp
    def write_temp(path, write):
        if path.name == "tokens.npy":
            def half(fh):
                fh.write(b"\\x93NUMPY partial")
                fh.flush()
                die()
            return real_temp(path, half)
        return real_temp(path, write)
    fsutil._write_temp = write_temp
elif where == "between-renames":
    real_replace = os.replace
    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if str(dst).endswith("tokens.npy"):
            die()  # tokens.npy is new; vocab, report and index are not renamed yet
    os.replace = replace
ingest(sources, out, ing_cfg=IngestConfig(workers=1))
sys.exit(3)
"""


@pytest.mark.parametrize("where", ["writing-tokens", "between-renames"])
def test_sigkill_during_ingest_writes_never_leaves_a_mix(tmp_path, where):
    files = sorted(CORPUS.glob("*.mid"))
    out = tmp_path / "ds"
    ingest(files[:4], out, ing_cfg=IngestConfig(workers=1))
    before = snapshot(out)
    code, stdout, stderr = finish(python(KILL_INGEST, where, out, *files[4:10]))
    assert code == -signal.SIGKILL, stderr[-3000:]
    if where == "writing-tokens":
        assert snapshot(out) == before  # the earlier dataset, byte for byte
        assert temps(out)
    else:
        # index.json goes first and comes back last: no index, no dataset -- never a mix
        assert not (out / "index.json").exists()
        line = assert_cli_error(
            run_cli("train", "--data", out, "--out", tmp_path / "run"), "no index.json"
        )
        assert "musicgen ingest" in line
    # the next ingestion recovers and sweeps the killed run's temp files
    ingest(files[4:10], out, ing_cfg=IngestConfig(workers=1))
    assert temps(out) == []
    ds = TokenDataset.open(out)
    assert sorted(e["path"] for e in ds.index["files"]) == sorted(f.name for f in files[4:10])


# --- a full disk and an unwritable folder ------------------------------------------------------

FULL_DISK = """
import resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from musicgen.cli import main
sys.argv = ["musicgen", *sys.argv[2:]]
main()
"""


def tiny_songs(folder: Path, n: int, first_pitch: int) -> Path:
    """n one-bar MIDI files: small tokens, but one index entry each (JSON outweighs tokens)."""
    folder.mkdir(parents=True)
    for i in range(n):
        p = first_pitch + i % 24
        write_notes_midi(
            folder / f"song{i:03d}.mid", [(0.0, 1.0, p), (1.0, 1.0, p + 2), (2.0, 2.0, p + 4)]
        )
    return folder


def test_full_disk_during_ingest_exits_2_and_keeps_the_earlier_dataset(tmp_path):
    out = tmp_path / "ds"
    ingest([tiny_songs(tmp_path / "old", 3, 50)], out, ing_cfg=IngestConfig(workers=1))
    before = snapshot(out)
    new = tiny_songs(tmp_path / "new", 40, 60)
    ref = tmp_path / "ref"  # the same ingestion without a limit: how big each output gets
    ingest([new], ref, ing_cfg=IngestConfig(workers=1))
    sizes = {p.name: p.stat().st_size for p in ref.iterdir() if p.is_file()}
    assert sizes["index.json"] > 4 * sizes["tokens.npy"], sizes
    # 2000 bytes: the token stream fails first. Just under index.json: everything else is
    # written in full before the disk fills -- the outputs are committed together or not at all.
    limits = [2000, min(sizes["index.json"], sizes["report.json"]) - 1]
    for n in limits:  # one after the other: two at once would meet the folder's lock
        code, stdout, stderr = finish(
            python(FULL_DISK, n, "ingest", new, "--out", out, "--workers", 1)
        )
        assert code == 2, f"exit {code}\n{stdout}\n{stderr[-3000:]}"
        one_error_line(stderr, f"cannot write to {out}", "File too large")
        assert snapshot(out) == before
        assert temps(out) == []
    TokenDataset.open(out)


def test_unwritable_output_folder_exits_2_in_one_line(tmp_path, trained):
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("a regular file where a folder should be\n")
    music = tiny_songs(tmp_path / "music", 2, 60)
    assert_cli_error(run_cli("ingest", music, "--out", blocker / "ds"), "cannot write to")
    result = run_cli("generate", trained["gru"].best, "--out", blocker / "song.mid", "--tokens", 8)
    assert_cli_error(result, "cannot write")
    assert blocker.read_text() == "a regular file where a folder should be\n"


def test_full_disk_during_generate_exits_2_and_keeps_the_earlier_song(tmp_path, trained):
    ckpt = trained["gru"].best
    song = tmp_path / "song.mid"
    assert_ok(run_cli("generate", ckpt, "--out", song, "--tokens", 24, "--seed", 1))
    before = snapshot(tmp_path)
    assert set(before) == {"song.mid", "song.json"}
    midi, sidecar = len(before["song.mid"]), len(before["song.json"])
    assert midi + 100 < sidecar, (midi, sidecar)
    # 64 bytes: the MIDI file fails. Between the two sizes: the MIDI file would fit, its sidecar not.
    limits = [64, (midi + sidecar) // 2]
    args = ["generate", ckpt, "--out", song, "--tokens", 24, "--seed", 2]
    procs = [python(FULL_DISK, n, *args) for n in limits]
    for proc in procs:
        code, stdout, stderr = finish(proc)
        assert code == 2, f"exit {code}\n{stdout}\n{stderr[-3000:]}"
        one_error_line(stderr, f"cannot write {song}", "File too large")
        assert snapshot(tmp_path) == before  # the earlier song and its sidecar, byte for byte
        assert temps(tmp_path) == []


# --- two ingestions into one folder at once ----------------------------------------------------

SLOW_INGEST = """
import sys, time
from pathlib import Path
import musicgen.data.files as ing
from musicgen.cli import main

real, delay = ing.read_file, float(sys.argv[1])
def slow(path):  # forked workers inherit this: the run holds its lock for a while
    time.sleep(delay)
    return real(path)
ing.read_file = slow
sys.argv = ["musicgen", *sys.argv[2:]]
main()
"""


def check_whole(out: Path, sources: list[Path]) -> None:
    """The folder is one ingestion's output: index, tokens and vocabulary agree, byte for byte."""
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    names = sorted(p.name for p in sources)
    assert sorted(r["path"] for r in report["files"]) == names
    assert sorted(e["path"] for e in index["files"]) == names
    tok = (out / "tokens.npy").read_bytes()
    assert index["outputs"]["tokens.npy"] == {
        "bytes": len(tok),
        "sha1": hashlib.sha1(tok).hexdigest(),
    }
    assert (
        index["outputs"]["vocab.json"]["sha1"]
        == hashlib.sha1((out / "vocab.json").read_bytes()).hexdigest()
    )
    ds = TokenDataset.open(out)
    assert len(ds.tokens) == index["splits"]["val"][1] == sum(e["tokens"] for e in index["files"])
    assert int(np.asarray(ds.tokens).max()) < len(ds.vocab)
    assert temps(out) == []


def test_second_ingestion_while_one_is_running_fails_clearly(tmp_path):
    files = sorted(CORPUS.glob("*.mid"))
    a, b = files[:24], files[100:106]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for p in a:
        (tmp_path / "a" / p.name).symlink_to(p)
    for p in b:
        (tmp_path / "b" / p.name).symlink_to(p)
    out = tmp_path / "ds"
    first = python(SLOW_INGEST, 0.1, "ingest", tmp_path / "a", "--out", out, "--workers", 1)
    deadline = time.monotonic() + 60
    while not (out / ".tokens-stream.tmp").exists():  # the first run holds the lock and is parsing
        assert first.poll() is None and time.monotonic() < deadline, (
            "the first ingestion never started"
        )
        time.sleep(0.02)
    code, _, stderr = finish(
        python(SLOW_INGEST, 0, "ingest", tmp_path / "b", "--out", out, "--workers", 1)
    )
    assert first.poll() is None, "the first ingestion ended too soon to overlap"
    assert code == 2
    one_error_line(stderr, "another ingestion is writing", str(out))
    code, stdout, stderr = finish(first)
    assert code == 0, stderr[-3000:]
    check_whole(out, a)


def test_two_ingestions_started_together_leave_one_whole_dataset(tmp_path):
    files = sorted(CORPUS.glob("*.mid"))
    sets = {"a": files[:30], "b": files[200:230]}
    for name, fs in sets.items():
        (tmp_path / name).mkdir()
        for p in fs:
            (tmp_path / name / p.name).symlink_to(p)
    out = tmp_path / "ds"
    procs = {
        n: python(SLOW_INGEST, 0.01, "ingest", tmp_path / n, "--out", out, "--workers", 1)
        for n in sets
    }
    results = {n: finish(p) for n, p in procs.items()}
    for _, (code, _, stderr) in results.items():
        assert code in (0, 2), stderr[-3000:]
        if code == 2:
            one_error_line(stderr, "another ingestion is writing")
    winners = [n for n, (code, *_) in results.items() if code == 0]
    assert winners
    # whichever finished last owns the folder, whole
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    owner = "a" if report["files"][0]["path"] == files[0].name else "b"
    assert owner in winners
    check_whole(out, sets[owner])


# --- Ctrl-C during a write ---------------------------------------------------------------------


def _interrupted_writer(fh):
    """A writer Ctrl-C reaches mid-file, whose own clean-up (as torch.save's zip writer does)
    would raise something else over the KeyboardInterrupt."""
    fh.write(b"first half ")
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the signal is handled at the next bytecode at the latest
    except KeyboardInterrupt:
        raise RuntimeError("unexpected pos: the archive was cut") from None
    fh.write(b"second half")


def test_ctrl_c_during_a_write_waits_for_the_file_then_interrupts(tmp_path):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("Python's own SIGINT handler is not installed here")
    path = tmp_path / "last.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_write(path, _interrupted_writer)
    assert path.read_bytes() == b"first half second half"
    assert not temps(tmp_path)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_stops_a_write_at_once_and_one_outlives_a_failed_write(tmp_path):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("Python's own SIGINT handler is not installed here")

    def hangs(fh):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # the user asks again
        time.sleep(0.05)
        fh.write(b"never")

    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_write(tmp_path / "a.ckpt", hangs)
    assert not (tmp_path / "a.ckpt").exists() and not temps(tmp_path)

    def fails(fh):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        raise OSError(28, "No space left on device")

    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_write(tmp_path / "b.ckpt", fails)
    assert not temps(tmp_path)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_a_group_write_puts_every_file_in_place(tmp_path):
    files = {tmp_path / "tokens.npy": _interrupted_writer, tmp_path / "index.json": b"{}"}
    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_write_group(files, marker=tmp_path / "index.json")
    assert (tmp_path / "tokens.npy").read_bytes() == b"first half second half"
    assert (tmp_path / "index.json").read_bytes() == b"{}"
    assert not temps(tmp_path)
