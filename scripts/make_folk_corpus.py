"""Regenerate data/folk/ from folk dance tunes in the ABC collections shipped with music21.

A benchmark corpus of musical *form*: reels, jigs, hornpipes and airs whose strains repeat
(AABB, ...), written out as single-track melody MIDI with every repeat expanded.

Sources, two folders of music21's core corpus:

* ``ryansMammoth`` -- Ryan's Mammoth Collection (Boston, 1883), 1059 fiddle tunes, one ABC
  file each, transcribed by Ray Davies, John Chambers and others.  All are used (a dozen
  byte-identical copies under a second name once).
* ``oneills1850`` -- O'Neill's Music of Ireland (Chicago, 1903), the "1850 melodies",
  transcribed by Norbert Paap, Henrik Norbeck, Bob Safranek and others.  Tunes are
  deduplicated by number (the first file in sorted order wins where two transcriptions
  exist) and every 4th one is kept, to land the whole corpus near 1500 tunes.

Not used: ``airdsAirs`` (Aird's Airs, 1778-1803, ~1180 tunes), ``essenFolksong`` (~8500
short songs, whose license.txt grants non-commercial use only), ``miscFolk`` and the
two-tune ``nottingham-dataset`` sample.

The tunes are traditional and both printed books are in the public domain.  music21 itself
is BSD-licensed; its corpus/license.txt says the corpus encodings are distributed with the
encoders' permission, that some "may not be used for commercial uses or have other
restrictions", and points to licences in individual files or folders -- these two folders
and their ABC files carry none, only the transcribers' names (Z: lines).

Each tune is parsed with music21 (H fermatas respelt !fermata!: music21 drops the note
after an H) and its first (only) part taken.  Implicit repeat starts are made explicit
(``A:|B:|`` is AABB, which music21 would play AABAB; a pickup is played once when the strain
ends on a full bar), then repeats are expanded (``expandRepeats``), tied notes merged, grace
notes and ABC chord symbols dropped (melody only), and the bars laid out so that MIDI bar
lines fall on the tune's bar lines: a pickup is preceded by a rest, and a strain whose last
bar is short is padded with silence.  The ABC Q: tempo is kept; without one, 120 quarter
notes a minute is written.  Each MIDI file has one track, program 0, named by the title.
Tunes are skipped when they fail to parse or expand, when music21 had to invent a time
signature to fit a malformed bar, when expanding them gives over 2.5 times the written
notes, or when the expanded tune has fewer than 8 bars or 24 notes.  The output folder's
MIDI files are rebuilt from scratch, so re-running gives the same files.

    python scripts/make_folk_corpus.py [--out data/folk] [--jobs 2] [--no-check]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ONEILLS_EVERY = 4
DEFAULT_QPM = 120
MIN_BARS, MIN_NOTES = 8, 24
MAX_GROWTH = 2.5


README = """\
# data/folk -- folk dance tunes with their repeats written out

{kept} single-track melody MIDI files, one per tune
({per_collection}), for benchmarking musical form: reels, jigs, hornpipes, airs whose strains repeat (AABB ...).
Every repeat and first/second-time bar is expanded, so the MIDI plays the tune as a fiddler
would ({lengthened} tunes are longer than written).  Named `<collection>-<tune>.mid`.

- Source: ABC transcriptions in music21's own corpus (`music21/corpus/ryansMammoth`, all 1059
  tunes of Ryan's Mammoth Collection, Boston 1883; `music21/corpus/oneills1850`, every {every}th tune
  in number order of O'Neill's Music of Ireland, Chicago 1903).
- Licence: the tunes are traditional and the books public domain.  music21 is BSD-licensed;
  its corpus licence note says encodings are shared with the encoders' permission, some may
  carry non-commercial or other restrictions, and these folders state none (transcribers
  are named in the ABC Z: fields).  Treat the files as free for research/non-commercial use.
- Content: melody only (ABC chord symbols, grace notes dropped; ties merged; the odd double
  stop kept); ABC time and key signatures; the ABC Q: tempo, else {qpm} quarter notes a
  minute.  Bars are laid out so MIDI bar lines fall on the tune's bar lines (a pickup is
  preceded by a rest; a short last bar of a strain is padded with silence).  Program 0.
- Made by `python scripts/make_folk_corpus.py` (re-running rebuilds the same files).

Skipped:

{skipped}
"""


def _tunes(root: Path) -> list[tuple[str, str]]:
    """(file stem, ABC text) of every tune to export, in a fixed order."""
    jobs = [
        (f"ryansMammoth-{p.stem}", p.read_text(encoding="latin-1"))
        for p in sorted((root / "ryansMammoth").glob("*.abc"))
    ]
    oneills: dict[int, str] = {}
    for p in sorted((root / "oneills1850").glob("*.abc")):
        lo, hi = map(int, re.findall(r"\d+", p.stem)[:2])  # e.g. 0626-0700_mh.abc
        for text in re.split(r"(?m)^(?=X:)", p.read_text(encoding="latin-1")):
            x = re.match(r"X:\s*(\d+)", text)
            if not x:
                continue
            number = int(x[1])
            book = re.search(r"(?m)^B:.*?O'?Neill'?s\D*(\d+)", text, re.IGNORECASE)
            if not lo <= number <= hi and book and lo <= int(book[1]) <= hi:
                number = int(book[1])  # a few X: fields are wrong (X:0 for No. 1646)
            oneills.setdefault(number, text)
    numbers = sorted(oneills)[::ONEILLS_EVERY]
    jobs += [(f"oneills1850-{n:04d}", oneills[n]) for n in numbers]
    return jobs


def _fix_fermatas(text: str) -> str:
    """Spell the ABC fermata decoration H as !fermata!: music21 drops the note after an H."""
    return re.sub(
        r'(?m)^[A-Za-z]:.*$|"[^"\n]*"|%.*$|H(?=[_=^]*[A-Ga-gz])',
        lambda m: "!fermata!" if m[0] == "H" else m[0],
        text,
    )


def _close_open_repeats(part) -> None:
    """Make explicit the repeat starts that ABC leaves implicit, the way a fiddler reads them.

    ``A...:|B...:|`` means AABB, but music21 sends an end repeat with no start repeat back to
    the top of the tune (AABAB).  Here a repeat starts after the previous end repeat (and its
    second-time bar, if any) or double bar, unless the ABC gave a |:.  A pickup bar is left
    out of the repeat when the strain ends on a full bar (it is played once, going in).
    """
    from music21 import bar, spanner, stream

    def partial(m) -> bool:
        return m.duration.quarterLength < m.barDuration.quarterLength - 1e-6

    measures = list(part.getElementsByClass(stream.Measure))
    index = {id(m): i for i, m in enumerate(measures)}
    after_bracket = {}  # measure index inside a 2nd/3rd-time bar -> index just past that bar
    for rb in part.spannerBundle.getByClass(spanner.RepeatBracket):
        spanned = [index[id(m)] for m in rb.getSpannedElements() if id(m) in index]
        if spanned and rb.number != "1":
            for i in spanned:
                after_bracket[i] = max(spanned) + 1
    section, start = 0, None  # where the current strain began; where its |: is, if any
    for i, m in enumerate(measures):
        left, right = m.leftBarline, m.rightBarline
        if isinstance(left, bar.Repeat):
            start = i
        elif isinstance(left, bar.Barline) and left.type in ("double", "final") and i > section:
            section, start = i, None
        if isinstance(right, bar.Repeat) and right.direction == "end":
            begin = section if start is None else start
            if begin < i and partial(measures[begin]) and not partial(m):
                if start is not None:
                    measures[begin].leftBarline = None
                begin += 1
            if begin != start:
                measures[begin].leftBarline = bar.Repeat(direction="start")
            section, start = after_bracket.get(i + 1, i + 1), None
        elif isinstance(right, bar.Barline) and right.type in ("double", "final"):
            section, start = max(section, i + 1), None


def _export(args: tuple[str, str, str]) -> tuple[str, str | None, int, int]:
    """Write one tune; return (name, skip reason or None, written notes, expanded notes)."""
    name, text, out = args
    from music21 import converter, harmony, instrument, key, meter, stream, tempo

    try:
        score = converter.parseData(_fix_fermatas(text), format="abc")
        if isinstance(score, stream.Opus):
            score = score.scores[0]
        part = score.parts[0]
    except Exception:  # music21 raises many types
        return name, "parse failed", 0, 0
    declared = {  # the ABC M: fields, header and inline
        {"C": "4/4", "C|": "2/2"}.get(a or b, a or b)
        for a, b in re.findall(r"(?m)^M:\s*(\S+)|\[M:\s*([^\]\s]+)", text)
    }
    found = {ts.ratioString for ts in part.recurse().getElementsByClass(meter.TimeSignature)}
    if not found <= declared:
        return name, "malformed bar (invented time signature)", 0, 0
    written = sum(1 for n in part.flatten().notes if not n.duration.isGrace)
    try:
        _close_open_repeats(part)
        for m in part.getElementsByClass(stream.Measure):  # tell a short last bar from a pickup
            m.editorial.ends_strain = (
                m.rightBarline is not None and m.rightBarline.type != "regular"
            )
        part = part.expandRepeats().stripTies()
    except Exception:
        return name, "repeat expansion failed", written, 0

    # Lay the bars end to end so that every full bar starts on a MIDI bar line: a pickup bar
    # ends on one, and a strain whose last bar is short (the ABC left out a rest, or the pickup
    # that follows it is missing) is padded with silence.
    melody = stream.Part()
    track = instrument.Instrument()  # program 0, like data/midi; its name titles the track
    track.partName = (score.metadata.title or name).encode("ascii", "ignore").decode()
    melody.insert(0.0, track)
    measures = list(part.getElementsByClass(stream.Measure))
    notes, last = [], {}
    origin, length, cursor, meter_now = 0.0, 4.0, 0.0, None

    def grid(x: float) -> float:  # the first bar line at or after x
        return origin + math.ceil((x - origin) / length - 1e-6) * length

    for i, m in enumerate(measures):
        ts = m.timeSignature
        if ts is not None and ts.ratioString != meter_now:
            origin = cursor = grid(cursor) if meter_now else 0.0
            meter_now, length = ts.ratioString, ts.barDuration.quarterLength
        size = m.duration.quarterLength
        next_full = (
            i + 1 < len(measures) and measures[i + 1].duration.quarterLength >= length - 1e-6
        )
        if size >= length - 1e-6:
            begin = grid(cursor)
        elif next_full and not m.editorial.get("ends_strain"):
            begin = grid(cursor + size) - size  # a pickup
        else:
            begin = cursor
        inner = m.flatten()
        for el in inner.getElementsByClass(
            (meter.TimeSignature, key.KeySignature, tempo.MetronomeMark)
        ):
            kind = tempo.MetronomeMark if isinstance(el, tempo.MetronomeMark) else type(el)
            if last.get(kind) != repr(el):  # expandRepeats copies these onto every repeat
                last[kind] = repr(el)
                at = origin if isinstance(el, meter.TimeSignature) else begin
                melody.insert(at + inner.elementOffset(el) if i else 0.0, el)
        for n in inner.notes:
            if not n.duration.isGrace and not isinstance(n, harmony.Harmony):
                notes.append((begin + inner.elementOffset(n), n))
        cursor = begin + size
    if tempo.MetronomeMark not in last:
        melody.insert(0.0, tempo.MetronomeMark(number=DEFAULT_QPM))

    if len(notes) > MAX_GROWTH * written:  # left-over repeat ambiguity, or D.C. and segno
        return name, f"expands to over {MAX_GROWTH}x its written notes", written, len(notes)
    if len(notes) < MIN_NOTES or cursor < MIN_BARS * length - 1e-6:
        return name, f"shorter than {MIN_BARS} bars or {MIN_NOTES} notes", written, len(notes)
    for offset, n in notes:
        melody.insert(offset, n)
    melody.write("midi", fp=out)
    return name, None, written, len(notes)


def check(out: Path, root: Path) -> None:
    """Load every file with symusic and print counts and a rough test that form is there."""
    import symusic
    from music21 import converter

    counts, bars, recurring = [], [], 0
    for path in sorted(out.glob("*.mid")):
        score = symusic.Score(str(path))
        notes = score.tracks[0].notes
        ts = score.time_signatures[0]
        bar_ticks = score.ticks_per_quarter * 4 * ts.numerator // ts.denominator
        per_bar: dict[int, list] = {}
        for n in notes:
            per_bar.setdefault(n.time // bar_ticks, []).append(
                (n.time % bar_ticks, n.duration, n.pitch)
            )
        n_bars = max(per_bar) + 1
        counts.append(len(notes))
        bars.append(n_bars)
        spans: dict[tuple, int] = {}
        for i in range(n_bars - 3):
            span = tuple(tuple(per_bar.get(i + k, ())) for k in range(4))
            if any(span) and i - spans.setdefault(span, i) >= 4:
                recurring += 1
                break
    print(
        f"check: {len(counts)} files load, {sum(counts)} notes, median {statistics.median(counts)}"
        f" notes and {statistics.median(bars)} bars per tune; {recurring / len(counts):.0%}"
        " repeat some 4-bar span exactly (pitch and rhythm)"
    )
    for stem in ("AcaciaReel", "AdmiralsHornpipe", "AndrewCareysSlipjig", "BagOfMealThe"):
        path = out / f"ryansMammoth-{stem}.mid"
        if path.exists():
            written = converter.parse(root / "ryansMammoth" / f"{stem}.abc").parts[0]
            midi = symusic.Score(str(path))
            print(
                f"check: {stem}: written {written.highestTime:g} quarters,"
                f" MIDI {midi.end() / midi.ticks_per_quarter:g} quarters"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/folk", help="output folder")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--no-check", action="store_true", help="skip the symusic check")
    ns = parser.parse_args()

    from music21 import corpus

    start = time.monotonic()
    root = Path(corpus.__file__).parent
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.mid"):
        stale.unlink()
    kept: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    jobs, seen = [], set()
    for name, text in _tunes(root):
        body = re.sub(r"(?m)^X:.*\n", "", text).strip()
        if body in seen:  # ryansMammoth holds a dozen byte-identical copies under two names
            skipped["identical to an earlier file"] += 1
            print(f"skipped {name}: identical to an earlier file", file=sys.stderr)
            continue
        seen.add(body)
        jobs.append((name, text, str(out / f"{name}.mid")))
    lengthened = 0
    with ProcessPoolExecutor(ns.jobs) as pool:
        for i, (name, reason, written, expanded) in enumerate(
            pool.map(_export, jobs, chunksize=8), 1
        ):
            collection = name.split("-")[0]
            if reason:
                skipped[reason] += 1
                print(f"skipped {name}: {reason}", file=sys.stderr)
            else:
                kept[collection] += 1
                lengthened += expanded > written
            if i % 100 == 0 or i == len(jobs):
                print(f"[{i}/{len(jobs)}] {time.monotonic() - start:.0f}s", file=sys.stderr)
    print(
        f"wrote {sum(kept.values())} MIDI files to {out}: "
        + ", ".join(f"{c} {k}" for c, k in sorted(kept.items()))
        + f"; {lengthened} made longer by expanding repeats"
    )
    for reason, k in sorted(skipped.items()):
        print(f"skipped {k}: {reason}")
    (out / "README.md").write_text(
        README.format(
            kept=sum(kept.values()),
            per_collection=", ".join(f"{k} from `{c}`" for c, k in sorted(kept.items())),
            lengthened=lengthened,
            skipped="\n".join(f"- {k}: {reason}" for reason, k in sorted(skipped.items())),
            every=ONEILLS_EVERY,
            qpm=DEFAULT_QPM,
        )
    )
    print(f"took {time.monotonic() - start:.0f}s")
    if not ns.no_check:
        check(out, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
