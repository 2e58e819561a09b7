"""The `ingest` and `tokenize` commands through click's test runner."""

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from musicgen.cli import cli
from musicgen.config import EncodingConfig
from musicgen.midi.read import read_score
from musicgen.tokens.encoding import encode, score_grid


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def music(tmp_path, corpus_files):
    d = tmp_path / "music"
    d.mkdir()
    for f in corpus_files[:10]:
        shutil.copy(f, d / f.name)
    (d / "broken.mid").write_bytes(b"")
    return d


def test_ingest_prints_the_summary(runner, music, tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(cli, ["ingest", str(music), "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "files: 11 (10 ok, 0 partial, 1 skipped)"
    assert lines[1] == "  skipped 1: empty file"
    index = json.loads((out / "index.json").read_text())
    notes = sum(e["notes"] for e in index["files"])
    tokens = index["splits"]["val"][1]
    m = re.fullmatch(
        r"notes: ([\d,]+)  tokens: ([\d,]+) \(train ([\d,]+), val ([\d,]+)\)  tokens/note: (\d+\.\d\d)",
        lines[2],
    )
    assert m, lines[2]
    assert int(m[1].replace(",", "")) == notes and int(m[2].replace(",", "")) == tokens
    assert 2.0 < float(m[5]) < 3.0
    assert lines[3] == "time: beats (onsets sit on a beat grid or the files carry a tempo map)"
    vocab_size = len(json.loads((out / "vocab.json").read_text())["tokens"])
    assert re.fullmatch(rf"vocabulary: {vocab_size} tokens  took \d+\.\d\d s", lines[4])
    assert lines[5] == f"wrote {out}"
    assert lines[6] == f"report: {out / 'report.json'}"
    assert len(lines) == 7
    assert (
        json.loads((out / "vocab.json").read_text())["encoding"]["time"] == "beats"
    )  # every later command follows it

    again = runner.invoke(cli, ["ingest", str(music), "--out", str(out), "--workers", "2"])
    assert again.exit_code == 0
    assert (
        again.stdout.splitlines()[0]
        == "files: 11 (10 ok, 0 partial, 1 skipped), 10 reused from cache"
    )
    assert f"wrote {out} (up to date, nothing re-parsed)" in again.stdout.splitlines()


def test_ingest_only_bad_files_exits_2_with_one_line(runner, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.mid").write_bytes(b"")
    (bad / "text.mid").write_text("not music at all")
    (bad / "random.MID").write_bytes(bytes(range(256)) * 4)
    result = runner.invoke(
        cli, ["ingest", str(bad), "--out", str(tmp_path / "ds"), "--workers", "1"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("error: nothing could be ingested from 3 files")
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_ingest_into_an_impossible_folder_exits_2(runner, music, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = runner.invoke(cli, ["ingest", str(music), "--out", str(blocker / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write to ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_tokenize_prints_and_writes_the_round_trip(runner, corpus_files, tmp_path):
    src = corpus_files[0]  # bwv1.6: 491 notes read, 46 unison doublings, 23 overlaps
    out = tmp_path / "rt.mid"
    result = runner.invoke(cli, ["tokenize", str(src), "--out", str(out), "--show", "12"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    enc = encode(read_score(src), EncodingConfig())
    assert lines[0] == f"file: {src}"
    assert lines[1].startswith("time: beats (")
    assert lines[2] == "tracks: 5  notes read: 491  kept: 445"
    assert "  duplicates merged: 46" in lines and "  overlaps truncated: 23" in lines
    tok_line = next(ln for ln in lines if ln.startswith("tokens: "))
    assert tok_line == f"tokens: {len(enc.ids)}  tokens/note: {len(enc.ids) / 445:.2f}"
    first = next(ln for ln in lines if ln.startswith("first tokens: ")).split()[2:]
    assert len(first) == 12
    assert first[:5] == [
        "BOS",
        "Inst_0",
        "TimeSig_4/4",
        "Tempo_75.93",
        "Prog_0",
    ]  # 76 qpm within 0.1%
    assert (
        first[5].startswith("Vel_")
        and first[6].startswith("Pitch_")
        and first[7].startswith("Dur_")
    )
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \(445 notes, \d+\.\d s\)", lines[-1])

    grid = score_grid(read_score(out), enc.cfg)
    cols = ["step", "dur", "pitch", "program", "velocity"]
    assert np.array_equal(grid[cols], enc.notes[cols])


def test_tokenize_options_change_the_tokens(runner, corpus_files):
    result = runner.invoke(
        cli, ["tokenize", str(corpus_files[0]), "--velocity-bins", "0", "--show", "100000"]
    )
    assert result.exit_code == 0
    first = next(ln for ln in result.stdout.splitlines() if ln.startswith("first tokens: "))
    assert "Vel_" not in first and first.split()[-1] == "EOS"


def test_tokenize_chooses_seconds_for_played_music(runner, performed_chorale):
    result = runner.invoke(cli, ["tokenize", str(performed_chorale.path), "--show", "4"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith(
        "time: seconds (1 of 1 file (100% of the notes) looks played"
    )
    forced = runner.invoke(
        cli, ["tokenize", str(performed_chorale.path), "--time", "beats", "--show", "4"]
    )
    assert forced.stdout.splitlines()[1] == "time: beats (asked for)"


def test_tokenize_bad_file_exits_2(runner, tmp_path):
    bad = tmp_path / "x.mid"
    bad.write_text("hello")
    result = runner.invoke(cli, ["tokenize", str(bad)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {bad}: not a MIDI file (no MThd header)\n"  # names the file
