"""How a learner's run of the public tests went, read off an ``ExerciseResult``."""

from __future__ import annotations

from grader.results import ExerciseResult, TestResult


def first_failure(result: ExerciseResult) -> TestResult | None:
    return next((t for t in result.tests if t.outcome != "passed"), None)


def all_passed(result: ExerciseResult) -> bool:
    return bool(result.tests) and not result.message and first_failure(result) is None
