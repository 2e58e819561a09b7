"""Hostile and damaged files, built byte by byte, ingested next to the whole default corpus.

The outcome chosen for each case (ok / partial / skipped with a one-line reason) is
listed in CASES; every good chorale must come through untouched beside them.
"""

import json
import os
import random

import numpy as np
import pytest

from musicgen.config import IngestConfig
from musicgen.data.ingest import ingest
from musicgen.errors import ReadError
from musicgen.midi.read import read_score

THREE = ((0, 60, 480), (0, 64, 480), (0, 67, 960))  # 9 bytes per note + End of Track = 31 bytes


def three_notes(smf):
    return smf.header() + smf.track(smf.notes(*THREE))


def kar(smf):
    lyric = smf.event(0, 0xFF, 0x05, 3, *b"la ")
    return smf.header() + smf.track(lyric + smf.notes(*THREE))


def rmi(smf):
    midi = three_notes(smf)
    body = b"RMID" + b"data" + len(midi).to_bytes(4, "little") + midi + b"\0" * (len(midi) & 1)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def type2(smf):
    return (
        smf.header(fmt=2, ntracks=2)
        + smf.track(smf.notes(*THREE))
        + smf.track(smf.notes((0, 72, 480)))
    )


def never_closed(smf):
    on = lambda delta, p: smf.event(delta, 0x90, p, 64)  # noqa: E731
    body = on(0, 60) + on(480, 64) + smf.event(480, 0x80, 64, 0) + on(0, 67) + smf.EOT
    return smf.header() + smf.track(body)


def overlapping(smf):
    # 60 struck at 0 and again at 240 before the first note-off: two notes, the first cut short
    ev = smf.event
    body = (
        ev(0, 0x90, 60, 64)
        + ev(240, 0x90, 60, 64)
        + ev(240, 0x80, 60, 0)
        + ev(240, 0x80, 60, 0)
        + smf.EOT
    )
    return smf.header() + smf.track(body)


def drums_and_melody(smf):
    return (
        smf.header(fmt=1, ntracks=2)
        + smf.track(smf.notes(*THREE))
        + smf.track(smf.notes((0, 36, 240), ch=9))
    )


def random_bytes(smf):
    return random.Random(7).randbytes(3000)


# file name, builder, status, reason ("" for none; None: not checked), notes kept
CASES = [
    ("empty.mid", lambda smf: b"", "skipped", "empty file", 0),
    (
        "text.mid",
        lambda smf: b"This is a text file, not music.\n" * 20,
        "skipped",
        "not a MIDI file (no MThd header)",
        0,
    ),
    ("random.mid", random_bytes, "skipped", "not a MIDI file (no MThd header)", 0),
    # a truncated file keeps every complete event: the third note-on has lost its note-off
    (
        "truncated.mid",
        lambda smf: three_notes(smf)[: 14 + 8 + 23],
        "partial",
        "truncated file: track 1 cut off after 22 of 31 bytes",
        2,
    ),
    (
        "truncated_first_event.mid",
        lambda smf: three_notes(smf)[: 14 + 8 + 2],
        "skipped",
        "truncated file: track 1 cut off after 0 of 31 bytes",
        0,
    ),
    (
        "truncated_chunk_header.mid",
        lambda smf: three_notes(smf)[: 14 + 5],
        "skipped",
        "truncated file: track 1 cut off in its chunk header",
        0,
    ),
    (
        "truncated_header.mid",
        lambda smf: three_notes(smf)[:10],
        "skipped",
        "truncated MIDI header",
        0,
    ),
    # the standard lets MThd grow: readers skip what they do not know
    (
        "header_len_8.mid",
        lambda smf: smf.header(length=8, extra=b"\0\0") + smf.track(smf.notes(*THREE)),
        "ok",
        "",
        3,
    ),
    (
        "header_len_4.mid",
        lambda smf: smf.header(length=4) + smf.track(smf.notes(*THREE)),
        "skipped",
        "bad MIDI header length 4",
        0,
    ),
    (
        "header_len_huge.mid",
        lambda smf: smf.header(length=0xFFFFFFFF) + smf.track(smf.notes(*THREE)),
        "skipped",
        "bad MIDI header length 4294967295 (longer than the file)",
        0,
    ),
    # a wrong track length is repaired from the events themselves (up to End of Track)
    (
        "track_len_long.mid",
        lambda smf: smf.header() + smf.track(smf.notes(*THREE), length=1000),
        "partial",
        "track 1: wrong chunk length 1000, read up to its End of Track (31 bytes)",
        3,
    ),
    (
        "track_len_short.mid",
        lambda smf: smf.header() + smf.track(smf.notes(*THREE), length=5),
        "partial",
        "track 1: wrong chunk length 5, read up to its End of Track (31 bytes)",
        3,
    ),
    # data bytes above 127 are clamped: a velocity of 200 plays at 127, a pitch of 200 is out of range
    (
        "velocity_200.mid",
        lambda smf: smf.header() + smf.track(smf.notes((0, 60, 480, 200), (0, 62, 480))),
        "ok",
        "",
        2,
    ),
    (
        "pitch_200.mid",
        lambda smf: smf.header() + smf.track(smf.notes((0, 200, 480), (0, 62, 480))),
        "partial",
        "1 notes out of pitch range dropped",
        1,
    ),
    (
        "smpte.mid",
        lambda smf: smf.header(division=0xE728) + smf.track(smf.notes(*THREE)),
        "ok",
        "",
        3,
    ),
    (
        "smpte_bad_rate.mid",
        lambda smf: smf.header(division=((256 - 23) << 8) | 40) + smf.track(smf.notes(*THREE)),
        "skipped",
        "bad SMPTE time division (23 frames/s, 40 ticks/frame)",
        0,
    ),
    (
        "tempo_zero.mid",
        lambda smf: (
            smf.header() + smf.track(smf.event(0, 0xFF, 0x51, 3, 0, 0, 0) + smf.notes(*THREE))
        ),
        "ok",
        "",
        3,
    ),
    (
        "huge_delta.mid",
        lambda smf: smf.header() + smf.track(smf.notes((0, 60, 0x0FFFFFFF), (0x0FFFFFFF, 62, 480))),
        "ok",
        "",
        2,
    ),
    (
        "tick_overflow.mid",
        lambda smf: (
            smf.header()
            + smf.track(smf.notes(*[(0x0FFFFFFF if i else 0, 60 + i, 480) for i in range(12)]))
        ),
        "partial",
        "4 notes past the 2**31 tick limit dropped",
        8,
    ),
    (
        "zero_tracks.mid",
        lambda smf: smf.header(ntracks=0),
        "skipped",
        "MIDI file has zero tracks",
        0,
    ),
    ("type2.mid", type2, "skipped", "MIDI format 2 (independent sequences) is not supported", 0),
    # a note-on never closed has no length: the parser drops it, the closed notes stay
    ("never_closed.mid", never_closed, "ok", "", 1),
    (
        "never_closed_only.mid",
        lambda smf: smf.header() + smf.track(smf.event(0, 0x90, 60, 64) + smf.EOT),
        "skipped",
        "no notes",
        0,
    ),
    ("overlapping.mid", overlapping, "ok", "", 2),
    (
        "zero_length.mid",
        lambda smf: smf.header() + smf.track(smf.notes((0, 60, 0), (0, 62, 480))),
        "ok",
        "",
        2,
    ),
    (
        "drums_only.mid",
        lambda smf: smf.header() + smf.track(smf.notes((0, 36, 240), (0, 38, 240), ch=9)),
        "ok",
        "",
        2,
    ),
    ("drums_and_melody.mid", drums_and_melody, "ok", "", 4),
    ("Bärenlied — ü.mid", three_notes, "ok", "", 3),
    ("UPPER.MID", three_notes, "ok", "", 3),
    ("karaoke.kar", kar, "ok", "", 3),
    ("wrapped.rmi", rmi, "ok", "", 3),
]
IDS = [c[0] for c in CASES]
LATIN1_NAME = b"caf\xe9.mid"  # not UTF-8: a name written by another system


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory, smf):
    d = tmp_path_factory.mktemp("hostile")
    for name, build, *_ in CASES:
        (d / name).write_bytes(build(smf))
    with open(os.path.join(os.fsencode(d), LATIN1_NAME), "wb") as fh:
        fh.write(three_notes(smf))
    return d


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, hostile_dir, corpus_files):
    """All hostile files and the whole corpus in one ingestion."""
    out = tmp_path_factory.mktemp("mixed") / "ds"
    summary = ingest([corpus_files[0].parent, hostile_dir], out, ing_cfg=IngestConfig(workers=2))
    report = {
        r["path"]: r for r in json.loads((out / "report.json").read_text(encoding="utf-8"))["files"]
    }
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    return summary, report, index


@pytest.mark.parametrize(("name", "build", "status", "reason", "kept"), CASES, ids=IDS)
def test_outcome_in_report(mixed, name, build, status, reason, kept):
    _, report, index = mixed
    entry = report[name]
    assert (entry["status"], entry["reason"]) == (status, reason)
    assert "\n" not in entry["reason"]
    assert entry["stats"].get("notes_kept", 0) == kept
    in_index = [e for e in index["files"] if e["path"] == name]
    assert len(in_index) == (status != "skipped")
    if in_index:
        assert in_index[0]["notes"] == kept and in_index[0]["tokens"] >= 2 + 2 * kept


@pytest.mark.parametrize(("name", "build", "status", "reason", "kept"), CASES, ids=IDS)
def test_reader_fails_only_with_read_error(hostile_dir, name, build, status, reason, kept):
    """Read in-process too: a reader failure is always a ReadError with the reported reason."""
    try:
        score = read_score(hostile_dir / name)
    except ReadError as exc:
        assert status == "skipped" and str(exc) == reason
    else:
        assert score.num_notes >= kept


def test_specific_repairs_and_counters(mixed):
    _, report, _ = mixed
    assert report["overlapping.mid"]["stats"]["overlaps_truncated"] == 1
    assert report["zero_length.mid"]["stats"]["durations_extended"] == 1
    assert report["huge_delta.mid"]["stats"]["silences_shortened"] == 1
    assert report["huge_delta.mid"]["stats"]["durations_clipped"] == 1
    assert report["drums_only.mid"]["stats"]["notes_kept"] == 2  # drums are kept by default


def test_odd_file_names_are_kept(mixed):
    _, report, _ = mixed
    assert report["caf\ufffd.mid"]["status"] == "ok"
    assert report["Bärenlied — ü.mid"]["status"] == "ok"


def test_good_files_unaffected(mixed, corpus_files, tmp_path):
    """Every chorale is ingested beside the hostile files, with the same tokens as alone."""
    summary, report, index = mixed
    chorales = [r for r in report.values() if r["path"].startswith("bwv")]
    assert len(chorales) == 410
    assert all(r["status"] == "ok" for r in chorales)
    counts = {
        s: sum(1 for r in report.values() if r["status"] == s) for s in ("ok", "partial", "skipped")
    }
    n_cases = len(CASES) + 1
    assert summary.files == 410 + n_cases
    assert (summary.ok, summary.partial, sum(summary.skipped.values())) == (
        counts["ok"],
        counts["partial"],
        counts["skipped"],
    )
    assert counts["ok"] == 410 + 1 + sum(c[2] == "ok" for c in CASES)
    # the same chorales ingested alone give the same tokens
    alone_out = tmp_path / "alone"
    ingest([corpus_files[0].parent], alone_out, ing_cfg=IngestConfig(workers=2))
    alone = {e["path"]: e for e in json.loads((alone_out / "index.json").read_text())["files"]}
    mixed_entries = {e["path"]: e for e in index["files"]}
    assert sum(e["notes"] for e in alone.values()) == 118_000
    from musicgen.tokens.vocab import Vocabulary

    toks_a, voc_a = np.load(alone_out / "tokens.npy"), Vocabulary.load(alone_out / "vocab.json")
    toks_m, voc_m = np.load(summary.out / "tokens.npy"), Vocabulary.load(summary.out / "vocab.json")
    for path, e in alone.items():
        m = mixed_entries[path]
        assert (m["split"], m["notes"], m["tokens"]) == (e["split"], e["notes"], e["tokens"])
        a = voc_a.to_universal(toks_a[e["offset"] : e["offset"] + e["tokens"]])
        b = voc_m.to_universal(toks_m[m["offset"] : m["offset"] + m["tokens"]])
        assert np.array_equal(a, b), path
