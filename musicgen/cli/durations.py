"""Time budgets as people write them: `5` (minutes), `90s`, `1h30m`, `2.5m`, or
Lightning's `DD:HH:MM:SS`."""

from __future__ import annotations

import re

_UNITS = {"d": 1440.0, "h": 60.0, "m": 1.0, "s": 1 / 60}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([dhms])")


def parse_minutes(text: str | float | int) -> float:
    """Minutes in a budget; ValueError with the forms it accepts for anything else."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        t = str(text).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d*)?|\.\d+", t):
            value = float(t)
        elif re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", t):
            days, hours, minutes, seconds = (int(x) for x in t.split(":"))
            value = days * 1440 + hours * 60 + minutes + seconds / 60
        elif (
            t
            and _PART.sub("", t) == ""
            and len({u for _, u in _PART.findall(t)}) == len(_PART.findall(t))
        ):
            value = sum(float(n) * _UNITS[u] for n, u in _PART.findall(t))
        else:
            raise ValueError(
                f"{text!r} is not a time budget: give minutes (5), or 90s, 1h30m, or DD:HH:MM:SS"
            )
    if value < 0:
        raise ValueError(f"a time budget cannot be negative, got {text!r}")
    return value
