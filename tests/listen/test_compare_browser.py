"""The blind comparison page in headless Chromium: audio loads, Reveal works, it renders.

A harness page served beside index.html (same origin, through a local http.server)
loads it in an iframe, waits for every <audio> element to load its metadata or
fail, clicks a favourite and Reveal, and writes what it saw into its own DOM,
which Chromium's --dump-dom prints.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from musicgen.listen.pianoroll import png_size

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless test needs Debian's /usr/bin/chromium (apt-get install chromium)",
)

HARNESS = r"""<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<pre id="result">pending</pre>
<audio id="control" preload="metadata" src="no-such-file.wav"></audio>
<iframe id="f" src="index.html" width="1200" height="900"></iframe>
<script>
var done = false;
var f = document.getElementById("f");
var control = document.getElementById("control");
f.addEventListener("load", function () {
  var doc = f.contentDocument, win = f.contentWindow;
  var audios = Array.prototype.slice.call(doc.querySelectorAll("audio")).concat([control]);
  var left = audios.length, seen = audios.map(function () { return false; });
  function finish(timedOut) {
    if (done) { return; }
    done = true;
    var before = Array.prototype.map.call(doc.querySelectorAll(".name"), function (e) { return e.textContent; });
    var radio = doc.querySelector('input.vote[data-row="0"][data-pos="1"]');
    radio.click();
    doc.getElementById("reveal").click();
    var after = Array.prototype.map.call(doc.querySelectorAll(".name"), function (e) { return e.textContent; });
    var votes = win.musicgenCompare.votes();
    document.getElementById("result").textContent = JSON.stringify({
      timedOut: timedOut,
      audios: audios.map(function (a) {
        return {src: a.getAttribute("src"), readyState: a.readyState, error: a.error ? a.error.code : null, duration: a.duration};
      }),
      namesBefore: before, namesAfter: after, votes: votes,
      resultsHidden: doc.getElementById("results").hidden,
      resultsText: doc.getElementById("results").textContent.slice(0, 2000),
      downloadButton: !!doc.getElementById("download"),
      images: Array.prototype.map.call(doc.querySelectorAll("img"), function (i) { return [i.getAttribute("src"), i.complete && i.naturalWidth > 0, i.getBoundingClientRect().width]; }),
      styled: win.getComputedStyle(doc.querySelector("table.grid")).borderCollapse,
      cells: doc.querySelectorAll("td.cell").length
    });
  }
  function settle(i) { if (!seen[i]) { seen[i] = true; left -= 1; if (left === 0) { finish(false); } } }
  audios.forEach(function (a, i) {
    if (a.readyState >= 1 || a.error) { settle(i); return; }
    a.addEventListener("loadedmetadata", function () { settle(i); });
    a.addEventListener("error", function () { settle(i); });
  });
  setTimeout(function () { finish(true); }, 15000);
});
</script></body></html>
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(blind_page, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(blind_page.out, site)
    (site / "harness.html").write_text(HARNESS, encoding="utf-8")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--mute-audio",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False
    )


def test_page_in_headless_chromium(served, blind_page, tmp_path):
    url, site = served
    proc = chromium(tmp_path, "--virtual-time-budget=30000", "--dump-dom", f"{url}/harness.html")
    m = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"no result in the dumped DOM (exit {proc.returncode}): {proc.stderr[-800:]}"
    result = json.loads(html.unescape(m.group(1)))
    assert not result["timedOut"], result

    *page_audio, control = result["audios"]
    summary = blind_page.summary
    cols = summary["columns"]
    assert len(page_audio) == 1 + len(summary["rows"]) * len(cols)  # the primer and every cell
    for a in page_audio:
        assert a["readyState"] >= 1 and a["error"] is None, a
        assert a["duration"] > 0.5, a
    assert (
        control["error"] is not None
    )  # the harness can see a failure: a missing file does not load

    # names are hidden until Reveal, then match the shuffled order stored in the page
    assert all(n == "" for n in result["namesBefore"])
    expected = [cols[i]["name"] for r in summary["rows"] for i in r["order"]]
    assert result["namesAfter"] == expected
    assert result["resultsHidden"] is False and "bits/note" in result["resultsText"]
    votes = result["votes"]
    chosen = cols[summary["rows"][0]["order"][1]]["name"]
    assert votes["votes"] == [
        {"row": 1, "choice": "B", "candidate": chosen, "order": expected[: len(cols)]}
    ]
    assert votes["tally"][chosen] == 1 and sum(votes["tally"].values()) == 1
    assert result["downloadButton"]
    # what the browser drew: the stylesheet applied, a cell per sample and candidate, every piano roll loaded and shown
    assert result["styled"] == "collapse"
    assert result["cells"] == len(summary["rows"]) * len(cols)
    assert result["images"] and all(
        loaded and width > 50 for _, loaded, width in result["images"]
    ), result["images"]


def test_screenshot_shows_the_page(served, tmp_path):
    """The page as pixels: not blank, with dark text near the top and the colours of the piano rolls."""
    import matplotlib.image

    url, _ = served
    shot = tmp_path / "page.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", f"{url}/index.html")
    assert shot.exists(), proc.stderr[-800:]
    assert png_size(shot) == (1200, 900)
    rgb = matplotlib.image.imread(str(shot))[..., :3]  # (900, 1200, 3) in 0..1
    assert rgb.std() > 0.05, "a blank page"
    assert (rgb[:120].max(axis=-1) < 0.3).mean() > 0.002, "no dark text in the heading"
    colourful = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3
    assert colourful.mean() > 0.001, "no coloured notes from the piano rolls"
