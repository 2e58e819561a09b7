"""Wording shared by the command line and the listening page."""


def plural(n: int, noun: str) -> str:
    """`plural(1, "piece")` is "1 piece"; `plural(3, "piece")` is "3 pieces"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
