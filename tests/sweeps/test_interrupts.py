"""A sweep's Ctrl-C or SIGTERM stops a job's work at once, and waits for a safe point anywhere else.

Signals are raised in the test's own thread (``signal.raise_signal``): ``os.kill`` of the process may land on one
of TensorFlow's threads, and Python then runs the handler in the main thread a while later, after the code under
test has moved on.
"""

from __future__ import annotations

import signal
import sys

import pytest

from imgcls.sweeps.interrupts import SweepInterrupted, interruptible, raise_if_interrupted, signals_raise_interrupted


def test_a_signal_inside_a_jobs_work_stops_it_at_once():
    with signals_raise_interrupted(), pytest.raises(SweepInterrupted) as stopped, interruptible():
        signal.raise_signal(signal.SIGTERM)
        raise AssertionError("the work went on after the signal")
    assert stopped.value.signal_name == "SIGTERM" and stopped.value.exit_code == 143


def test_a_signal_whose_exception_is_lost_during_the_work_still_stops_the_job(monkeypatch):
    printed = []  # what Python's hook for exceptions it cannot raise would print as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", printed.append)

    class Collected:
        def __del__(self):  # Python prints and drops an exception raised here, as in a weakref callback
            signal.raise_signal(signal.SIGTERM)

    with signals_raise_interrupted(), pytest.raises(SweepInterrupted) as stopped:
        with interruptible():
            Collected()  # freed at once: the handler runs inside __del__ and its exception is lost
            finished = True
    assert finished and stopped.value.exit_code == 143
    assert printed == [], "no 'Exception ignored' traceback for the lost exception"


def test_a_signal_elsewhere_waits_for_the_next_safe_point_or_job():
    with signals_raise_interrupted():
        signal.raise_signal(signal.SIGINT)  # e.g. while Hydra composes a job's config: nothing is raised there
        with pytest.raises(SweepInterrupted) as stopped:
            raise_if_interrupted()
        assert stopped.value.exit_code == 130
        with pytest.raises(SweepInterrupted), interruptible():
            raise AssertionError("a job does not start after the signal")


def test_a_second_signal_stops_wherever_it_lands():
    with signals_raise_interrupted(), pytest.raises(SweepInterrupted):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("the second Ctrl-C was held back")


def test_outside_a_sweep_signals_keep_their_usual_meaning():
    # Python's own Ctrl-C handler, whatever an earlier test in this worker process left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interruptible(), pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        raise_if_interrupted()  # nothing pending once the sweep is over
    finally:
        signal.signal(signal.SIGINT, previous)
