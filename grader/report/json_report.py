"""``--format json``: the ``dlkata.result/1`` document."""

from grader.results import GradeResult


def render(result: GradeResult) -> str:
    return result.to_json()
