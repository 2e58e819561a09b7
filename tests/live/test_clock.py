"""The clocks: a manual clock moves only when told and knows who sleeps on it; the real
clock returns at once for a past deadline or a set wake (no wall-clock timings here)."""

import math
import threading

import pytest

from musicgen.live.clock import Clock, ManualClock, RealClock, Wake


def _sleeper(clock, t, wake=None):
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("r", clock.sleep_until(t, wake)))
    th.start()
    return th, result


def test_both_clocks_meet_the_protocol():
    assert isinstance(RealClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_manual_clock_sleeper_wakes_when_time_reaches_its_deadline(clock):
    th, result = _sleeper(clock, 2.0)
    clock.wait_for_sleepers(1)
    clock.set(1.5)
    clock.wait_for_sleepers(1)  # still asleep: 1.5 < 2
    assert "r" not in result
    clock.advance(0.5)
    th.join(5)
    assert result["r"] is True and clock.now() == 2.0


def test_manual_clock_sleeper_wakes_on_its_wake_and_says_so(clock):
    wake = Wake()
    th, result = _sleeper(clock, math.inf, wake)
    clock.wait_for_sleepers(1)
    wake.set()
    th.join(5)
    assert result["r"] is False


def test_a_sleeper_with_its_wake_set_or_its_deadline_passed_is_not_counted(clock):
    clock.sleep_until(0.0)  # already due: returns at once
    wake = Wake()
    wake.set()
    assert clock.sleep_until(5.0, wake) is False
    with pytest.raises(TimeoutError):
        clock.wait_for_sleepers(1, timeout=0.05)


def test_manual_clock_never_goes_back(clock):
    clock.set(3.0)
    with pytest.raises(ValueError):
        clock.set(2.0)
    with pytest.raises(ValueError):
        clock.advance(-1.0)


def test_real_clock_returns_at_once_for_a_past_deadline_or_a_set_wake():
    clock = RealClock()
    assert clock.sleep_until(clock.now() - 1.0) is True
    wake = Wake()
    wake.set()
    assert clock.sleep_until(math.inf, wake) is False
    with pytest.raises(ValueError):
        clock.sleep_until(math.inf)  # forever, with nothing to wake it: a bug, said at once


def test_a_real_clock_never_waits_without_end(monkeypatch):
    # the main thread must run now and then to take a Ctrl-C the kernel gave another thread
    from musicgen.live import clock as clocks

    timeouts = []
    wake = Wake()

    def wait(timeout=None):
        timeouts.append(timeout)
        if len(timeouts) == 5:
            wake.set()
        return wake.is_set()

    monkeypatch.setattr(wake, "wait", wait)
    assert RealClock().sleep_until(math.inf, wake) is False
    assert len(timeouts) == 5 and all(t is not None and t <= clocks.MAX_WAIT for t in timeouts)
    with pytest.raises(ValueError, match="needs a wake"):
        RealClock().sleep_until(math.inf)
