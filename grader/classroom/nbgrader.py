"""``dlkata nbgrader COURSE_DIR``: nbgrader source notebooks, one per exercise.

Each notebook holds: the statement (markdown); an autograded-answer cell that writes ``<id>.py``, whose
function bodies are the reference between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (so nbgrader's
``generate_assignment`` turns it into the stub: every body becomes ``raise NotImplementedError()``); a
visible public-test cell; and one autograder-test cell per hidden test, its points the test's share of
the exercise's points, its body between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``. Hidden
tests still run through the sandboxed probes: the cells only ask ``grader.notebook`` for the verdict.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.catalog import Exercise, kit_root
from grader.runner import run_pytest

CONFIG = """c = get_config()
c.CourseDirectory.course_id = "dlkata"
c.ExecutePreprocessor.timeout = 1800
"""


def _meta(grade_id: str, *, solution: bool, grade: bool, points: float = 0.0) -> dict:
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution,
            "schema_version": 3}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def solution_cell_source(reference: str, stub: str) -> str:
    """The reference with every function body (after its docstring) inside solution markers and the
    module docstring replaced by the stub's, so clearing the solutions leaves a stub."""
    tree = ast.parse(reference)
    lines = reference.splitlines()
    regions = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
            if ast.get_docstring(node) and len(node.body) == 1:
                continue
            regions.append((body[0].lineno - 1, node.body[-1].end_lineno, body[0].col_offset))
    nested = {r for r in regions for o in regions if o != r and o[0] <= r[0] and r[1] <= o[1]}
    for start, end, col in sorted(set(regions) - nested, reverse=True):
        indent = " " * col
        lines[start:end] = [f"{indent}### BEGIN SOLUTION", *lines[start:end], f"{indent}### END SOLUTION"]
    text = "\n".join(lines) + "\n"
    ref_doc, stub_doc = ast.get_docstring(tree, clean=False), ast.get_docstring(ast.parse(stub), clean=False)
    if ref_doc and stub_doc:
        text = text.replace(ref_doc, stub_doc, 1)
    return text


def hidden_tests(exercise: Exercise) -> dict[str, float]:
    """Hidden test names and their points, as pytest collects them."""
    return run_pytest(exercise.hidden_tests, kit_root() / "solutions", isolation="inline", collect_only=True).collected


def notebook(exercise: Exercise) -> nbformat.NotebookNode:
    reference = (kit_root() / "solutions" / exercise.id / f"{exercise.id}.py").read_text(encoding="utf-8")
    answer = f"%%writefile {exercise.id}.py\n" + solution_cell_source(reference, exercise.stub.read_text(encoding="utf-8"))
    cells = [
        new_markdown_cell(exercise.statement.read_text(encoding="utf-8"), metadata=_meta(
            f"{exercise.id}_statement", solution=False, grade=False)),
        new_code_cell(answer, metadata=_meta(f"{exercise.id}_answer", solution=True, grade=False)),
        new_code_cell(f"from grader.notebook import check_public\ncheck_public({exercise.id!r})",
                      metadata=_meta(f"{exercise.id}_public", solution=False, grade=False)),
    ]
    tests = hidden_tests(exercise)
    total = sum(tests.values())
    scale = (exercise.points or total) / total
    for name, pts in tests.items():
        source = ("### BEGIN HIDDEN TESTS\nfrom grader.notebook import check_hidden\n"
                  f"check_hidden({exercise.id!r}, {name!r})\n### END HIDDEN TESTS")
        cells.append(new_code_cell(source, metadata=_meta(f"{exercise.id}__{name}", solution=False, grade=True,
                                                          points=round(pts * scale, 6))))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write_course(course: Path, assignment: str, exercises: tuple[Exercise, ...]) -> list[Path]:
    source = course / "source" / assignment
    source.mkdir(parents=True, exist_ok=True)
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG, encoding="utf-8")
    written = []
    for exercise in exercises:
        path = source / f"{exercise.id}.ipynb"
        nbformat.write(notebook(exercise), path)
        written.append(path)
    return written
