"""``dlkata mock``: a timed mock interview. Pick exercises at random (seedable, optionally by topic),
count down with a rich live display (Ctrl-C or the end of the time stops it), then grade those exercises
and write the HTML report."""

from __future__ import annotations

import random
import time
from typing import Callable

from rich.console import Console
from rich.live import Live
from rich.text import Text

from grader import catalog
from grader.catalog import Exercise
from grader.errors import DlkataError
from grader.learner import i18n


def pick(count: int, topics: tuple[str, ...] = (), seed: int | None = None,
         exercises: tuple[Exercise, ...] | None = None) -> list[Exercise]:
    """``count`` distinct exercises drawn from ``topics`` (all when empty), in the learner's order."""
    pool = [e for e in (exercises or catalog.catalog()) if not topics or e.topic in topics]
    if not pool:
        known = sorted({e.topic for e in (exercises or catalog.catalog())})
        raise DlkataError(i18n.t("mock_none", topics=", ".join(topics)) + f" (topics: {', '.join(known)})")
    chosen = random.Random(seed).sample(pool, min(count, len(pool)))
    return sorted(chosen, key=lambda e: (e.order, e.id))


def _clock_text(seconds_left: float) -> Text:
    minutes, seconds = divmod(max(0, int(round(seconds_left))), 60)
    style = "bold red" if seconds_left < 60 else "bold yellow" if seconds_left < 300 else "bold green"
    return Text.assemble((f"{i18n.t('mock_left')}: ", "bold"), (f"{minutes:02d}:{seconds:02d}", style),
                         ("   (Ctrl-C: stop and grade)", "dim"))


def countdown(seconds: float, console: Console | None = None, *, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> str:
    """Count down ``seconds``; ``"time_up"`` at the end, ``"stopped"`` on Ctrl-C."""
    if seconds <= 0:
        return "time_up"
    end = clock() + seconds
    try:
        with Live(_clock_text(seconds), console=console or Console(), refresh_per_second=4, transient=True) as live:
            while (left := end - clock()) > 0:
                live.update(_clock_text(left))
                sleep(min(0.25, left))
    except KeyboardInterrupt:
        return "stopped"
    return "time_up"
