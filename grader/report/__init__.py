"""Report formats: each module renders a ``GradeResult`` as one text format."""

from __future__ import annotations

from typing import Callable

from grader.report import json_report, table
from grader.results import GradeResult

FORMATS: dict[str, Callable[[GradeResult], str]] = {
    "table": table.render,
    "json": json_report.render,
}
