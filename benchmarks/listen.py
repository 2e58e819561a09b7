"""The listening figures of docs/results.md: a comparison of the pretrained models.

    python benchmarks/listen.py [--samples 10] [--bars 8] [--out work/readme-compare]

Runs `musicgen compare` on the shipped models against the bundled corpus (same
held-out primer and seeds for every model, plus the real continuation and a
Kneser-Ney baseline), copies the first row's piano rolls to docs/img/, and
prints the statistics table as Markdown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def markdown_table(summary: dict) -> str:
    from musicgen.listen.page import TABLE_COLUMNS, _fmt

    keys = [k for k, _, _ in TABLE_COLUMNS]
    head = "| source | " + " | ".join(label for _, label, _ in TABLE_COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(keys) + 1)]

    def row(name, s, bpn):
        cells = []
        for key, _, spec in TABLE_COLUMNS:
            v = (
                bpn
                if key == "bits_per_note"
                else ((s or {}).get(key) or {}).get("mean")
                if isinstance((s or {}).get(key), dict)
                else None
            )
            cells.append(_fmt(v, spec))
        return f"| {name} | " + " | ".join(cells) + " |"

    for c in summary["columns"]:
        rows.append(row(c["name"], c["summary"], c["bits_per_note"]))
    ref = summary.get("reference_set")
    if ref:
        rows.append(row(f"real music (validation set, {ref['pieces']} pieces)", ref, None))
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=ROOT / "work" / "bach")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "readme-compare")
    ap.add_argument("--img", type=Path, default=ROOT / "docs" / "img")
    ns = ap.parse_args()

    from musicgen.config import GenerateConfig
    from musicgen.listen.compare import CompareConfig, run_compare
    from musicgen.pretrained import pretrained_models

    models = list(pretrained_models().values())
    sampling = GenerateConfig(
        num_samples=ns.samples,
        unit="bars",
        length=ns.bars,
        seed=ns.seed,
        temperature=0.9,
        top_p=0.95,
    )
    cfg = CompareConfig(out=ns.out, data=ns.data, sampling=sampling)
    summary = run_compare(models, cfg, echo=lambda *a, **k: None)
    ns.img.mkdir(parents=True, exist_ok=True)
    summary_path = ns.out / "compare.json"
    data = json.loads(summary_path.read_text())
    for c in data["columns"]:
        png = next((cell.get("png") for cell in c.get("cells", []) if cell.get("png")), None)
        if png:
            shutil.copy(
                ns.out / png, ns.img / f"pianoroll-{c['name'].split()[0].replace('/', '-')}.png"
            )
    print(markdown_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
