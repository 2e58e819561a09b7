"""Byte-level mutations of MIDI files, shared by tests/hardening/test_fuzz.py and
benchmarks/fuzz_ingest.py.

A mutation is a list of plain tuples (JSON-friendly, so a failing input can be
written down and replayed):

    ("flip", pos, bit)              flip one bit
    ("set", pos, value)             overwrite one byte
    ("insert", pos, bytes)          insert bytes
    ("delete", pos, n)              delete n bytes
    ("truncate", pos)               cut the file at pos
    ("chunk_len", k, value, delta)  rewrite the length of the k-th MThd/MTrk chunk:
                                    to `value` if it is not None, else old + delta
    ("splice", pos, other_pos)      this file up to pos, then the other file from other_pos

Positions are taken modulo the current length, so every op applies to every file.
"""

from __future__ import annotations

import random
import re
import struct

import numpy as np

from musicgen.errors import ReadError
from musicgen.midi.score import Score

CHUNK = re.compile(rb"MT(?:hd|rk)")
INTERESTING_LENGTHS = (0, 1, 5, 6, 0x7F, 0x80, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
INTERESTING_BYTES = (0x00, 0x01, 0x2F, 0x51, 0x7F, 0x80, 0x90, 0xF0, 0xF7, 0xFF)


def chunk_offsets(data: bytes | bytearray) -> list[int]:
    return [m.start() for m in CHUNK.finditer(data)]


def apply_ops(data: bytes, ops, other: bytes = b"") -> bytes:
    buf = bytearray(data)
    for op in ops:
        kind, n = op[0], len(buf)
        if kind == "flip":
            if n:
                buf[op[1] % n] ^= 1 << (op[2] % 8)
        elif kind == "set":
            if n:
                buf[op[1] % n] = op[2] & 0xFF
        elif kind == "insert":
            p = op[1] % (n + 1)
            buf[p:p] = bytes(op[2])
        elif kind == "delete":
            if n:
                p = op[1] % n
                del buf[p : p + op[2]]
        elif kind == "truncate":
            del buf[op[1] % (n + 1) :]
        elif kind == "chunk_len":
            offsets = [o for o in chunk_offsets(buf) if o + 8 <= n]
            if offsets:
                o = offsets[op[1] % len(offsets)]
                old = struct.unpack(">I", buf[o + 4 : o + 8])[0]
                new = op[2] if op[2] is not None else old + op[3]
                buf[o + 4 : o + 8] = struct.pack(">I", new % 2**32)
        elif kind == "splice":
            buf = buf[: op[1] % (n + 1)] + bytearray(other[op[2] % (len(other) + 1) :])
        else:
            raise ValueError(f"unknown mutation {kind!r}")
    return bytes(buf)


def random_op(rng: random.Random) -> tuple:
    """One mutation, for campaigns driven by `random` rather than hypothesis."""
    pos = rng.randrange(1 << 20)
    kind = rng.choice(
        ("flip", "flip", "set", "insert", "delete", "truncate", "chunk_len", "chunk_len", "splice")
    )
    if kind == "flip":
        return ("flip", pos, rng.randrange(8))
    if kind == "set":
        return (
            "set",
            pos,
            rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256),
        )
    if kind == "insert":
        return ("insert", pos, list(rng.randbytes(rng.choice((1, 1, 2, 3, 8, 64)))))
    if kind == "delete":
        return ("delete", pos, rng.choice((1, 1, 2, 3, 8, 64, 500)))
    if kind == "truncate":
        return ("truncate", pos)
    if kind == "chunk_len":
        if rng.random() < 0.5:
            return ("chunk_len", rng.randrange(64), rng.choice(INTERESTING_LENGTHS), 0)
        return ("chunk_len", rng.randrange(64), None, rng.randint(-64, 64))
    return ("splice", pos, rng.randrange(1 << 20))


def notes_of(score) -> list[tuple]:
    """(start, pitch, duration) of every note, sorted: what two reads must agree on."""
    n = score.notes
    return sorted(
        zip(
            n["start"].round(6).tolist(),
            n["pitch"].tolist(),
            n["duration"].round(6).tolist(),
            strict=True,
        )
    )


def check_score(score: Score) -> None:
    """What every successfully read score must look like."""
    notes = score.notes
    assert np.isfinite(notes["start"]).all() and (notes["start"] >= 0).all(), "bad note start"
    assert np.isfinite(notes["duration"]).all() and (notes["duration"] >= 0).all(), (
        "bad note duration"
    )
    assert ((notes["pitch"] >= 0) & (notes["pitch"] < 128)).all(), "pitch out of 0..127"
    assert ((notes["velocity"] >= 0) & (notes["velocity"] < 128)).all(), "velocity out of 0..127"
    for t, qpm in score.tempos:
        assert np.isfinite(t) and t >= 0 and 1.0 <= qpm <= 1000.0, f"bad tempo {(t, qpm)}"
    for t, num, den in score.time_signatures:
        assert np.isfinite(t) and t >= 0 and num > 0 and den > 0, (
            f"bad time signature {(t, num, den)}"
        )
    for w in score.warnings:
        assert w and "\n" not in w, f"bad warning {w!r}"


def check_reason(reason: str) -> None:
    assert isinstance(reason, str) and reason.strip(), "empty reason"
    assert "\n" not in reason and "\r" not in reason, f"multi-line reason {reason!r}"
    assert len(reason) <= 500, f"reason of {len(reason)} characters"


def outcome(path, cfg=None) -> tuple[str, str]:
    """Read + encode one file as ingestion does; (status, reason) or an AssertionError.

    Only a ReadError may escape the reader; the encoder may not raise at all.
    """
    from musicgen.config import EncodingConfig
    from musicgen.data.files import ingest_file
    from musicgen.midi.read import read_score
    from musicgen.tokens.space import token_space
    from musicgen.tokens.timebase import resolve_time

    cfg = cfg or EncodingConfig()
    try:
        score = read_score(path)
    except ReadError as exc:
        check_reason(str(exc))
        return "skipped", str(exc)
    check_score(score)
    res = ingest_file(path, cfg)
    assert res.status in ("ok", "partial", "skipped"), res.status
    if res.status == "skipped":
        check_reason(res.reason)
        assert res.uids is None
    else:
        assert res.uids is not None and len(res.uids) >= 2
        decided, _ = resolve_time(cfg, [score])
        assert (res.uids >= 0).all() and (res.uids < token_space(decided).size).all(), (
            "token id out of range"
        )
        if res.status == "partial":
            check_reason(res.reason)
    return res.status, res.reason
