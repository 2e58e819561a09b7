"""The comparison page for a task: every model infills the same bars, or accompanies the
same kept part, beside the n-gram and the real piece."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicgen.generate.accompany import top_voice
from musicgen.midi.read import read_score
from tests.helpers import assert_cli_error, run_cli
from tests.listen.conftest import make_checkpoint, one_thread
from tests.listen.test_compare import check_page


@pytest.fixture(scope="module")
def filler(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("listen-fill")
    return make_checkpoint(
        tiny_dataset, root / "transformer" / "best.ckpt", "transformer", 2, fill=True
    )


def outside(score, a, b):
    n = score.notes
    return np.sort(n[(n["start"] < a) | (n["start"] >= b)], order=["start", "pitch"])


def test_infill_page_rewrites_the_same_bars_in_every_column(
    filler, tiny_checkpoints, tiny_dataset, tmp_path
):
    from musicgen.config import GenerateConfig
    from musicgen.listen.compare import CompareConfig, run_compare

    out = tmp_path / "page"
    cfg = CompareConfig(
        out=out,
        data=tiny_dataset,
        sampling=GenerateConfig(num_samples=2, length=2),
        use_fluidsynth=False,
        infill=(2, 3),
    )
    with one_thread():
        summary = run_compare([filler, tiny_checkpoints[0]], cfg, echo=lambda s: None)
    names = [c["name"] for c in summary["columns"]]
    assert names == ["transformer", "5-gram", "real passage"]
    assert any("not trained for infilling" in n for n in summary["notes"])  # the plain gru
    assert summary["task"]["infill"]["start"] == 2
    check_page(out, rows=2, columns=3)
    piece = read_score(out / "primer" / "piece.mid")
    lines = piece.bar_lines()
    for col in summary["columns"]:
        for cell in col["cells"]:
            song = read_score(out / cell["midi"])
            np.testing.assert_array_equal(
                outside(song, lines[1], lines[3]), outside(piece, lines[1], lines[3])
            )
    side = json.loads((out / "transformer" / "sample-001.json").read_text())
    assert side["regenerate"].startswith("musicgen infill ") and "--bars 2-3" in side["regenerate"]
    assert "Infills" in (out / "index.html").read_text()


def test_accompany_page_keeps_the_top_voice_in_every_column(
    tiny_checkpoints, tiny_dataset, tmp_path
):
    out = tmp_path / "page"
    with one_thread():
        result = run_cli(
            "compare",
            *tiny_checkpoints,
            "--data",
            tiny_dataset,
            "--accompany",
            "top",
            "--samples",
            "1",
            "--out",
            out,
            "--builtin-synth",
            "--blind",
            "--no-eval",
        )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "compare.json").read_text())
    assert summary["task"] == {
        "accompany": {"file": str(out / "primer" / "piece.mid"), "keep": "top"}
    }
    check_page(out, rows=1, columns=4)  # two models, the n-gram, the real parts
    piece = read_score(out / "primer" / "piece.mid")
    kept = {tuple(r) for r in piece.notes[top_voice(piece.notes)].tolist()}
    for col in summary["columns"]:
        song = read_score(out / col["cells"][0]["midi"])
        assert kept <= {tuple(r) for r in song.notes.tolist()}, col["name"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--infill", "3-2"], "empty"),
        (["--infill", "2-3", "--accompany", "top"], "one task"),
        (["--infill", "40-41"], "needs music after it"),
    ],
)
def test_a_bad_task_is_one_line(filler, tiny_dataset, tmp_path, args, fragment):
    result = run_cli("compare", filler, "--data", tiny_dataset, *args, "--out", tmp_path / "p")
    assert_cli_error(result, fragment)


def test_infill_with_no_model_trained_to_fill_is_one_line(tiny_checkpoints, tiny_dataset, tmp_path):
    result = run_cli(
        "compare",
        *tiny_checkpoints,
        "--data",
        tiny_dataset,
        "--infill",
        "2-3",
        "--out",
        tmp_path / "p",
    )
    assert_cli_error(result, "none of the checkpoints was trained for infilling")
