"""Salvaging a damaged MIDI file: its tracks rebuilt from their complete events.

Only files the parser rejects come here, so the event walk may be plain Python.
"""

from __future__ import annotations

import struct


def _is_chunk_id(b: bytes) -> bool:
    return len(b) == 4 and all(0x20 < c < 0x7F for c in b)


def _read_vlq(data: bytes, pos: int, limit: int) -> tuple[int, int] | None:
    value = 0
    for _ in range(4):
        if pos >= limit:
            return None
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
    return None  # more than 4 bytes: not a MIDI number


def _scan_events(data: bytes, pos: int, limit: int) -> tuple[int, bool]:
    """Walk track events from `pos`; return (end of the last complete event, End of Track seen)."""
    last, status = pos, 0
    while pos < limit:
        r = _read_vlq(data, pos, limit)
        if r is None or r[1] >= limit:
            return last, False
        pos = r[1]
        b = data[pos]
        if b == 0xFF:  # meta: type, length, payload
            r = _read_vlq(data, pos + 2, limit) if pos + 2 < limit else None
            if r is None or r[0] + r[1] > limit:
                return last, False
            kind, pos = data[pos + 1], r[0] + r[1]
            if kind == 0x2F:
                return pos, True
        elif b in (0xF0, 0xF7):  # sysex: length, payload
            r = _read_vlq(data, pos + 1, limit)
            if r is None or r[0] + r[1] > limit:
                return last, False
            pos = r[0] + r[1]
        elif b > 0xF0:  # system real-time / common bytes do not belong in a file
            return last, False
        else:
            if b & 0x80:
                status = b
                pos += 1
            elif not status:
                return last, False  # data byte with no running status
            pos += 1 if status & 0xF0 in (0xC0, 0xD0) else 2
            if pos > limit:
                return last, False
        last = pos
    return last, False


def _next_chunk_plausible(data: bytes, pos: int) -> bool:
    """At `pos` the file ends, a few padding bytes follow, or another chunk starts."""
    n = len(data)
    return (
        pos == n
        or (pos < n and pos + 8 > n)
        or (pos + 8 <= n and _is_chunk_id(data[pos : pos + 4]))
    )


def chunks_intact(data: bytes) -> bool:
    """Every declared track present, inside the file and closed by End of Track.

    The parser accepts a file with tracks missing, extra tracks beyond the header's
    count or a track length that cuts a track short, and silently loses their notes;
    such a file goes through `repair_tracks`, which says what it lost.
    """
    hlen, _, ntracks, _ = struct.unpack(">IHHH", data[4:14])
    n, pos, count = len(data), 8 + hlen, 0
    while pos + 8 <= n:
        cid = data[pos : pos + 4]
        end = pos + 8 + struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if cid == b"MTrk":
            if end > n or data[end - 3 : end] != b"\xff\x2f\x00" or end - pos < 11:
                return False
            count += 1
        elif count >= ntracks:
            break  # whatever follows the last track is not read
        elif not _is_chunk_id(cid) or end > n:
            return False
        pos = end
    return count == ntracks


def repair_tracks(data: bytes) -> tuple[bytes, list[str]]:
    """Rebuild a damaged file from every complete event of every track.

    Returns the repaired bytes and one line per repair (empty: nothing to repair).
    A track whose length field disagrees with the file is read by its events up to
    End of Track; a track cut short by the end of the file keeps its complete events;
    tracks beyond the header's count are read too.
    """
    hlen, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    n = len(data)
    pos = 8 + hlen
    tracks: list[bytes] = []
    warnings: list[str] = []
    while pos + 8 <= n:
        cid = data[pos : pos + 4]
        if len(tracks) >= ntracks and cid != b"MTrk":
            break  # whatever follows the last track is not music
        size = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        start, end = pos + 8, pos + 8 + size
        k = len(tracks) + 1
        if cid != b"MTrk":
            if not _is_chunk_id(cid) or end > n or not _next_chunk_plausible(data, end):
                warnings.append(f"unreadable data where track {k} should start")
                break
            pos = end  # an unknown chunk: skipped, as the standard says
            continue
        stop, eot = _scan_events(data, start, min(end, n))
        if eot and stop == end:
            pos = end  # intact
        else:
            # Scanning on past the declared end finds the same End of Track if there is one before it.
            far, far_eot = (stop, eot) if eot else _scan_events(data, start, n)
            wrong_length = f"track {k}: wrong chunk length {size}, read up to its End of Track ({far - start} bytes)"
            if far_eot and far != end and (far == n or data[far : far + 4] == b"MTrk"):
                # the events end exactly where the next track starts: the length field is wrong
                warnings.append(wrong_length)
                stop = pos = far
            elif end <= n and _next_chunk_plausible(data, end):
                # the length fits the file: trust it (bytes after End of Track are ignored)
                if not eot and stop < end:
                    warnings.append(
                        f"track {k}: unreadable event after {stop - start} of {size} bytes, rest of the track dropped"
                    )
                pos = end
            elif far_eot:
                warnings.append(wrong_length)
                stop = pos = far
            elif end > n:
                warnings.append(
                    f"truncated file: track {k} cut off after {far - start} of {size} bytes"
                )
                stop, pos = far, n
            else:
                warnings.append(
                    f"track {k}: unreadable event after {stop - start} of {size} bytes, rest of the file dropped"
                )
                pos = n
        tracks.append(data[start:stop])
    if len(tracks) < ntracks:
        if pos < n and pos + 8 > n:
            warnings.append(f"truncated file: track {len(tracks) + 1} cut off in its chunk header")
        warnings.append(f"{ntracks - len(tracks)} of {ntracks} tracks missing")
    elif len(tracks) > ntracks:
        declared = f"{ntracks} track" + ("s" if ntracks != 1 else "")
        warnings.append(
            f"the header declares {declared} but the file holds {len(tracks)}; all were read"
        )
    if not tracks:
        return b"", warnings
    fmt = 1 if len(tracks) > 1 else fmt
    out = [b"MThd", struct.pack(">IHHH", 6, fmt, len(tracks), division)]
    for body in tracks:
        out += [b"MTrk", struct.pack(">I", len(body)), body]
    return b"".join(out), warnings
