"""One exercise's public tests in a fresh Python process (so every run sees the file as saved: pytest's
and importlib's module caches die with the process), returned as an ``ExerciseResult``.

``python -m grader.learner.checker ID ROOT`` prints the result as JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from grader.catalog import Exercise
from grader.results import ExerciseResult, TestResult

MARK = "dlkata-check-result:"


def run_public_tests(exercise: Exercise, root: Path, timeout_s: float | None = None) -> ExerciseResult:
    """Run ``exercise``'s public tests against ``root/<id>/<id>.py`` in a child process."""
    timeout_s = timeout_s or max(120.0, 20 * exercise.timeout_s)
    try:
        done = subprocess.run([sys.executable, "-m", "grader.learner.checker", exercise.id, str(root)],
                              capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ExerciseResult(exercise.id, exercise.title, 0.0, 0.0, [], "timeout",
                              f"the public tests ran longer than {timeout_s:g} s (an infinite loop?)")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            return ExerciseResult(**{**data, "tests": [TestResult(**t) for t in data["tests"]]})
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
    return ExerciseResult(exercise.id, exercise.title, 0.0, 0.0, [], "error",
                          f"the public tests could not run (exit status {done.returncode}):\n{tail}")


def first_failure(result: ExerciseResult) -> TestResult | None:
    return next((t for t in result.tests if t.outcome != "passed"), None)


def all_passed(result: ExerciseResult) -> bool:
    return bool(result.tests) and not result.message and first_failure(result) is None


def _main(argv: list[str]) -> int:
    from grader import catalog
    from grader.runner import grade_exercise

    exercise = catalog.get(argv[0])
    result = grade_exercise(exercise, Path(argv[1]).resolve(), isolation="inline", tests=exercise.public_tests)
    sys.stdout.write("\n" + MARK + json.dumps(asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
