"""Score -> piano-roll PNG: pitch against time in seconds, bar lines, one colour per instrument.

Drawn with matplotlib's Agg canvas on a private Figure (no pyplot state), so it
works headless and from several threads. The image is exactly
``width * dpi`` x ``height * dpi`` pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicgen.fsutil import atomic_write_bytes
from musicgen.midi.score import Score

GM_FAMILIES = (
    "Piano",
    "Chromatic percussion",
    "Organ",
    "Guitar",
    "Bass",
    "Strings",
    "Ensemble",
    "Brass",
    "Reed",
    "Pipe",
    "Synth lead",
    "Synth pad",
    "Synth effects",
    "Ethnic",
    "Percussive",
    "Sound effects",
)

# Colour by program (program % 16), so an instrument has the same colour in every picture
# and neighbouring programs (violin, viola, cello) differ; the first eight are Okabe & Ito's
# colour-blind-friendly palette.
PROGRAM_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
    "#8c564b",
    "#17becf",
    "#d62728",
    "#9467bd",
    "#bcbd22",
    "#2ca02c",
    "#7f7f7f",
    "#e377c2",
)
DRUM_COLOUR = "#555555"


def instrument_name(program: int, drum: bool = False) -> str:
    if drum:
        return "Drums"
    return f"{GM_FAMILIES[int(program) // 8]} ({int(program)})"


def draw_pianoroll(
    score: Score,
    out: str | Path,
    *,
    width: float = 10.0,
    height: float = 3.5,
    dpi: int = 100,
    title: str | None = None,
    marks: list[tuple[float, str]] | None = None,
) -> Path:
    """Write a PNG of `score` to `out`; `marks` are (quarter, label) vertical markers."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.07, 0.16, 0.74, 0.74) if len(score.notes) else (0.07, 0.16, 0.9, 0.74))
    notes = score.notes
    end_s = max(score.duration_seconds, 1.0)

    # bar lines (and lighter beat lines when bars are few)
    bars = score.bar_lines()
    if bars:
        secs = score.quarters_to_seconds(np.array(bars))
        for x in secs.tolist():
            ax.axvline(x, color="#bbbbbb", lw=0.6, zorder=0)

    keys = sorted(
        {
            (bool(d), int(p))
            for d, p in zip(notes["drum"].tolist(), notes["program"].tolist(), strict=True)
        }
    )
    handles = []
    for drum, program in keys:
        sel = notes[(notes["drum"] == drum) & (notes["program"] == program)]
        s = score.quarters_to_seconds(sel["start"])
        e = score.quarters_to_seconds(sel["start"] + sel["duration"])
        colour = DRUM_COLOUR if drum else PROGRAM_COLOURS[program % len(PROGRAM_COLOURS)]
        h = ax.barh(
            sel["pitch"].astype(float),
            np.maximum(e - s, end_s / 2000),
            left=s,
            height=0.85,
            color=colour,
            edgecolor="none",
            alpha=0.9,
            label=instrument_name(program, drum),
        )
        handles.append(h)

    for quarter, label in marks or []:
        x = float(score.quarters_to_seconds(quarter))
        ax.axvline(x, color="#cc0000", lw=1.2, ls="--", zorder=3)
        ax.text(
            x,
            1.01,
            f" {label}",
            transform=ax.get_xaxis_transform(),
            color="#cc0000",
            fontsize=8,
            va="bottom",
        )

    ax.set_xlim(0, end_s)
    if len(notes):
        lo, hi = int(notes["pitch"].min()), int(notes["pitch"].max())
        ax.set_ylim(lo - 2, hi + 2)
        # octave ticks at every C in range
        cs = [p for p in range(lo - 2, hi + 3) if p % 12 == 0]
        ax.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs])
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            title="instrument",
            title_fontsize=8,
        )
    else:
        ax.set_ylim(48, 84)
        ax.text(
            0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center", color="#888888"
        )
    ax.set_xlabel("seconds", fontsize=9)
    ax.set_ylabel("pitch", fontsize=9)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # no bbox_inches: keep the exact pixel size
    atomic_write_bytes(out, buf.getvalue())
    return out


def png_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = Path(path).read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
