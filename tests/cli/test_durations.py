"""Time budgets: the forms `musicgen train --max-time` accepts."""

import pytest

from musicgen.cli.durations import parse_minutes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("5", 5.0),
        ("2.5", 2.5),
        (7, 7.0),
        ("90s", 1.5),
        ("1h30m", 90.0),
        ("1h", 60.0),
        ("2m30s", 2.5),
        ("00:00:05:00", 5.0),
        ("01:02:03:30", 1440 + 123.5),
        ("0", 0.0),
    ],
)
def test_budgets(text, minutes):
    assert parse_minutes(text) == pytest.approx(minutes)


@pytest.mark.parametrize("text", ["", "five", "5x", "1h1h", "-3", "1:2", "10::00"])
def test_bad_budgets_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="time budget"):
        parse_minutes(text)
