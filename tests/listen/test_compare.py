"""The comparison page: layout, files, offline-ness, blind mode and CLI errors."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
from click.testing import CliRunner

from musicgen.cli import cli


class Page(HTMLParser):
    """Collects the grid cells, every src/href, and the embedded JSON."""

    def __init__(self, text: str):
        super().__init__()
        self.cells: list[dict] = []
        self.refs: list[str] = []
        self.json_text = ""
        self._in_json = False
        self._cell: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "cell" in (a.get("class") or ""):
            self._cell = {
                "row": int(a["data-row"]),
                "pos": int(a["data-pos"]),
                "audio": [],
                "img": [],
                "midi": [],
                "text": "",
            }
            self.cells.append(self._cell)
        for key in ("src", "href"):
            if a.get(key):
                self.refs.append(a[key])
        if self._cell is not None:
            if tag == "audio":
                self._cell["audio"].append(a["src"])
            elif tag == "img":
                self._cell["img"].append(a["src"])
            elif tag == "a" and "download" in a:
                self._cell["midi"].append(a["href"])
        if tag == "script" and a.get("id") == "compare-data":
            self._in_json = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        if tag == "script":
            self._in_json = False

    def handle_data(self, data):
        if self._in_json:
            self.json_text += data
        elif self._cell is not None:
            self._cell["text"] += data


def check_page(out, rows: int, columns: int) -> Page:
    text = (out / "index.html").read_text(encoding="utf-8")
    page = Page(text)
    assert len(page.cells) == rows * columns
    assert {c["row"] for c in page.cells} == set(range(rows))
    for cell in page.cells:
        assert len(cell["audio"]) == 1 and len(cell["img"]) == 1 and len(cell["midi"]) == 1
    for ref in page.refs:  # every asset is in the folder, by a relative path
        assert not ref.startswith(("/", "http:", "https:", "file:")), ref
        assert (out / ref).is_file(), ref
    assert not re.search(r"https?://", text), "the page must work offline"
    return page


def test_plain_page_has_a_cell_per_sample_and_candidate(plain_page):
    s = plain_page.summary
    names = [c["name"] for c in s["columns"]]
    assert names == ["gru", "transformer", "5-gram", "real continuation"]
    page = check_page(plain_page.out, rows=2, columns=4)
    for cell in page.cells:  # names are shown when not blind, in column order
        assert names[cell["pos"]] in cell["text"]
    for c in s["columns"]:
        if c["kind"] in ("model", "ngram"):
            assert c["bits_per_note"] is not None and c["bits_per_note"] > 0
        assert c["summary"]["pitch_class_entropy"]["n"] >= 1
    assert "validation split" in s["primer"]["source"]
    assert s["reference_set"]["pieces"] >= 1
    html = (plain_page.out / "index.html").read_text(encoding="utf-8")
    assert "held-out bits/note" in html and "Reveal" not in html
    # MIDI copies of every sample, with the generate sidecars for the models
    assert (plain_page.out / "gru" / "sample-002.mid").is_file()
    assert (plain_page.out / "gru" / "sample-002.json").is_file()
    assert (plain_page.out / "ngram" / "sample-001.mid").is_file()
    assert "built-in synth" in s["audio"]


def test_same_seed_same_songs(plain_page, tiny_checkpoints, tiny_dataset, tmp_path):
    """The page is reproducible: a second run with the same seed writes the same MIDI."""
    from musicgen.config import GenerateConfig
    from musicgen.listen.compare import CompareConfig, run_compare

    cfg = CompareConfig(
        out=tmp_path / "again",
        data=tiny_dataset,
        primer_bars=2,
        sampling=GenerateConfig(num_samples=2, length=2),
        use_fluidsynth=False,
        evaluate=False,
        reference=False,
        ngram=False,
    )
    run_compare(tiny_checkpoints[:1], cfg, echo=lambda s: None)
    assert (tmp_path / "again/gru/sample-001.mid").read_bytes() == (
        plain_page.out / "gru/sample-001.mid"
    ).read_bytes()


def test_blind_page_hides_and_shuffles_the_names(blind_page):
    s = blind_page.summary
    names = [c["name"] for c in s["columns"]]
    assert "gru" in names and "transformer" in names and "real continuation" in names
    page = check_page(blind_page.out, rows=2, columns=len(names))
    for cell in page.cells:
        assert cell["text"].strip().startswith(chr(65 + cell["pos"]))
        for n in names:
            assert n not in cell["text"]
        for ref in cell["audio"] + cell["img"] + cell["midi"]:
            assert not any(n in ref for n in ("gru", "transformer", "real", "ngram")), ref
    html = (blind_page.out / "index.html").read_text(encoding="utf-8")
    outside_json = html.split('<script type="application/json"')[0]
    for n in names:
        assert n not in outside_json
    assert 'id="reveal"' in html and 'id="download"' in html
    data = json.loads(page.json_text)
    assert data["settings"]["blind"] is True
    orders = [r["order"] for r in data["rows"]]
    assert all(sorted(o) == list(range(len(names))) for o in orders)
    assert "gru" in data["results_html"]  # the statistics appear on Reveal
    assert "wrote" in blind_page.output


def test_blind_orders_follow_the_seed(blind_page):
    """Each row of the page lists its cells in its row's order (read back from the HTML),
    every order is a permutation, and the orders are the seed's: the same again for it,
    others for another seed, and not one fixed order."""
    import re

    from musicgen.listen.session import column_orders

    columns = blind_page.summary["columns"]
    html = (blind_page.out / "index.html").read_text(encoding="utf-8")
    shown = re.findall(r'<td class="cell" data-row="(\d+)".*?<audio [^>]*src="([^"]+)"', html)
    for row in blind_page.summary["rows"]:
        r, order = row["row"], row["order"]
        assert sorted(order) == list(range(len(columns)))
        wavs = [wav for rr, wav in shown if int(rr) == r]
        assert wavs == [columns[c]["cells"][r]["wav"] for c in order]
    orders = [row["order"] for row in blind_page.summary["rows"]]
    assert orders == column_orders(len(columns), len(orders), 3, blind=True)
    many = column_orders(4, 50, seed=3, blind=True)
    assert many == column_orders(4, 50, seed=3, blind=True)
    assert many != column_orders(4, 50, seed=4, blind=True)
    assert len({tuple(o) for o in many}) > 10  # 24 orders of 4: a fixed one would be 1
    assert column_orders(4, 3, seed=3, blind=False) == [[0, 1, 2, 3]] * 3


def test_missing_checkpoint_is_one_line(tmp_path, tiny_dataset):
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            str(tmp_path / "nope.ckpt"),
            "--out",
            str(tmp_path / "o"),
            "--data",
            str(tiny_dataset),
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: no checkpoint at {tmp_path / 'nope.ckpt'}"


def test_no_primer_and_no_data_is_one_line(tmp_path, tiny_checkpoints):
    result = CliRunner().invoke(
        cli, ["compare", str(tiny_checkpoints[0]), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.strip().count("\n") == 0
    assert "--primer" in result.output and "--data" in result.output


def test_a_foreign_checkpoint_is_one_line(tmp_path, tiny_dataset):
    fake = tmp_path / "fake.ckpt"
    fake.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(
        cli, ["compare", str(fake), "--out", str(tmp_path / "o"), "--data", str(tiny_dataset)]
    )
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0


def test_the_ngram_is_sampled_like_any_model(tiny_dataset):
    """Behind the cores' interface the n-gram goes through generate_songs: the grammar,
    the length target and the seed hold for it as for the neural models."""
    from musicgen.config import GenerateConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.evaluate import fit_ngram
    from musicgen.generate import generate_songs
    from musicgen.ngram import ngram_model

    ds = TokenDataset.open(tiny_dataset)
    lm = fit_ngram([np.asarray(d, dtype=np.int64) for d in ds.documents("train")], len(ds.vocab), 3)
    model = ngram_model(lm, 3, ds.vocab)
    cfg = GenerateConfig(num_samples=2, seed=5, unit="bars", length=1, instruments=(0,))
    a, _ = generate_songs(model, cfg)
    b, _ = generate_songs(model, cfg)
    assert all(np.array_equal(x.ids, y.ids) for x, y in zip(a, b, strict=True))
    for song in a:
        assert song.score.num_notes > 0 and song.score.end <= 4 + 1e-9  # one bar of 4/4
        stream = ds.vocab.stream()
        for t in song.ids.tolist():
            assert ds.vocab.allowed(stream)[t], ds.vocab.tokens[t]
            stream.feed(ds.vocab.uids[t])
