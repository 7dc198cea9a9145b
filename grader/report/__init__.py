"""Report formats: each module renders a ``GradeResult`` as one text format."""

from __future__ import annotations

from typing import Callable

from grader.report import gradescope, json_report, junit, markdown, table
from grader.results import GradeResult

FORMATS: dict[str, Callable[[GradeResult], str]] = {
    "table": table.render,
    "json": json_report.render,
    "junit": junit.render,
    "markdown": markdown.render,
    "gradescope": gradescope.render,
}
