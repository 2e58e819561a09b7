"""Ingestion: outputs, split, reuse, failures and locking; and the isolated worker pool."""

import fcntl
import hashlib
import json
import os
import shutil
import time

import numpy as np
import pytest

from musicgen.config import EncodingConfig, IngestConfig
from musicgen.data.ingest import ingest, split_of
from musicgen.data.pool import Failure, run_isolated
from musicgen.errors import MusicgenError
from musicgen.midi.read import read_score
from musicgen.tokens.encoding import encode
from musicgen.tokens.vocab import Vocabulary

ING = IngestConfig(workers=2)


def load(out):
    return (
        json.loads((out / "index.json").read_text(encoding="utf-8")),
        json.loads((out / "report.json").read_text(encoding="utf-8")),
    )


def snapshot(folder) -> dict[str, str]:
    return {
        p.name: hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_ds(tmp_path_factory, corpus_files):
    out = tmp_path_factory.mktemp("corpus") / "ds"
    summary = ingest([corpus_files[0].parent], out, ing_cfg=ING)
    return out, summary


@pytest.fixture
def small_dir(tmp_path, corpus_files):
    d = tmp_path / "music"
    d.mkdir()
    for f in corpus_files[:30]:
        shutil.copy(f, d / f.name)
    return d


# --- outputs -----------------------------------------------------------------------------


def test_outputs_exist_and_agree(corpus_ds):
    out, summary = corpus_ds
    index, report = load(out)
    vocab = Vocabulary.load(out / "vocab.json")
    tokens = np.load(out / "tokens.npy", mmap_mode="r")
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    assert index["format"] == "musicgen-dataset" and index["version"] == 2
    assert report["format"] == "musicgen-ingest-report"
    assert len(report["files"]) == 410 and all(r["status"] == "ok" for r in report["files"])
    assert len(index["files"]) == 410

    tr, va = index["splits"]["train"], index["splits"]["val"]
    assert tr[0] == 0 and tr[1] == va[0] and va[1] == len(tokens)
    spans = sorted((e["offset"], e["offset"] + e["tokens"], e["split"]) for e in index["files"])
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] == len(tokens)
    for e in index["files"]:
        lo, hi = tr if e["split"] == "train" else va
        assert lo <= e["offset"] and e["offset"] + e["tokens"] <= hi
        piece = tokens[e["offset"] : e["offset"] + e["tokens"]]
        assert piece[0] == vocab.bos_id and piece[-1] == vocab.eos_id
        assert int(np.isin(piece, vocab.note_ids).sum()) == e["notes"]
    assert tokens.max() < len(vocab)

    assert (
        summary.files == 410
        and summary.ok == 410
        and summary.partial == 0
        and summary.skipped == {}
    )
    assert summary.notes == 118_000 and summary.tokens == len(tokens)
    assert summary.train_tokens + summary.val_tokens == len(tokens)
    assert summary.vocab_size == len(vocab) and not summary.up_to_date


def test_dataset_tokens_are_the_encoding(corpus_ds, corpus_files):
    out, _ = corpus_ds
    index, _ = load(out)
    vocab = Vocabulary.load(out / "vocab.json")
    tokens = np.load(out / "tokens.npy", mmap_mode="r")
    entries = {e["path"]: e for e in index["files"]}
    for f in corpus_files[::50]:
        e = entries[f.name]
        want = encode(read_score(f), EncodingConfig()).ids
        assert np.array_equal(
            vocab.to_universal(tokens[e["offset"] : e["offset"] + e["tokens"]]), want
        )


# --- split -------------------------------------------------------------------------------


def test_split_decided_by_relative_path(corpus_ds, corpus_files):
    out, _ = corpus_ds
    index, _ = load(out)
    assert all(e["split"] == split_of(e["path"], 0.1) for e in index["files"])
    val = sum(e["split"] == "val" for e in index["files"])
    assert 0.06 <= val / 410 <= 0.14
    names = [f.name for f in corpus_files]
    for frac in (0.2, 0.5):  # a hash of 410 names: within ~3 standard deviations
        share = sum(split_of(n, frac) == "val" for n in names) / len(names)
        assert abs(share - frac) < 0.08
    assert all(split_of(n, 0.0) == "train" for n in names)
    assert [split_of(n, 0.3) for n in names] == [split_of(n, 0.3) for n in names]
    # a higher fraction only moves files into validation, never out of it
    assert all(split_of(n, 0.3) == "val" for n in names if split_of(n, 0.1) == "val")


def test_adding_files_keeps_old_splits(tmp_path, small_dir, corpus_files):
    out = tmp_path / "ds"
    cfg = IngestConfig(workers=2, val_fraction=0.3)
    ingest([small_dir], out, ing_cfg=cfg)
    before = {e["path"]: e["split"] for e in load(out)[0]["files"]}
    assert set(before.values()) == {"train", "val"}
    for f in corpus_files[30:60]:
        shutil.copy(f, small_dir / f.name)
    summary = ingest([small_dir], out, ing_cfg=cfg)
    after = {e["path"]: e["split"] for e in load(out)[0]["files"]}
    assert len(after) == 60 and summary.reused == 30
    assert {p: after[p] for p in before} == before
    # the same relative names in another folder give the same split
    other = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(small_dir, other)
    ingest([other], tmp_path / "ds2", ing_cfg=cfg)
    assert {e["path"]: e["split"] for e in load(tmp_path / "ds2")[0]["files"]} == after


# --- reuse -------------------------------------------------------------------------------


def test_rerun_unchanged_is_up_to_date_and_fast(tmp_path, corpus_files):
    out = tmp_path / "ds"
    first = ingest([corpus_files[0].parent], out, ing_cfg=ING)
    files = snapshot(out)
    t0 = time.perf_counter()
    again = ingest([corpus_files[0].parent], out, ing_cfg=ING)
    assert time.perf_counter() - t0 < 1.5  # ~0.05 s: nothing is parsed or written
    assert again.up_to_date and again.reused == 410
    assert snapshot(out) == files
    assert (again.notes, again.tokens, again.vocab_size) == (
        first.notes,
        first.tokens,
        first.vocab_size,
    )
    assert "up to date" in again.lines()[-1]


def test_changing_one_file_reparses_only_that_one(tmp_path, small_dir, smf):
    out = tmp_path / "ds"
    ingest([small_dir], out, ing_cfg=ING)
    victim = sorted(small_dir.iterdir())[4]
    victim.write_bytes(smf.simple())  # now three notes
    summary = ingest([small_dir], out, ing_cfg=ING)
    assert not summary.up_to_date and summary.reused == 29
    entry = {e["path"]: e for e in load(out)[0]["files"]}[victim.name]
    assert entry["notes"] == 3
    # a different val_fraction re-splits without parsing anything
    resplit = ingest([small_dir], out, ing_cfg=IngestConfig(workers=2, val_fraction=0.5))
    assert resplit.reused == 30 and not resplit.up_to_date


def test_timed_out_files_are_tried_again(tmp_path, small_dir):
    out = tmp_path / "ds"
    ingest([small_dir], out, ing_cfg=ING)
    # pretend the machine was so busy that one file timed out last time
    index, report = load(out)
    gone = report["files"][3]["path"]
    report["files"][3].update(status="skipped", reason="timed out after 20 s", stats={})
    index["files"] = [e for e in index["files"] if e["path"] != gone]
    (out / "report.json").write_text(json.dumps(report))
    (out / "index.json").write_text(json.dumps(index))
    summary = ingest([small_dir], out, ing_cfg=ING)
    assert not summary.up_to_date and summary.reused == 29
    assert {r["path"]: r["status"] for r in load(out)[1]["files"]}[gone] == "ok"


def test_damaged_index_means_parsing_again(tmp_path, small_dir):
    out = tmp_path / "ds"
    ingest([small_dir], out, ing_cfg=ING)
    index, _ = load(out)
    index["files"][0] = {"path": "x"}
    (out / "index.json").write_text(json.dumps(index))
    summary = ingest([small_dir], out, ing_cfg=ING)
    assert summary.reused == 0 and summary.ok == 30


# --- failures ----------------------------------------------------------------------------


def test_nothing_ingested_is_an_error(tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "a.mid").write_bytes(b"")
    (src / "b.mid").write_text("hello")
    with pytest.raises(MusicgenError, match=r"nothing could be ingested from 2 files \(") as info:
        ingest([src], tmp_path / "out", ing_cfg=ING)
    assert "empty file" in str(info.value) and "not a MIDI file" in str(info.value)
    assert not (tmp_path / "out" / "index.json").exists()
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_no_music_and_missing_sources(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MusicgenError, match="no music files found"):
        ingest([tmp_path], tmp_path / "out")
    with pytest.raises(MusicgenError, match="no such file or folder"):
        ingest([tmp_path / "missing"], tmp_path / "out")


def test_unwritable_output_folder(tmp_path, small_dir):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a regular file, not a folder")
    with pytest.raises(MusicgenError, match=r"cannot write to .*file\.txt/out"):
        ingest([small_dir], blocker / "out", ing_cfg=ING)
    assert blocker.read_text() == "a regular file, not a folder"


def test_second_ingestion_into_a_locked_folder_fails_clearly(tmp_path, small_dir, corpus_files):
    out = tmp_path / "ds"
    ingest([small_dir], out, ing_cfg=ING)
    before = snapshot(out)
    with open(out / ".lock", "w") as held:  # another ingestion is running
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for f in corpus_files[30:35]:
            shutil.copy(f, small_dir / f.name)
        with pytest.raises(
            MusicgenError, match="another ingestion is writing .*; wait for it to finish"
        ):
            ingest([small_dir], out, ing_cfg=ING)
        assert snapshot(out) == before  # untouched: never half of one run and half of another
    assert ingest([small_dir], out, ing_cfg=ING).files == 35


# --- the worker pool ---------------------------------------------------------------------


def double_or_misbehave(x):
    if x == "hang":
        time.sleep(60)
    if x == "kill":
        os.kill(os.getpid(), 9)
    if x == "exit":
        os._exit(3)
    if x == "raise":
        raise ValueError("bad input\nsecond line is not shown")
    if x == "raise-empty":
        raise KeyError
    return x * 2


def run(items, **kw):
    kw = {"workers": 2, "timeout": 10.0, "chunk_size": 4, **kw}
    results = list(run_isolated(double_or_misbehave, items, **kw))
    assert sorted(i for i, _ in results) == list(range(len(items))), (
        "every input answered exactly once"
    )
    return dict(results)


def test_pool_results():
    assert run([1, 2, 3, 4, 5, 6, 7]) == {i: 2 * x for i, x in enumerate([1, 2, 3, 4, 5, 6, 7])}
    assert run([]) == {}


def test_pool_times_out_a_hanging_input():
    items = [1, 2, "hang", 4, 5, 6, 7, 8, 9]
    t0 = time.perf_counter()
    res = run(items, timeout=0.3, chunk_size=8)
    assert time.perf_counter() - t0 < 10
    assert res[2] == Failure("timed out after 0.3 s")
    assert {i: r for i, r in res.items() if i != 2} == {
        i: 2 * x for i, x in enumerate(items) if i != 2
    }


@pytest.mark.parametrize(
    ("bad", "reason"),
    [("kill", "parser crashed (signal 9)"), ("exit", "parser crashed (exit code 3)")],
)
def test_pool_survives_a_crashing_input(bad, reason):
    items = [1, 2, 3, bad, 5, 6, 7, 8, 9, 10]
    res = run(items, workers=1, chunk_size=16)  # the crash is mid-chunk: the rest is re-queued
    assert res[3] == Failure(reason)
    assert {i: r for i, r in res.items() if i != 3} == {
        i: 2 * x for i, x in enumerate(items) if i != 3
    }


def test_pool_turns_exceptions_into_failures():
    res = run([1, "raise", 3, "raise-empty"])
    assert res == {
        0: 2,
        1: Failure("ValueError: bad input"),
        2: 6,
        3: Failure("KeyError: KeyError"),
    }


def test_pool_many_failures_at_once():
    items = ["kill", 1, "exit", "hang", 2, "raise", 3]
    res = run(items, timeout=0.3, chunk_size=2)
    assert [type(res[i]).__name__ for i in range(len(items))] == [
        "Failure",
        "int",
        "Failure",
        "Failure",
        "int",
        "Failure",
        "int",
    ]


def test_outputs_do_not_depend_on_chunks_or_workers(tmp_path, small_dir):
    """Files go to the workers a chunk at a time; the dataset is the same whatever the chunking."""
    (small_dir / "broken.mid").write_bytes(b"MThd not really")
    runs = {}
    for workers, chunk in ((1, 1), (2, 5), (2, 64)):
        out = tmp_path / f"w{workers}c{chunk}"
        ingest([small_dir], out, ing_cfg=IngestConfig(workers=workers, chunk_size=chunk))
        index, report = load(out)
        del index["ingest"]  # records the settings themselves
        runs[workers, chunk] = (
            (out / "tokens.npy").read_bytes(),
            (out / "vocab.json").read_bytes(),
            index,
            report,
        )
    first, *rest = runs.values()
    assert all(r == first for r in rest)
    assert [r["status"] for r in first[3]["files"]].count("skipped") == 1


ORPHAN = """
import os, signal, sys, threading, time
from musicgen.data.pool import WorkerPool

def slow(x):
    time.sleep(60)

pool = WorkerPool(slow, workers=2, timeout=120).start()
print(" ".join(str(s.proc.pid) for s in pool.slots), flush=True)
if sys.argv[1] == "busy":  # the workers are inside a (hanging) job when the parent dies
    threading.Thread(target=lambda: list(pool.run([1, 2, 3, 4])), daemon=True).start()
time.sleep(0.3)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("state", ["idle", "busy"])
def test_workers_die_with_a_killed_parent(state):
    """SIGKILL gives the parent no chance to stop its workers; they must not live on."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", ORPHAN, state], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -9, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [
            p
            for p in pids
            if os.path.exists(f"/proc/{p}") and "zombie" not in open(f"/proc/{p}/status").read()
        ]
    assert alive == [], "workers outlived their parent"


def test_auto_time_is_decided_for_the_corpus_and_kept(tmp_path, performed_chorale, corpus_files):
    played = tmp_path / "played"
    played.mkdir()
    for k in range(3):
        shutil.copy(performed_chorale.path, played / f"take{k}.mid")
    shutil.copy(corpus_files[0], played / "chorale.mid")  # a minority on the beat grid
    out = tmp_path / "ds"
    summary = ingest([played], out, ing_cfg=ING)
    assert summary.time["mode"] == "seconds" and summary.time["reason"].startswith("3 of 4 files")
    index, report = load(out)
    assert index["time"] == summary.time == report["time"]
    assert (
        Vocabulary.load(out / "vocab.json").cfg.time == "seconds"
    )  # train, generate ... follow it
    assert all(len(r["timing"]) == 4 for r in report["files"])
    # unchanged: up to date; one more sequenced file does not tip it, and the timings come from the cache
    assert ingest([played], out, ing_cfg=ING).up_to_date
    shutil.copy(corpus_files[1], played / "chorale2.mid")
    again = ingest([played], out, ing_cfg=ING)
    assert again.time["mode"] == "seconds" and again.reused == 4
    # asked for beats: the dataset is encoded again, in beats
    beats = ingest([played], out, EncodingConfig(time="beats"), ING)
    assert beats.time == {"mode": "beats", "reason": "asked for"} and beats.reused == 0
