"""Shared fixtures of the kit's own tests: the catalog, and grading a folder (a submission) in-process."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from grader import catalog
from grader.results import ExerciseResult
from grader.runner import grade_exercise

KIT = catalog.kit_root()
EXERCISES = catalog.catalog()
MUTANTS = [(e, p) for e in EXERCISES for p in sorted((KIT / "tests" / "mutants" / e.id).glob("*.py"))]
VARIANTS = [(e, p) for e in EXERCISES for p in sorted((KIT / "tests" / "variants" / e.id).glob("*.py"))]

# tests/submissions/ holds purpose-made submissions, some with their own conftest.py, test_*.py and ini
# files beside the module (tests/submissions/beside/): they are graded, never collected as the kit's tests.
collect_ignore = ["submissions"]


def open_to_sandboxes(folder: Path) -> Path:
    """Let a sandbox, which may run as its own unprivileged user, write ``folder`` (and reach it)."""
    folder.chmod(0o777)
    for parent in folder.parents:
        if parent == Path(tempfile.gettempdir()) or parent == Path(parent.anchor):
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    return folder


def submission_with(tmp_path: Path, files: dict[str, Path | str]) -> Path:
    """A submission folder holding ``{exercise_id: source path or text}`` as ``<id>/<id>.py``."""
    root = tmp_path / "submission"
    for exercise_id, source in files.items():
        target = root / exercise_id / f"{exercise_id}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copy(source, target)
        else:
            target.write_text(source, encoding="utf-8")
    return root


@pytest.fixture
def grade():
    def run(exercise_id: str, root: Path, **kwargs) -> ExerciseResult:
        return grade_exercise(catalog.get(exercise_id), root, **kwargs)

    return run
