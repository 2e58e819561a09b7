"""Fuzzing the MIDI reader and ingestion with mutated bytes of real chorales.

Every input must end as ok, partial or skipped with a one-line reason, quickly, and
never take a run down. Inputs that once failed live in tests/hardening/fixtures/ and
are replayed by `test_regression_fixture`. A longer campaign: benchmarks/fuzz_ingest.py.
"""

from __future__ import annotations

import json
import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicgen.config import EncodingConfig, IngestConfig
from musicgen.data.dataset import TokenDataset
from musicgen.data.ingest import ingest
from musicgen.errors import ReadError
from musicgen.midi.read import read_score
from tests.hardening.mutate import (
    INTERESTING_BYTES,
    INTERESTING_LENGTHS,
    apply_ops,
    chunk_offsets,
    notes_of,
    outcome,
    random_op,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "data" / "midi").glob("*.mid"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
# A handful of chorales, small to large: hypothesis shrinks faster on small files.
BASES = [CORPUS[i] for i in (0, 50, 100, 200, 300)] + sorted(
    CORPUS, key=lambda p: p.stat().st_size
)[:3]
BLOBS = {p.name: p.read_bytes() for p in BASES}
TIME_LIMIT = 5.0  # seconds for one file in-process; ingestion's own limit is 20 s

pos = st.integers(0, 1 << 16)
OPS = st.one_of(
    st.tuples(st.just("flip"), pos, st.integers(0, 7)),
    st.tuples(st.just("set"), pos, st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255)),
    st.tuples(st.just("insert"), pos, st.lists(st.integers(0, 255), min_size=1, max_size=16)),
    st.tuples(st.just("delete"), pos, st.integers(1, 64)),
    st.tuples(st.just("truncate"), pos),
    st.tuples(
        st.just("chunk_len"), st.integers(0, 15), st.sampled_from(INTERESTING_LENGTHS), st.just(0)
    ),
    st.tuples(st.just("chunk_len"), st.integers(0, 15), st.none(), st.integers(-64, 64)),
    st.tuples(st.just("splice"), pos, pos),
)
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_once(path: Path) -> tuple[str, str]:
    t = time.perf_counter()
    result = outcome(path)
    elapsed = time.perf_counter() - t
    assert elapsed < TIME_LIMIT, f"{elapsed:.1f} s for one file"
    return result


@FUZZ
@given(
    base=st.sampled_from(sorted(BLOBS)),
    other=st.sampled_from(sorted(BLOBS)),
    ops=st.lists(OPS, min_size=1, max_size=4),
)
def test_read_score_survives_mutations(scratch, base, other, ops):
    path = scratch / "mutated.mid"
    path.write_bytes(apply_ops(BLOBS[base], ops, BLOBS[other]))
    status, reason = read_once(path)  # raises AssertionError (or anything but ReadError) on a bug
    assert status in ("ok", "partial", "skipped")


@settings(
    max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(
    base=st.sampled_from(sorted(BLOBS)),
    damage=st.one_of(
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(
            st.just("chunk_len"),
            st.integers(1, 15),
            st.sampled_from(INTERESTING_LENGTHS),
            st.just(0),
        ),
        st.tuples(
            st.just("chunk_len"), st.integers(1, 15), st.none(), st.integers(-64, 64).filter(bool)
        ),
        st.tuples(st.just("ntracks"), st.integers(1, 40)),
    ),
)
def test_a_cut_or_a_wrong_length_never_loses_notes_silently(base, damage):
    """Notes a damaged file loses are listed in its warnings (so it is partial), never dropped quietly."""
    from musicgen.midi.read import midi_bytes_to_score

    data = BLOBS[base]
    if damage[0] == "truncate":
        mutated = data[: int(damage[1] * len(data))]
    elif damage[0] == "ntracks":
        mutated = data[:10] + struct.pack(">H", damage[1]) + data[12:]
    else:
        offsets = chunk_offsets(data)
        k = damage[1] % (len(offsets) - 1) + 1  # a track, not the header
        mutated = apply_ops(data, [("chunk_len", k, *damage[2:])])
    if mutated == data:
        return
    original = notes_of(midi_bytes_to_score(data))
    try:
        score = midi_bytes_to_score(mutated)
    except ReadError:
        return
    got = notes_of(score)
    if not score.warnings:
        assert got == original, f"{len(original) - len(got)} notes lost without a warning"
    else:
        assert all(n in set(original) for n in got), "notes invented"
    if damage[0] != "truncate":  # every event is still in the file: a repair keeps them all
        assert got == original, score.warnings


def test_ingest_mutated_files_beside_good_ones(tmp_path):
    rng = random.Random(20240611)
    src = tmp_path / "src"
    src.mkdir()
    good = CORPUS[:6]
    for p in good:
        (src / p.name).write_bytes(p.read_bytes())
    mutated = []
    for i in range(30):
        base, other = rng.choice(CORPUS[:60]), rng.choice(CORPUS[:60])
        ops = [random_op(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
        name = f"mutated-{i:02d}.mid"
        (src / name).write_bytes(apply_ops(base.read_bytes(), ops, other.read_bytes()))
        mutated.append(name)
    (src / "empty.mid").write_bytes(b"")
    (src / "noise.mid").write_bytes(rng.randbytes(2000))
    out = tmp_path / "ds"
    summary = ingest(
        [src], out, EncodingConfig(), IngestConfig(workers=2, file_timeout=20, val_fraction=0.2)
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))["files"]
    names = [r["path"] for r in report]
    assert sorted(names) == sorted([p.name for p in good] + mutated + ["empty.mid", "noise.mid"])
    by = {r["path"]: r for r in report}
    for p in good:
        assert by[p.name]["status"] == "ok", by[p.name]
    for r in report:
        assert r["status"] in ("ok", "partial", "skipped")
        assert "\n" not in r["reason"]
        if r["status"] == "skipped":
            assert r["reason"].strip()
    assert by["empty.mid"]["reason"] == "empty file"
    assert summary.files == len(report)
    # the dataset written beside them is whole and consistent
    ds = TokenDataset.open(out)
    kept = [r["path"] for r in report if r["status"] != "skipped"]
    assert sorted(e["path"] for e in ds.index["files"]) == sorted(kept)
    assert sum(e["tokens"] for e in ds.index["files"]) == len(ds.tokens)
    assert int(np.asarray(ds.tokens).max()) < len(ds.vocab)


FIXTURE_FILES = sorted(
    p for p in FIXTURES.iterdir() if p.suffix.lower() in (".mid", ".midi", ".kar", ".rmi", ".smf")
)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.name for p in FIXTURE_FILES])
def test_regression_fixture(path, tmp_path):
    copy = tmp_path / path.name  # ingest_file reads the disk; never touch the fixture itself
    copy.write_bytes(path.read_bytes())
    status, reason = read_once(copy)
    want = EXPECTED.get(path.name)
    if want is None:
        return
    assert status == want["status"], reason
    assert reason.startswith(want["reason"]), reason
    score = read_score(copy)
    assert score.num_notes == want["notes"]
    if "base" in want:  # damaged from this chorale without touching an event: every note is back
        assert notes_of(score) == notes_of(read_score(ROOT / "data" / "midi" / want["base"]))
