"""The listening page: index.html from a compare summary, with the page's CSS and
JavaScript read from package files (page/compare.css, page/compare.js)."""

from __future__ import annotations

import html
import json
import math
from importlib import resources

TABLE_COLUMNS = (
    ("bits_per_note", "held-out bits/note", "{:.3f}"),
    ("notes", "notes", "{:.0f}"),
    ("pitch_class_entropy", "pitch-class entropy (bits)", "{:.2f}"),
    ("pitch_range", "pitch range (semitones)", "{:.1f}"),
    ("polyphony", "polyphony", "{:.2f}"),
    ("scale_consistency", "scale consistency", "{:.1%}"),
    ("note_density", "notes / beat", "{:.2f}"),
    ("empty_beat_rate", "empty beats", "{:.1%}"),
    ("distinct_4gram_share", "distinct 4-grams", "{:.1%}"),
    ("longest_repeat_run", "longest repeat (notes)", "{:.1f}"),
    ("recurring_bar_share", "bars that recur", "{:.1%}"),
    ("recurrence_distance", "bars to the nearest recurrence", "{:.1f}"),
    ("longest_copied_run", "longest copy from training (notes)", "{:.1f}"),
    ("ngram8_in_train", "8-grams found in training", "{:.1%}"),
)


def _asset(name: str) -> str:
    """A file of the page (musicgen/listen/page/), shipped as package data."""
    return (resources.files("musicgen.listen") / "page" / name).read_text(encoding="utf-8")


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return spec.format(v)


def results_table(summary: dict) -> str:
    """The statistics table: one row per candidate plus the validation set, as HTML."""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in TABLE_COLUMNS)
    out = [f'<table class="stats"><tr><th>candidate</th>{head}</tr>']

    def row(name: str, title: str, s: dict | None, bpn) -> str:
        cells = []
        for key, _, spec in TABLE_COLUMNS:
            if key == "bits_per_note":
                cells.append(f"<td>{_fmt(bpn, spec)}</td>")
            else:
                v = (s or {}).get(key)
                cells.append(
                    f"<td>{_fmt(v.get('mean') if isinstance(v, dict) else None, spec)}</td>"
                )
        return f'<tr><td title="{html.escape(title)}">{html.escape(name)}</td>{"".join(cells)}</tr>'

    for c in summary["columns"]:
        out.append(
            row(
                c["name"],
                f"{c['detail']} {c.get('eval_note') or ''}".strip(),
                c["summary"],
                c["bits_per_note"],
            )
        )
    ref = summary.get("reference_set")
    if ref:
        out.append(
            row(f"real music (validation set, {ref['pieces']} pieces)", "whole pieces", ref, None)
        )
    out.append("</table>")
    out.append(
        '<p class="meta">Statistics are means over the samples of the new music only (the primer left out); '
        "beats are quarter notes; drums are left out. Bits/note: held-out likelihood on the dataset's "
        "validation split. Longest copy: most consecutive notes (pitch sequence, simultaneous notes high to low) "
        "found verbatim in one training piece.</p>"
    )
    return "\n".join(out)


def _what(summary: dict) -> str:
    """What each sample is, for the page's first line."""
    s, task = summary["settings"], summary.get("task") or {}
    if "infill" in task:
        t = task["infill"]
        return f"{s['samples']} versions of bars {t['start']}-{t['end']} written between the music before and after them"
    if "accompany" in task:
        return f"{s['samples']} accompaniments around the kept part ({task['accompany']['keep']})"
    return f"{s['samples']} samples of {s['bars']} bars after a {s['primer_bars']}-bar primer"


def build_page(summary: dict) -> str:
    """index.html for a compare summary (see `run_compare`); every path in it is relative."""
    blind = summary["settings"]["blind"]
    cols = summary["columns"]
    esc = html.escape
    s = summary["settings"]
    title = "musicgen: blind listening test" if blind else "musicgen: listen and compare"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_asset('compare.css')}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{_what(summary)}; '
        f"seed {s['seed']}, temperature {s['temperature']:g}, top-k {s['top_k']}, top-p {s['top_p']:g}. "
        f"Audio: {esc(summary['audio'])}. Created {esc(summary['created'])} by musicgen {esc(summary['musicgen_version'])}.</p>",
    ]
    if blind:
        parts.append(
            '<p class="meta">Each row lists the same candidates in a new random order, labelled A, B, C... '
            "Mark your favourite in each row, then press Reveal.</p>"
        )
    for n in summary.get("notes") or []:
        parts.append(f'<p class="meta note">{esc(n)}</p>')
    p = summary["primer"]
    task = summary.get("task") or {}
    heading = "The piece" if task else "Primer"
    parts.append(
        f'<h2>{heading}</h2><div class="primer"><div><audio controls preload="metadata" src="{esc(p["wav"])}"></audio>'
        f'<br><a href="{esc(p["midi"])}" download>primer MIDI</a><p class="meta">{esc(p["source"])}</p></div>'
        f'<img src="{esc(p["png"])}" alt="piano roll of the primer"></div>'
    )
    parts.append(
        "<h2>Infills</h2>"
        if "infill" in task
        else "<h2>Accompaniments</h2>"
        if task
        else "<h2>Continuations</h2>"
    )
    parts.append('<table class="grid"><thead><tr><th class="rowhead">sample</th>')
    for pos in range(len(cols)):
        label = chr(65 + pos) if blind else cols[pos]["name"]
        parts.append(f"<th>{esc(label)}</th>")
    parts.append("</tr></thead><tbody>")
    for row in summary["rows"]:
        r = row["row"]
        parts.append(f'<tr><th class="rowhead">{r + 1}</th>')
        for pos, ci in enumerate(row["order"]):
            c = cols[ci]
            cell = c["cells"][r]
            label = chr(65 + pos) if blind else c["name"]
            name_span = (
                f'<span class="name" data-row="{r}" data-pos="{pos}"></span>' if blind else ""
            )
            alt = (
                f"piano roll {chr(65 + pos)}"
                if blind
                else f"piano roll of {c['name']}, sample {r + 1}"
            )
            parts.append(
                f'<td class="cell" data-row="{r}" data-pos="{pos}"><div><span class="label">{esc(label)}</span>{name_span}</div>'
                f'<audio controls preload="metadata" src="{esc(cell["wav"])}"></audio>'
                f'<img src="{esc(cell["png"])}" alt="{esc(alt)}">'
                f'<div class="links"><a href="{esc(cell["midi"])}" download>MIDI</a>'
                f'<label><input type="radio" class="vote" name="vote-{r}" data-row="{r}" data-pos="{pos}"> favourite</label></div></td>'
            )
        parts.append("</tr>")
    parts.append("</tbody></table>")
    parts.append('<div class="controls">')
    if blind:
        parts.append('<button id="reveal" type="button">Reveal</button>')
    parts.append(
        '<button id="download" type="button">Download votes</button> <a id="download-link" hidden></a></div>'
    )
    parts.append('<div id="tally"></div>')
    table = results_table(summary)
    if blind:
        parts.append('<h2>Statistics</h2><section id="results" hidden></section>')
    else:
        parts.append(f'<h2>Statistics</h2><section id="results">{table}</section>')
    data = {**summary, "results_html": table if blind else ""}
    blob = json.dumps(data, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")
    parts.append(f'<script type="application/json" id="compare-data">{blob}</script>')
    parts.append(f"<script>{_asset('compare.js')}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
