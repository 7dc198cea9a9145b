"""Called from inside nbgrader notebooks (see ``grader.classroom.nbgrader``).

The answer cell writes ``<id>.py`` next to the notebook; each autograder-test cell calls
``check_hidden(id, test)``, which grades the whole exercise once per kernel (hidden tests, sandboxed
probes, exactly as ``dlkata grade``) and fails the cell unless that one test passed.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from grader import catalog
from grader.results import ExerciseResult
from grader.runner import grade_exercise

_graded: dict[tuple[str, str], ExerciseResult] = {}


def _grade(exercise_id: str, tests: Path | None = None, isolation: str = "sandbox") -> ExerciseResult:
    module = Path.cwd() / f"{exercise_id}.py"
    digest = hashlib.sha256(module.read_bytes()).hexdigest() if module.is_file() else ""
    key = (exercise_id, f"{digest}:{tests}")
    if key not in _graded:
        with tempfile.TemporaryDirectory(prefix="dlkata-nb-") as tmp:
            if module.is_file():
                (Path(tmp) / exercise_id).mkdir()
                shutil.copyfile(module, Path(tmp) / exercise_id / f"{exercise_id}.py")
            _graded[key] = grade_exercise(catalog.get(exercise_id), Path(tmp), isolation=isolation, tests=tests)
    return _graded[key]


def check_hidden(exercise_id: str, test_name: str) -> None:
    result = _grade(exercise_id)
    test = next((t for t in result.tests if t.name == test_name), None)
    if test is None:
        raise AssertionError(f"{test_name}: no such hidden test of {exercise_id}")
    if test.outcome != "passed":
        raise AssertionError(f"{test.outcome}: {test.message or result.message}")
    print(f"{test_name}: passed")


def check_public(exercise_id: str) -> None:
    """The public tests, printed (a visible, ungraded cell)."""
    result = _grade(exercise_id, tests=catalog.get(exercise_id).public_tests, isolation="inline")
    for t in result.tests:
        print(f"{'PASS' if t.outcome == 'passed' else t.outcome.upper()} {t.name}")
        if t.outcome != "passed":
            print("    " + "\n    ".join((t.message or result.message).splitlines()[:8]))
