"""``dlkata explain``: once an exercise passes its hidden tests (best score 100 % in the workspace state),
its ``solutions/<id>/EXPLAIN.md`` and the reference solution beside the learner's own."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from grader.catalog import Exercise, kit_root
from grader.errors import DlkataError
from grader.learner import i18n
from grader.workspace import State


@dataclass
class Explanation:
    exercise: Exercise
    explain_md: str | None   # None: not written yet
    reference: str
    reference_path: Path
    yours: str | None        # None: the learner has no file
    yours_path: Path

    def diff(self) -> str:
        """Unified diff from the learner's file to the reference ('' when identical)."""
        return "".join(difflib.unified_diff((self.yours or "").splitlines(keepends=True),
                                            self.reference.splitlines(keepends=True),
                                            fromfile=f"yours/{self.yours_path.name}",
                                            tofile=f"reference/{self.reference_path.name}"))


def best_percent(exercise_id: str, state: State | None = None) -> float:
    return (state or State()).data["exercises"].get(exercise_id, {}).get("best_percent", 0.0)


def unlocked(exercise_id: str, state: State | None = None) -> bool:
    return best_percent(exercise_id, state) >= 100


def explanation(exercise: Exercise, root: Path, *, force: bool = False, state: State | None = None) -> Explanation:
    """The explanation, or DlkataError while it is locked (unless ``force``) or absent from this copy."""
    if not force and not unlocked(exercise.id, state):
        raise DlkataError(i18n.t("explain_locked", id=exercise.id, best=best_percent(exercise.id, state)))
    folder = kit_root() / "solutions" / exercise.id
    reference = folder / f"{exercise.id}.py"
    if not reference.is_file():
        raise DlkataError(i18n.t("explain_no_solutions", id=exercise.id))
    md = i18n.explanation(folder)
    yours = root / exercise.id / f"{exercise.id}.py"
    return Explanation(exercise, md.read_text(encoding="utf-8") if md.is_file() else None,
                       reference.read_text(encoding="utf-8"), reference,
                       yours.read_text(encoding="utf-8", errors="replace") if yours.is_file() else None, yours)
