"""``--format table``: the learner's view, a score per exercise and the first failures, via rich."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from grader.results import GradeResult

STYLE = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "crashed": "magenta",
         "forbidden": "red", "not_implemented": "dim"}
SHOWN_FAILURES = 2


def render(result: GradeResult, width: int = 100) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, highlight=False)
    table = Table(title=f"dlkata grade: {result.submission}", show_lines=False)
    for column, justify in (("exercise", "left"), ("score", "right"), ("tests passed", "right"), ("status", "left")):
        table.add_column(column, justify=justify)
    for e in result.exercises:
        passed = sum(t.outcome == "passed" for t in e.tests)
        status = e.outcome if e.outcome != "graded" else ("solved" if e.score == e.max_score else "incomplete")
        table.add_row(e.id, f"{e.score:g}/{e.max_score:g}", f"{passed}/{len(e.tests)}", status)
    table.add_row("total", f"{result.score:g}/{result.max_score:g}", "", f"{result.percent:.1f}%", style="bold")
    console.print(table)
    for e in result.exercises:
        if e.message:
            console.print(f"[bold]{e.id}[/bold]: {escape(e.message)}")
            continue
        failures = [t for t in e.tests if t.outcome not in ("passed", "not_implemented")]
        for t in failures[:SHOWN_FAILURES]:
            first = escape("\n    ".join(t.message.splitlines()[:6]))
            console.print(f"[bold]{e.id}[/bold] {t.name} [{STYLE[t.outcome]}]{t.outcome}[/]\n    {first}")
        if len(failures) > SHOWN_FAILURES:
            console.print(f"[bold]{e.id}[/bold]: {len(failures) - SHOWN_FAILURES} more failing tests "
                          f"(--format json shows all)")
    return buffer.getvalue()
