"""``--format gradescope``: Gradescope's autograder ``results.json`` (score, tests[] with name, score,
max_score, status, output, visibility)."""

from __future__ import annotations

import json

from grader.results import GradeResult


def to_gradescope(result: GradeResult, visibility: str = "visible") -> dict:
    tests = []
    for e in result.exercises:
        total = sum(t.max_points for t in e.tests) or 1.0
        scale = e.max_score / total  # exercise.toml may scale the points
        for t in e.tests:
            tests.append({"name": f"{e.id}: {t.name}", "score": round(t.points * scale, 6),
                          "max_score": round(t.max_points * scale, 6),
                          "status": "passed" if t.outcome == "passed" else "failed",
                          "output": t.message or e.message, "visibility": visibility,
                          "tags": [e.id, t.outcome]})
    return {"score": result.score, "output": f"dlkata: {result.score:g} / {result.max_score:g}",
            "visibility": visibility, "stdout_visibility": "hidden", "tests": tests}


def render(result: GradeResult) -> str:
    return json.dumps(to_gradescope(result), indent=2, ensure_ascii=False)
