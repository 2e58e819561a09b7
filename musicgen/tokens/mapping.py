"""Writing a token stream in the tokens another vocabulary has.

A primer is encoded in the model's encoding and then written in the model's vocabulary;
a corpus is mapped into a base model's vocabulary to fine-tune it. Both go through the
grammar, so the result is a stream the model could have written.
"""

from __future__ import annotations

import numpy as np

from musicgen.errors import MusicgenError


def snap_to_vocabulary(uids: np.ndarray, vocab) -> tuple[np.ndarray, int]:
    """A token stream rewritten in the tokens `vocab` has, still grammatical.

    A velocity, duration or tempo it lacks becomes the nearest value it has, and each
    gap is spelt again from the Shifts it has (as the encoder spells one: longest Shifts
    and the rest). A time signature it lacks is left out, and so is a Vel, Tempo or
    TimeSig that now restates the value in force. Returns the ids and how many changed.
    """
    space = vocab.space
    present = vocab.lookup >= 0
    stream = vocab.stream()
    uids = np.asarray(uids).tolist()
    out: list[int] = []
    changed = 0

    gap: list[int] = []  # the Shifts read since the last token written: one gap, spelt when it ends

    def write(uid: int) -> None:
        if not stream.allows(uid):
            raise MusicgenError(
                f"cannot be written in the model's tokens ({space.strings()[uid]} out of place)"
            )
        stream.feed(uid)
        out.append(uid)

    def end_gap() -> None:
        nonlocal changed
        if gap:
            steps = sum(int(space.shift.values[u - space.shift.offset]) for u in gap)
            spelt = vocab.spell_gap(steps)
            changed += int(spelt != gap)
            gap.clear()
            for u in spelt:
                write(u)

    def put(uid: int) -> None:
        end_gap()  # a token left out between two Shift runs has joined them into one gap
        write(uid)

    for uid in uids:
        family = space.families[space.family_of(uid)]
        if family.name == "shift":
            gap.append(uid)
            continue
        snapped = uid
        if not present[uid]:
            if family.name == "timesig":
                changed += 1
                continue
            snapped = (
                vocab.nearest(family.name, family.values[uid - family.offset])
                if family.name in ("vel", "dur", "tempo")
                else None
            )
            if snapped is None:
                raise MusicgenError(f"the model's vocabulary has no {space.strings()[uid]} token")
        restated = (
            (family.name == "tempo" and snapped == stream.tempo_uid)
            or (family.name == "timesig" and snapped == stream.timesig_uid)
            or (
                family.name == "vel"
                and stream.velocity.get(stream.program)
                == space.vel.values[snapped - space.vel.offset]
            )
        )
        changed += int(snapped != uid or restated)
        if not restated:
            put(snapped)
    end_gap()  # a primer that ends in a rest keeps it
    return np.array(out, dtype=np.int64), changed
