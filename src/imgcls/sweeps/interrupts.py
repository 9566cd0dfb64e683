"""Ctrl-C and SIGTERM during a sweep: stop at once inside a job's work, at the next safe point elsewhere.

An exception raised from a signal handler can land anywhere, also in the middle of Hydra composing
a job's config or of a write to the study's storage, and leave them broken. So while a sweep runs,
a signal raises :class:`SweepInterrupted` at once only inside a job's work (``interruptible()``,
entered by every entry point's ``run_job``); elsewhere it is kept until the sweep loop asks
(``raise_if_interrupted()``) or a job's work starts. A second signal raises at once wherever it lands.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class SweepInterrupted(BaseException):
    """The sweep was told to stop by a signal.

    A ``BaseException``, like ``KeyboardInterrupt``: it passes through Keras and through Hydra's job
    wrapper (which records an ``Exception`` as a failed job) up to the sweep loop.
    """

    def __init__(self, signal_number: int):
        self.signal_name = signal.Signals(signal_number).name
        self.exit_code = 128 + signal_number
        super().__init__(self.signal_name)


class _State:
    installed = False
    in_job_work = False
    pending: int | None = None


def _on_signal(signal_number: int, _frame: object) -> None:
    second = _State.pending is not None
    # Kept even when the exception below is lost: Python runs the handler wherever the main thread is, also
    # inside a weakref callback or __del__ (a garbage collection during the job), which only print it.
    _State.pending = signal_number
    if _State.in_job_work or second:
        raise SweepInterrupted(signal_number)


@contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop the sweep with :class:`SweepInterrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_lost_interruptions(previous_hook)
    _State.installed, _State.pending = True, None
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        sys.unraisablehook = previous_hook
        _State.installed, _State.pending = False, None


def _quiet_about_lost_interruptions(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """Python's hook for exceptions it cannot raise (in __del__, weakref callbacks), less SweepInterrupted,
    which stays pending and is raised when the job's work returns: no traceback for the user."""

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not SweepInterrupted:
            previous(unraisable)

    return hook


def raise_if_interrupted() -> None:
    """Raise :class:`SweepInterrupted` if a signal arrived since the sweep started."""
    if _State.pending is not None:
        raise SweepInterrupted(_State.pending)


@contextmanager
def interruptible() -> Iterator[None]:
    """A job's work: a sweep's signal stops it at once (and one that came before it starts, before it starts)."""
    if not _State.installed:
        yield
        return
    raise_if_interrupted()
    _State.in_job_work = True
    try:
        yield
    finally:
        _State.in_job_work = False
    raise_if_interrupted()  # a signal during the work whose exception was lost on the way
