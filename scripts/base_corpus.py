"""Assemble the broad, openly licensed MIDI corpus that the base models are pretrained on.

Writes ``OUT/<collection>/...mid`` (one piece per MIDI file), ``OUT/SOURCES.tsv`` (one line per
file: relative path, collection, source, licence, sha256 of the written MIDI) and
``OUT/summary.json`` (per collection: files, notes, seconds, share with drums, kinds, licences,
and what was skipped and why).  The collections named by ``--collections`` (all by default) are
rebuilt from scratch; what each build wrote is kept in ``OUT/.parts/<collection>.json``, from
which SOURCES.tsv and summary.json are remade on every run, so collections can be built in
separate runs (or added later) and give the same files as one run.  Every step is
deterministic (the per-file limit counts CPU time, not wall time), so re-running gives
byte-identical files.

Sources and licences (see ../shared/corpora.md):

* music21's own corpus (the installed package, ``music21/corpus``):
  - folk tune books (ABC): ``ryansMammoth``, ``oneills1850`` (every tune), ``airdsAirs``,
    ``miscFolk``.  Traditional tunes from public-domain books; the ABC transcribers are named
    in each tune's Z: field.  Split into single tunes and written as make_folk_corpus.py
    does (imported from it: repeats expanded, melody only, bars on the tune's bar lines,
    its skip rules), byte-identical tunes once.
  - scores: ``bach`` (MusicXML; the three CCARH ``.krn`` copies of chorales that are also
    there as MusicXML are left out), ``palestrina`` (Humdrum), ``monteverdi``, ``trecento``
    with ``ciconia`` and ``luca``, ``josquin`` (ABC, GPL-2+), and the single-composer folders
    (Beethoven, Haydn and Mozart quartets, Schumann, Joplin, ...).  The licence of each
    file is read from its own rights field where it has one: CC-BY-SA 3.0 (Cuthbert's
    trecento editions, the Webern), CC-BY (the Corelli), CC0, otherwise public domain.
    Palestrina's encodings say "Copyright 2000, John Miller; rights to all derivative
    electronic formats reserved": they are kept, labelled so, and left out by
    ``--permissive-only``.  Files whose rights say "All Rights Reserved" or name a modern
    publisher (one lead sheet, two Monteverdi madrigals) are left out.
* Freedoom ``musics/*.mid`` (github freedoom/freedoom), BSD-3-Clause, copied as they are.
* OpenMSX (Debian ``openttd-openmsx``), GPL-2.0, copied.
* Planet Blupi music (Debian ``planetblupi-music-midi``), GPL-3+, copied.
* Groove MIDI Dataset (the copy in github zharry29/drums-with-llm, ``groove/``), CC-BY 4.0,
  by Jon Gillick, Adam Roberts, Jesse Engel, Douglas Eck and David Bamman (Magenta, "Learning
  to Groove with Inverse Sequence Transformations", ICML 2019): ``--groove-count`` beat
  performances (not fills), taken in turn from each style so all styles are present.
* OpenScore Lieder and OpenScore String Quartets (github OpenScore/*, ``scores/**.mxl``), CC0.
* ``ewld-mma``: OpenEWLD lead sheets (github 00sapo/OpenEWLD, ``dataset/**.mxl``, melody and
  chord symbols of public-domain songs) arranged by MMA (Debian ``mma``): the chords go
  through an MMA groove chosen by metre (waltzes for 3/4, swing, foxtrot, ballad, rock,
  bossa, dixie ... for 2/4 and 4/4; the pick hashed from the path; other metres skipped),
  and the melody is laid on its own track (program 65) over MMA's drums, bass and keys.
  Synthetic: a base may learn MMA's looped patterns, so it is a collection of its own, to
  leave out with ``--collections``.  Labelled GPL-2+ (MMA's groove library) and so left out
  by ``--permissive-only``.  MMA's random humanising is seeded (RndSeed 1).

``--every`` keeps every Nth file (in path order) of the biggest sets: by default every 4th
Palestrina movement and string quartet and every 2nd song, which lands the corpus near 10M
musicgen tokens with folk, classical, song and band music in proportion.

MusicXML, Humdrum and polyphonic ABC are parsed by music21 and written by this script
(``score_to_midi``: ties merged, grace notes dropped, dynamics as velocities, MIDI programs
from the parts' instruments, tempo and metre maps; repeat signs are not expanded): music21's
own MIDI writer takes ~40x longer on a string quartet.  Each file has ``--timeout`` CPU
seconds; failures and timeouts are skipped and counted in summary.json.

``--permissive-only`` keeps only public domain, CC0, BSD and CC-BY files (drops GPL,
CC-BY-SA and the rights-reserved Palestrina encodings).  ``--collections`` picks a subset.

Never included (held out to measure transfer, or not openly licensed): music21's
``essenFolksong`` (non-commercial permission only), ``nottingham-dataset`` and any other
Nottingham copy, Lakh, POP909, MAESTRO, ASAP, piano-midi.de, Pop-K, the MidiTok, symusic,
muspy and MIDI-GPT test fixtures, and ../shared/real-midi.  music21's ``demos``,
``theoryExercises`` and ``leadSheet`` test files are left out too (one lead sheet is
rights-reserved).

Bring the sources first (bare git dirs of freedoom/freedoom, OpenScore/Lieder,
OpenScore/StringQuartets, zharry29/drums-with-llm and 00sapo/OpenEWLD, by default looked for
in /work/.mirror under their fetched names and otherwise given with --freedoom, --lieder,
--quartets, --groove and --ewld; Debian packages with ``apt-get install -y openttd-openmsx
planetblupi-music-midi mma``), then, from anywhere (the output goes outside any git tree)::

    .venv/bin/python scripts/base_corpus.py --out /work/base-corpus --jobs 2

The base corpus of December 2026 (/work/base-corpus, 6,716 files, 11.2M musicgen tokens) was
built by several runs of ``--collections``; a rebuild of seven of its collections in one run
gave the same sha256 for all 1,137 files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_folk_corpus as folk  # noqa: E402  (a sibling script, not a package)

MIRROR = Path("/work/.mirror")
OPENMSX_DIR = Path("/usr/share/games/openttd/baseset/openmsx")
BLUPI_DIR = Path("/usr/share/planetblupi/music")
TPQ = 480
DEFAULT_VELOCITY = 80
PARTS = ".parts"  # OUT/.parts/<collection>.json: what each collection's last build wrote
DEFAULT_QPM = 120.0

PD = "public domain"
CC0 = "CC0-1.0"
CC_BY = "CC-BY-4.0"
CC_BY_SA = "CC-BY-SA-3.0"
BSD = "BSD-3-Clause"
GPL2 = "GPL-2.0"
GPL2_PLUS = "GPL-2.0-or-later"
GPL3_PLUS = "GPL-3.0-or-later"
RESERVED = "encoding (c) 2000 John Miller, derivative electronic formats reserved"
PERMISSIVE = {PD, CC0, CC_BY, BSD, "CC-BY"}

# Which group each collection counts towards in the mix.
GROUPS = {
    "freedoom": "band",
    "openmsx": "band",
    "planetblupi": "band",
    "groove": "band",
    "ryans-mammoth": "folk",
    "oneills-1850": "folk",
    "airds-airs": "folk",
    "misc-folk": "folk",
    "bach": "classical",
    "palestrina": "classical",
    "monteverdi": "classical",
    "trecento": "classical",
    "josquin": "classical",
    "m21-composers": "classical",
    "openscore-quartets": "classical",
    "openscore-lieder": "song",
    "ewld-mma": "band",
}
COLLECTIONS = tuple(GROUPS)
# Every Nth file (in path order) of the biggest sets, so that they do not outweigh the rest:
# all 1,318 Palestrina movements, 122 quartets and 1,460 songs would be ~9M tokens alone.
DEFAULT_EVERY = "palestrina=4,openscore-quartets=4,openscore-lieder=2"

# music21 corpus folders by collection; the "composers" folders are single works or opus sets.
M21_FOLDERS = {
    "bach": ["bach"],
    "palestrina": ["palestrina"],
    "monteverdi": ["monteverdi"],
    "trecento": ["trecento", "ciconia", "luca"],
    "josquin": ["josquin"],
    "m21-composers": [
        "beach", "beethoven", "chopin", "corelli", "cpebach", "handel", "haydn",
        "johnson_j_r", "joplin", "liliuokalani", "lusitano", "mozart", "schoenberg",
        "schubert", "schumann_clara", "schumann_robert", "verdi", "weber", "webern",
    ],
}  # fmt: skip
# OpenEWLD lead sheets rendered by MMA: grooves by metre (3 beats or 4), each with a tempo.
MMA_GROOVES = {
    3: {"Waltz": 132, "JazzWaltz": 150, "CountryWaltz": 132, "BroadwayWaltz": 144},
    4: {"Swing": 132, "Foxtrot": 120, "Ballad": 76, "50sRock": 140, "BossaNova": 128,
        "Folk": 110, "EasySwing": 112, "Broadway": 120, "Dixie": 150, "Charleston": 150},
}  # fmt: skip
MMA_BEATS = {"3/4": 3, "2/4": 4, "4/4": 4, "2/2": 4}  # 2/4 and 2/2 go on a 4-beat groove
MMA_KINDS = {  # music21 chord kinds -> MMA chord names (after the root)
    "major": "", "minor": "m", "augmented": "aug", "diminished": "dim",
    "dominant-seventh": "7", "major-seventh": "M7", "minor-seventh": "m7",
    "diminished-seventh": "dim7", "augmented-seventh": "7#5", "half-diminished": "m7b5",
    "minor-major-seventh": "mM7", "major-sixth": "6", "minor-sixth": "m6",
    "dominant-ninth": "9", "major-ninth": "M9", "minor-ninth": "m9",
    "dominant-11th": "11", "dominant-13th": "13", "suspended-second": "sus2",
    "suspended-fourth": "sus4", "power": "5",
}  # fmt: skip
MELODY_PROGRAM = 65  # alto sax, on a track of its own
EWLD_LICENCE = f"{GPL2_PLUS} (MMA's grooves; melody and chords public domain, OpenEWLD)"
M21_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn", ".abc")  # one format per piece
M21_SUFFIXES = set(M21_PREFERENCE)
# Folk collection -> its music21 corpus folder.
FOLK_BOOKS = {
    "ryans-mammoth": "ryansMammoth",
    "oneills-1850": "oneills1850",
    "airds-airs": "airdsAirs",
    "misc-folk": "miscFolk",
}
FOLK_LICENCE = PD  # traditional tunes from books printed 1778-1903; transcribers in Z:


@dataclass(frozen=True)
class Job:
    """One file to write: where, from what, under which licence, and how."""

    rel: str  # output path relative to OUT
    collection: str
    source: str  # repo@commit:path, package@version:path or music21@version:corpus/...
    licence: str
    how: str  # "copy" (MIDI bytes), "tune" (one ABC tune), "score" or "lead" (music21 file)
    data: str  # the input file's path, or the tune's ABC text


# ---------------------------------------------------------------- sources


def git_head(git_dir: Path) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def git_files(git_dir: Path, under: str, suffix: str) -> list[tuple[str, str]]:
    """(path, blob sha) of the files under a folder at HEAD whose names end with suffix."""
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", "HEAD", "--", under],
        capture_output=True, check=True,
    )  # fmt: skip
    files = []
    for entry in out.stdout.decode().split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            if path.lower().endswith(suffix):
                files.append((path, meta.split()[2]))
    return sorted(files)


def git_extract(git_dir: Path, files: list[tuple[str, str]], dest: Path) -> None:
    """Write the blobs to dest/<path> (a missing blob is left out and noticed later)."""
    for path, sha in files:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(
            ["git", "--git-dir", str(git_dir), "cat-file", "blob", sha], capture_output=True
        )
        if blob.returncode == 0:
            target.write_bytes(blob.stdout)


def deb_version(package: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def music21_root() -> tuple[Path, str]:
    import music21
    from music21 import corpus

    return Path(corpus.__file__).parent, music21.__version__


# ---------------------------------------------------------------- jobs per source


def midi_copy_jobs(collection: str, folder: Path, source: str, licence: str) -> list[Job]:
    return [
        Job(f"{collection}/{p.name}", collection, f"{source}:{p.name}", licence, "copy", str(p))
        for p in sorted(folder.glob("*.mid"))
    ]


def git_jobs(
    collection: str, git_dir: Path, under: str, suffix: str, licence: str, how: str, stage: Path
) -> list[Job]:
    """Jobs for the files of a fetched repository, extracted into stage/<collection>."""
    head = git_head(git_dir)
    repo = git_dir.parent.name.replace("+", "/")
    files = git_files(git_dir, under, suffix)
    git_extract(git_dir, files, stage / collection)
    jobs = []
    for path, _ in files:
        rel = Path(path).relative_to(under).with_suffix(".mid")
        jobs.append(
            Job(
                f"{collection}/{rel}",
                collection,
                f"{repo}@{head}:{path}",
                licence,
                how,
                str(stage / collection / path),
            )  # fmt: skip
        )
    return jobs


def groove_jobs(git_dir: Path, count: int, stage: Path) -> list[Job]:
    """`count` beat performances (fills are one bar), taken in turn from each style."""
    head = git_head(git_dir)
    info = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", "HEAD:groove/info.csv"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    by_style: dict[str, list[str]] = defaultdict(list)
    for row in csv.DictReader(info.splitlines()):
        if row["beat_type"] == "beat":
            by_style[row["style"].split("/")[0]].append(row["midi_filename"])
    queues = [sorted(v) for _, v in sorted(by_style.items())]
    chosen: list[str] = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop(0))
    wanted = {f"groove/{name}" for name in chosen}
    files = [f for f in git_files(git_dir, "groove", ".mid") if f[0] in wanted]
    git_extract(git_dir, files, stage / "groove")
    return [
        Job(
            f"groove/{Path(path).relative_to('groove')}",
            "groove",
            f"zharry29/drums-with-llm@{head}:{path}",
            f"{CC_BY} (Groove MIDI Dataset, Gillick et al. 2019, Magenta)",
            "copy",
            str(stage / "groove" / path),
        )  # fmt: skip
        for path, _ in files
    ]


def split_tunes(text: str) -> list[tuple[str, str]]:
    """(X: number, text) of every tune in an ABC book."""
    tunes = []
    for chunk in re.split(r"(?m)^(?=X:)", text):
        x = re.match(r"X:\s*(\d+)", chunk)
        if x:
            tunes.append((x[1], chunk))
    return tunes


def folk_jobs(root: Path, version: str, wanted: set[str]) -> tuple[list[Job], Counter]:
    """One job per tune in the four folk books; byte-identical tunes only once."""
    named: list[tuple[str, str, str]] = []  # collection, tune name, ABC text
    folk.ONEILLS_EVERY = 1  # make_folk_corpus keeps every 4th O'Neill's tune; here, all
    book_of = {folder: collection for collection, folder in FOLK_BOOKS.items()}
    for name, text in folk._tunes(root):  # ryansMammoth-<stem>, oneills1850-<number>
        book, tune = name.split("-", 1)
        named.append((book_of[book], tune, text))
    for collection in ("airds-airs", "misc-folk"):
        for path in sorted((root / FOLK_BOOKS[collection]).glob("*.abc")):
            for x, text in split_tunes(path.read_text(encoding="latin-1")):
                named.append((collection, f"{path.stem}-{int(x):04d}", text))
    jobs, seen, skipped = [], set(), Counter()
    for collection, tune, text in named:  # all books, so a subset run skips the same copies
        body = re.sub(r"(?m)^X:.*\n", "", text).strip()
        copy, wanted_here = body in seen, collection in wanted
        seen.add(body)
        if copy and wanted_here:
            skipped[f"{collection}: identical to an earlier tune"] += 1
        if copy or not wanted_here:
            continue
        source = f"music21@{version}:corpus/{FOLK_BOOKS[collection]} {tune}"
        jobs.append(Job(f"{collection}/{tune}.mid", collection, source, FOLK_LICENCE, "tune", text))
    return jobs, skipped


def ewld_jobs(git_dir: Path, stage: Path) -> list[Job]:
    return git_jobs("ewld-mma", git_dir, "dataset", ".mxl", EWLD_LICENCE, "lead", stage)


def rights_text(path: Path) -> str:
    """The rights/copyright statements a score file carries, lower-cased ('' if none)."""
    try:
        if path.suffix == ".mxl":
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.startswith("META")]
                text = "".join(z.read(n).decode("utf-8", "replace") for n in names)
        else:
            text = path.read_text(encoding="latin-1")
    except (OSError, zipfile.BadZipFile):
        return ""
    found = re.findall(r"<rights[^>]*>([^<]*)<", text)
    found += re.findall(r"(?m)^!!!YE[CM][^:]*:(.*)$", text)
    found += re.findall(r"(?mi)^%.*(?:copyright|general public license).*$", text)
    return " ".join(found).lower()


def m21_licence(path: Path) -> str | None:
    """The licence of one music21 corpus file, or None when it must stay out."""
    rights = rights_text(path)
    if "all rights reserved" in rights or "orpheus" in rights:
        return None
    if "derivative electronic formats reserved" in rights:
        return RESERVED
    if "general public license" in rights:
        return GPL2_PLUS
    if "cc-by-sa" in rights:
        return CC_BY_SA
    if "creative commons" in rights or "cc-by" in rights:
        return "CC-BY"
    if "cc0" in rights:
        return CC0
    return PD


def m21_score_jobs(root: Path, version: str, collection: str) -> tuple[list[Job], Counter]:
    """One job per piece; a piece there in two formats is taken once, MusicXML first."""
    chosen: dict[str, Path] = {}  # output path -> source file
    skipped = Counter()
    for folder in M21_FOLDERS[collection]:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix.lower() not in M21_SUFFIXES:
                continue
            rel = path.relative_to(root)
            out = f"{collection}/{'-'.join(rel.with_suffix('').parts)}.mid"
            if out in chosen:
                skipped[f"{collection}: the same piece in another format"] += 1
                if M21_PREFERENCE.index(path.suffix) > M21_PREFERENCE.index(chosen[out].suffix):
                    continue
            chosen[out] = path
    jobs = []
    for out, path in sorted(chosen.items()):
        licence = m21_licence(path)
        if licence is None:
            skipped[f"{collection}: rights reserved"] += 1
            continue
        source = f"music21@{version}:corpus/{path.relative_to(root)}"
        jobs.append(Job(out, collection, source, licence, "score", str(path)))
    return jobs, skipped


# ---------------------------------------------------------------- conversion (in workers)


class Timeout(BaseException):
    """The per-file time limit (not an Exception, so music21's handlers let it through)."""


def _alarm(signum, frame):
    raise Timeout


def score_notes(flat, velocity_at) -> list[list[float]]:
    """[onset, duration, pitch, velocity] in quarters, ties merged, grace notes dropped."""
    from music21 import chord

    notes: list[list[float]] = []
    open_ties: dict[int, int] = {}  # pitch -> index of the note its tie continues
    for n in flat.notes:
        if n.duration.isGrace:
            continue
        onset, length = float(n.getOffsetBySite(flat)), float(n.duration.quarterLength)
        for sub in n.notes if isinstance(n, chord.Chord) else [n]:
            if not hasattr(sub, "pitch"):
                continue  # unpitched percussion
            pitch, tie = min(127, max(0, sub.pitch.midi)), sub.tie or n.tie
            kind = tie.type if tie else None
            if kind in ("continue", "stop") and pitch in open_ties:
                held = notes[open_ties[pitch]]
                held[1] = onset + length - held[0]
                if kind == "stop":
                    del open_ties[pitch]
                continue
            notes.append([onset, length, pitch, velocity_at(onset)])
            if kind in ("start", "continue"):
                open_ties[pitch] = len(notes) - 1
            else:
                open_ties.pop(pitch, None)
    return notes


def velocity_map(flat):
    """A function onset -> MIDI velocity from the part's dynamics marks."""
    import bisect

    from music21 import dynamics

    marks = [
        (float(d.getOffsetBySite(flat)), d.volumeScalar)
        for d in flat.getElementsByClass(dynamics.Dynamic)
        if d.volumeScalar
    ]
    onsets = [m[0] for m in marks]

    def velocity_at(onset: float) -> int:
        k = bisect.bisect_right(onsets, onset) - 1
        return int(round(127 * marks[k][1])) if k >= 0 else DEFAULT_VELOCITY

    return velocity_at


def part_program(part) -> int:
    inst = part.getInstrument(returnDefault=True)
    return int(inst.midiProgram) if inst.midiProgram is not None else 0


def score_to_midi(score, out: Path) -> None:
    """A music21 score as a MIDI file: one track per part, with its tempo and metre maps.

    Repeat signs are not expanded (the score plays once through, as written): music21's
    expandRepeats costs ~5 CPU seconds a part on a quartet movement, ten times the parse.
    """
    import symusic
    from music21 import meter, tempo

    midi = symusic.Score(TPQ)
    tempos: dict[float, float] = {}
    metres: dict[float, tuple[int, int]] = {}
    for part in list(score.parts) or [score]:
        flat = part.flatten()
        for mm in flat.getElementsByClass(tempo.MetronomeMark):
            if mm.number is not None:
                tempos.setdefault(float(mm.getOffsetBySite(flat)), mm.getQuarterBPM())
        for ts in flat.getElementsByClass(meter.TimeSignature):
            metres.setdefault(float(ts.getOffsetBySite(flat)), (ts.numerator, ts.denominator))
        track = symusic.Track(name=part.partName or "", program=part_program(part))
        for onset, length, pitch, velocity in score_notes(flat, velocity_map(flat)):
            track.notes.append(
                symusic.Note(
                    round(onset * TPQ), max(1, round(length * TPQ)), pitch, min(127, velocity)
                )
            )
        if len(track.notes):
            midi.tracks.append(track)
    for at, qpm in sorted(tempos.items()) or [(0.0, DEFAULT_QPM)]:
        midi.tempos.append(symusic.Tempo(round(at * TPQ), qpm=qpm))
    for at, (num, den) in sorted(metres.items()):
        midi.time_signatures.append(symusic.TimeSignature(round(at * TPQ), num, den))
    if not sum(len(t.notes) for t in midi.tracks):
        raise ValueError("no notes")
    midi.dump_midi(str(out))


def convert_score(path: str, out: Path) -> None:
    from music21 import converter, stream

    score = converter.parse(path)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    score_to_midi(score, out)


def mma_chord(symbol) -> str:
    root = symbol.root().name.replace("-", "b")
    kind = symbol.chordKind or "major"
    return root + MMA_KINDS.get(kind, "m" if kind.startswith("minor") else "")


def mma_chart(chords: list[tuple[float, str]], beats: int, bars: int, groove: str) -> str:
    """An MMA file: one line per bar, a chord name where one starts, "/" to hold, z for rest."""
    lines = ["RndSeed 1", f"Tempo {MMA_GROOVES[beats][groove]}", f"Time {beats}"]
    lines.append(f"Groove {groove}")
    current = "z"
    for b in range(bars):
        row = []
        for k in range(beats):
            t = b * beats + k
            here = [c for at, c in chords if t - 1e-6 <= at < t + 1 - 1e-6]
            if here:
                current = here[0]
            row.append(current if here or k == 0 else "/")
        lines.append(f"{b + 1} " + " ".join(row))
    return "\n".join(lines) + "\n"


def render_lead_sheet(path: str, out: Path, rel: str) -> None:
    """A lead sheet as a band arrangement: MMA's drums, bass and keys, the melody on top."""
    import math
    import os

    import symusic
    from music21 import converter, harmony

    part = converter.parse(path).parts[0]
    ts = part.recurse().getElementsByClass("TimeSignature").first()
    beats = MMA_BEATS.get(ts.ratioString if ts else "")
    if beats is None:
        raise ValueError(f"metre {ts.ratioString if ts else None} has no groove here")
    first = float(part.getElementsByClass("Measure").first().duration.quarterLength)
    bar_q = float(ts.barDuration.quarterLength)
    shift = (beats - first % beats) % beats if first < bar_q else 0.0  # pickup ends on a bar line
    flat = part.flatten()
    chords = [
        (float(c.getOffsetBySite(flat)) + shift, mma_chord(c))
        for c in flat.getElementsByClass(harmony.ChordSymbol)
    ]
    flat.removeByClass(harmony.ChordSymbol)
    notes = score_notes(flat, velocity_map(flat))
    if not notes or not chords:
        raise ValueError("no melody or no chords")
    bars = math.ceil(max(n[0] + n[1] for n in notes) / beats + shift / beats - 1e-6)
    grooves = sorted(MMA_GROOVES[beats])
    groove = grooves[int(hashlib.sha1(rel.encode()).hexdigest(), 16) % len(grooves)]
    with tempfile.TemporaryDirectory() as tmp:
        chart, band = Path(tmp) / "chart.mma", Path(tmp) / "band.mid"
        chart.write_text(mma_chart(sorted(chords), beats, bars, groove))
        subprocess.run(
            ["mma", str(chart), "-f", str(band)], capture_output=True, check=True,
            env={**os.environ, "MMA_HOME": "/usr/share/mma"},
        )  # fmt: skip
        midi = symusic.Score(str(band))
    tpq = midi.ticks_per_quarter
    melody = symusic.Track(name="melody", program=MELODY_PROGRAM)
    for onset, length, pitch, velocity in notes:
        tick, ticks = round((onset + shift) * tpq), max(1, round(length * tpq))
        melody.notes.append(symusic.Note(tick, ticks, pitch, min(127, velocity + 16)))
    midi.tracks.append(melody)
    midi.dump_midi(str(out))


def describe(path: Path) -> dict:
    """Notes, seconds, drums and kind of a written MIDI file, read back with symusic."""
    import symusic

    ticks = symusic.Score(str(path))
    seconds = symusic.Score(str(path), ttype="second").end()
    drums = sum(len(t.notes) for t in ticks.tracks if t.is_drum)
    pitched = [t for t in ticks.tracks if not t.is_drum and len(t.notes)]
    notes = sum(len(t.notes) for t in ticks.tracks)
    if pitched and drums:
        texture = "band"
    elif drums:
        texture = "drums-only"
    elif len(pitched) == 1 and _mostly_monophonic(pitched[0]):
        texture = "melody"
    else:
        texture = "ensemble"
    onsets = [n.time for t in ticks.tracks for n in t.notes]
    grid = ticks.ticks_per_quarter / 12  # sixteenths and triplets
    on_grid = sum(abs(t / grid - round(t / grid)) < 0.05 for t in onsets) / max(1, len(onsets))
    timing = "score" if on_grid >= 0.95 else "performance"
    return {
        "notes": notes,
        "seconds": round(seconds, 3),
        "drums": bool(drums),
        "kind": f"{texture}/{timing}",
    }


def _mostly_monophonic(track) -> bool:
    starts = [n.time for n in track.notes]
    return len(set(starts)) >= 0.95 * len(starts)


def run_job(job: Job, out_root: str, timeout: int) -> tuple[Job, str | None, dict]:
    """Write one file; return (job, skip reason or None, its description)."""
    out = Path(out_root) / job.rel
    out.parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, timeout)  # CPU time: the same limit on a busy machine
    try:
        if job.how == "copy":
            shutil.copyfile(job.data, out)
        elif job.how == "tune":
            _, reason, _, _ = folk._export((job.rel, job.data, str(out)))
            if reason:
                return job, reason, {}
        elif job.how == "lead":
            render_lead_sheet(job.data, out, job.rel)
        else:
            convert_score(job.data, out)
        info = describe(out)
    except Timeout:
        out.unlink(missing_ok=True)
        return job, f"over the {timeout} CPU-second limit", {}
    except Exception as exc:  # music21 and symusic raise many types
        out.unlink(missing_ok=True)
        return job, f"failed: {type(exc).__name__}", {}
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    if not info["notes"]:
        out.unlink()
        return job, "no notes", {}
    info["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    return job, None, info


# ---------------------------------------------------------------- main


def collect_jobs(ns, wanted: set[str], stage: Path) -> tuple[list[Job], Counter]:
    root, version = music21_root()
    jobs, skipped = folk_jobs(root, version, wanted)
    for collection in M21_FOLDERS:
        if collection in wanted:
            more, why = m21_score_jobs(root, version, collection)
            jobs += more
            skipped += why
    if "freedoom" in wanted:
        jobs += git_jobs("freedoom", ns.freedoom, "musics", ".mid", BSD, "copy", stage)
    if "openmsx" in wanted:
        src = f"openttd-openmsx@{deb_version('openttd-openmsx')}:{ns.openmsx}"
        jobs += midi_copy_jobs("openmsx", ns.openmsx, src, GPL2)
    if "planetblupi" in wanted:
        src = f"planetblupi-music-midi@{deb_version('planetblupi-music-midi')}:{ns.blupi}"
        jobs += midi_copy_jobs("planetblupi", ns.blupi, src, GPL3_PLUS)
    if "groove" in wanted:
        jobs += groove_jobs(ns.groove, ns.groove_count, stage)
    if "openscore-lieder" in wanted:
        jobs += git_jobs("openscore-lieder", ns.lieder, "scores", ".mxl", CC0, "score", stage)
    if "ewld-mma" in wanted:
        jobs += ewld_jobs(ns.ewld, stage)
    if "openscore-quartets" in wanted:
        jobs += git_jobs("openscore-quartets", ns.quartets, "scores", ".mxl", CC0, "score", stage)
    return jobs, skipped


def every_nth(jobs: list[Job], every: dict[str, int], skipped: Counter) -> list[Job]:
    """Keep every Nth file of the collections named in `every`, in path order."""
    kept, position = [], Counter()
    for job in sorted(jobs, key=lambda j: j.rel):
        n = every.get(job.collection, 1)
        position[job.collection] += 1
        if (position[job.collection] - 1) % n == 0:
            kept.append(job)
        else:
            skipped[f"{job.collection}: not sampled (1 file in {n} kept)"] += 1
    return kept


def permissive(licence: str) -> bool:
    """Public domain, CC0, BSD or CC-BY: the licence named before any parenthesis."""
    return licence.split(" (")[0] in PERMISSIVE


def save_part(out: Path, collection: str, rows: list, skipped: Counter, permissive_only: bool):
    """Record one collection's files and skips in OUT/.parts/<collection>.json."""
    part = {
        "permissive_only": permissive_only,
        "skipped": dict(sorted(skipped.items())),
        "files": [{"path": job.rel, "source": job.source, "licence": job.licence, **info}
                  for job, info in sorted(rows, key=lambda r: r[0].rel)],
    }  # fmt: skip
    (out / PARTS).mkdir(exist_ok=True)
    (out / PARTS / f"{collection}.json").write_text(json.dumps(part, indent=1) + "\n")


def load_parts(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / PARTS).glob("*.json"))}


def summarise(parts: dict[str, dict]) -> dict:
    per = {}
    for name, part in parts.items():
        files = part["files"]
        per[name] = {
            "group": GROUPS[name],
            "files": len(files),
            "notes": sum(f["notes"] for f in files),
            "seconds": round(sum(f["seconds"] for f in files), 1),
            "share_with_drums": round(sum(f["drums"] for f in files) / max(1, len(files)), 3),
            "kinds": dict(sorted(Counter(f["kind"] for f in files).items())),
            "licences": dict(sorted(Counter(f["licence"] for f in files).items())),
            "permissive_only": part["permissive_only"],
            "skipped": part["skipped"],
        }
    return {
        "files": sum(c["files"] for c in per.values()),
        "notes": sum(c["notes"] for c in per.values()),
        "collections": per,
    }


def write_manifest(out: Path, parts: dict[str, dict]) -> None:
    """SOURCES.tsv: one line per MIDI file of every collection built so far."""
    with open(out / "SOURCES.tsv", "w", encoding="utf-8", newline="") as fh:
        fh.write("path\tcollection\tsource\tlicence\tsha256\n")
        for name, part in parts.items():
            for f in part["files"]:
                fh.write(f"{f['path']}\t{name}\t{f['source']}\t{f['licence']}\t{f['sha256']}\n")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (outside any git tree)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (at most 2 here)")
    p.add_argument("--timeout", type=int, default=120, help="CPU seconds allowed per file")
    p.add_argument(
        "--collections", default=",".join(COLLECTIONS),
        help=f"comma-separated subset of: {', '.join(COLLECTIONS)}",
    )  # fmt: skip
    p.add_argument(
        "--permissive-only", action="store_true",
        help="leave out GPL, share-alike and rights-reserved sources",
    )  # fmt: skip
    p.add_argument(
        "--every", default=DEFAULT_EVERY,
        help="keep every Nth file of these collections, as COLLECTION=N,... ('' for all)",
    )  # fmt: skip
    p.add_argument("--groove-count", type=int, default=300, help="Groove performances to take")
    p.add_argument("--freedoom", type=Path, default=MIRROR / "freedoom+freedoom/repo",
                   help="bare git dir of freedoom/freedoom")  # fmt: skip
    p.add_argument("--lieder", type=Path, default=MIRROR / "OpenScore+Lieder/repo",
                   help="bare git dir of OpenScore/Lieder")  # fmt: skip
    p.add_argument("--quartets", type=Path, default=MIRROR / "OpenScore+StringQuartets/repo",
                   help="bare git dir of OpenScore/StringQuartets")  # fmt: skip
    p.add_argument("--groove", type=Path, default=MIRROR / "zharry29+drums-with-llm/repo",
                   help="bare git dir of zharry29/drums-with-llm (its groove/ folder)")  # fmt: skip
    p.add_argument("--openmsx", type=Path, default=OPENMSX_DIR, help="OpenMSX MIDI folder")
    p.add_argument("--ewld", type=Path, default=MIRROR / "00sapo+OpenEWLD/repo",
                   help="bare git dir of 00sapo/OpenEWLD")  # fmt: skip
    p.add_argument("--blupi", type=Path, default=BLUPI_DIR, help="Planet Blupi MIDI folder")
    ns = p.parse_args()
    unknown = set(ns.collections.split(",")) - set(COLLECTIONS)
    if unknown:
        p.error(f"unknown collections: {', '.join(sorted(unknown))}")
    ns.every = {k: int(v) for k, v in (x.split("=") for x in ns.every.split(",") if x)}
    return ns


def clear(out: Path, wanted: set[str]) -> None:
    """Remove what an earlier run wrote for the collections about to be rebuilt."""
    for name in wanted:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
        (out / PARTS / f"{name}.json").unlink(missing_ok=True)


def write_all(ns, jobs: list[Job]) -> tuple[list[tuple[Job, dict]], Counter]:
    """Run the jobs in worker processes; return the written files and the skip reasons."""
    rows, skipped = [], Counter()
    start = time.monotonic()
    with ProcessPoolExecutor(ns.jobs) as pool:
        futures = [pool.submit(run_job, j, str(ns.out), ns.timeout) for j in jobs]
        for i, future in enumerate(as_completed(futures), 1):
            job, reason, info = future.result()
            if reason:
                skipped[f"{job.collection}: {reason}"] += 1
                print(f"skipped {job.rel}: {reason}", file=sys.stderr)
            else:
                rows.append((job, info))
            if i % 200 == 0 or i == len(jobs):
                print(f"[{i}/{len(jobs)}] {time.monotonic() - start:.0f}s", file=sys.stderr)
    return rows, skipped


def main() -> int:
    ns = parse_args()
    start = time.monotonic()
    wanted = set(ns.collections.split(","))
    ns.out.mkdir(parents=True, exist_ok=True)
    clear(ns.out, wanted)
    with tempfile.TemporaryDirectory(prefix="base-corpus-") as tmp:
        jobs, skipped = collect_jobs(ns, wanted, Path(tmp))
        jobs = every_nth(jobs, ns.every, skipped)
        if ns.permissive_only:
            for j in jobs:
                if not permissive(j.licence):
                    skipped[f"{j.collection}: not permissive ({j.licence})"] += 1
            jobs = [j for j in jobs if permissive(j.licence)]
        # The slowest conversions first, so neither worker is left with one at the end.
        order = {"openscore-quartets": 0, "m21-composers": 1, "palestrina": 2}
        jobs.sort(key=lambda j: (order.get(j.collection, 9), j.rel))
        print(f"{len(jobs)} files to write", file=sys.stderr)
        rows, failed = write_all(ns, jobs)
    skipped += failed
    for name in sorted(wanted):
        mine = [r for r in rows if r[0].collection == name]
        why = Counter(
            {k.split(": ", 1)[1]: n for k, n in skipped.items() if k.startswith(name + ":")}
        )
        save_part(ns.out, name, mine, why, ns.permissive_only)
    parts = load_parts(ns.out)
    write_manifest(ns.out, parts)
    summary = summarise(parts)
    (ns.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, c in summary["collections"].items():
        print(f"{name:20s} {c['files']:6d} files {c['notes']:9d} notes {c['seconds']:10.0f} s")
    print(
        f"{summary['files']} files, {summary['notes']} notes; took {time.monotonic() - start:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
