"""``dlkata progress``: per exercise solved / attempted / untouched with the best hidden-test score
recorded in the workspace state, and the counts per topic.

solved: best hidden-test score 100 %. attempted: some hidden-test score above 0, or the learner's file
holds code (it is no longer a stub). untouched: neither."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader import catalog
from grader.catalog import Exercise
from grader.learner.stubs import is_stub
from grader.workspace import State

STATUSES = ("solved", "attempted", "untouched")


@dataclass
class Row:
    exercise: Exercise
    status: str
    best_percent: float | None  # None: never graded
    hints_shown: int


def status(exercise: Exercise, root: Path | None, state: State) -> tuple[str, float | None]:
    entry = state.data["exercises"].get(exercise.id)
    best = entry.get("best_percent") if entry else None
    if best is not None and best >= 100:
        return "solved", best
    if best:
        return "attempted", best
    module = root / exercise.id / f"{exercise.id}.py" if root else None
    if module is not None and module.is_file() and not is_stub(module.read_text(encoding="utf-8", errors="replace")):
        return "attempted", best
    return "untouched", best


def rows(root: Path | None, state: State | None = None) -> list[Row]:
    state = state or State()
    out = []
    for exercise in catalog.catalog():
        st, best = status(exercise, root, state)
        out.append(Row(exercise, st, best, state.hints_shown(exercise.id)))
    return out


def by_topic(table: list[Row]) -> dict[str, dict[str, int]]:
    """``{topic: {"solved": n, "attempted": n, "untouched": n}}`` in the order topics first appear."""
    topics: dict[str, dict[str, int]] = {}
    for row in table:
        counts = topics.setdefault(row.exercise.topic, dict.fromkeys(STATUSES, 0))
        counts[row.status] += 1
    return topics
