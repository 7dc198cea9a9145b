"""Ctrl-C that is never lost.

Code the grader runs catches KeyboardInterrupt and carries on: pytest turns it into
``ExitCode.INTERRUPTED`` and returns, so a grade or a watch would report the exercise as broken and go
on; torch's import swallows one raised while it loads numpy. Inside ``ctrl_c_kept()`` a Ctrl-C is
noted as well as raised, and raised again when the block ends if something swallowed it. Only a real
SIGINT counts: a KeyboardInterrupt that submission code raises itself (inline grading) is the
submission's error, graded like any other."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

_pressed = False  # a Ctrl-C noted and not yet passed on by the outermost block


def _note_and_raise(signum, frame) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def _note(signum, frame) -> None:
    global _pressed
    _pressed = True


_OURS = (_note_and_raise, _note)


@contextlib.contextmanager
def ctrl_c_kept(*, interrupt: bool = True) -> Iterator[None]:
    """Raise KeyboardInterrupt as the block ends if Ctrl-C was pressed in it and nothing raised it.

    ``interrupt=False`` defers the press to the block's end instead of interrupting it: for an import,
    which a KeyboardInterrupt can leave half done (and, in ``exec``'d code such as a dataclass's, mark as
    unhandled, so that Python later exits by SIGINT even though the interrupt was handled)."""
    global _pressed
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() \
            or (previous is not signal.default_int_handler and previous not in _OURS):
        yield  # signals reach only the main thread; an ignored or custom SIGINT is not ours to handle
        return
    signal.signal(signal.SIGINT, _note_and_raise if interrupt else _note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        pressed = _pressed
        if previous not in _OURS:  # the outermost block passes the press on, once
            _pressed = False
    if pressed:
        raise KeyboardInterrupt
