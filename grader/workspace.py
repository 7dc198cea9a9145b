"""Per-workspace learner state (hints shown, last and best grades), kept in ``.dlkata/state.json`` of
the working directory (``DLKATA_STATE_DIR`` overrides), never in the kit's source tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

from grader.results import GradeResult


def state_dir() -> Path:
    return Path(os.environ.get("DLKATA_STATE_DIR", Path.cwd() / ".dlkata"))


class State:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / "state.json"
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("hints", {})
        self.data.setdefault("exercises", {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2), encoding="utf-8")

    def next_hint(self, exercise_id: str, hints: tuple[str, ...]) -> tuple[int, str] | None:
        """The next hint not yet shown (1-based level), remembered; None once all were shown."""
        shown = self.data["hints"].get(exercise_id, 0)
        if shown >= len(hints):
            return None
        self.data["hints"][exercise_id] = shown + 1
        self.save()
        return shown + 1, hints[shown]

    def hints_shown(self, exercise_id: str) -> int:
        return self.data["hints"].get(exercise_id, 0)

    def record(self, result: GradeResult) -> None:
        for e in result.exercises:
            entry = self.data["exercises"].setdefault(e.id, {"best_percent": 0.0})
            entry["last_percent"] = round(e.percent, 2)
            entry["last_outcome"] = e.outcome
            entry["best_percent"] = max(entry["best_percent"], round(e.percent, 2))
        self.save()

    def status(self, exercise_id: str) -> str:
        entry = self.data["exercises"].get(exercise_id)
        if entry is None:
            return "untouched"
        if entry["last_percent"] >= 100:
            return "solved"
        return f"attempted ({entry['last_percent']:.0f}%)"
