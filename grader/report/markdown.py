"""``--format markdown``: a summary fit for a CI job summary page ($GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from grader.results import GradeResult

ICON = {"passed": "✅", "failed": "❌", "error": "💥", "timeout": "⏱️", "crashed": "💀", "forbidden": "🚫",
        "not_implemented": "⬜"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def render(result: GradeResult) -> str:
    lines = [f"## dlkata: {result.score:g} / {result.max_score:g} ({result.percent:.1f}%)", "",
             "| exercise | score | passed | status |", "|---|---:|---:|---|"]
    for e in result.exercises:
        passed = sum(t.outcome == "passed" for t in e.tests)
        status = e.outcome if e.outcome != "graded" else ("solved" if e.score == e.max_score else "incomplete")
        lines.append(f"| {e.id} | {e.score:g} / {e.max_score:g} | {passed} / {len(e.tests)} | {status} |")
    for e in result.exercises:
        failing = [t for t in e.tests if t.outcome != "passed"]
        if not failing or e.outcome != "graded" and e.message == "not submitted":
            continue
        lines += ["", f"<details><summary>{e.id}: {len(failing)} not passed</summary>", ""]
        if e.message:
            lines.append(f"- {_cell(e.message)}")
        for t in failing:
            lines.append(f"- {ICON.get(t.outcome, '')} `{t.name}` ({t.outcome}): {_cell(t.message)}")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
