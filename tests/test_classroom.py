"""Do the instructor integrations give the same scores as `dlkata grade`, in the formats their tools read?"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import jsonschema
import pytest

from grader import catalog
from grader.report import FORMATS
from grader.runner import grade_submission
from tests.conftest import EXERCISES, KIT, MUTANTS, submission_with

SOFTMAX_MUTANT = next(m for e, m in MUTANTS if e.id == "softmax")
REFERENCE = KIT / "solutions" / "softmax" / "softmax.py"
STUB = KIT / "exercises" / "softmax" / "softmax.py"
CRASH = (REFERENCE.read_text() + "\n\nimport os\n\ndef softmax(x, dim=-1):\n    os._exit(1)\n")

# Gradescope's documented results.json (the fields dlkata writes, with their types).
GRADESCOPE_SCHEMA = {
    "type": "object", "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number"}, "output": {"type": "string"},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "tests": {"type": "array", "items": {
            "type": "object", "required": ["name", "score", "max_score", "status", "output", "visibility"],
            "properties": {"name": {"type": "string"}, "score": {"type": "number"},
                           "max_score": {"type": "number"}, "status": {"enum": ["passed", "failed"]},
                           "output": {"type": "string"},
                           "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
                           "tags": {"type": "array", "items": {"type": "string"}}}}}}}


def run_cli(*args: str, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, check=check, timeout=900)


@pytest.fixture(scope="module")
def softmax_grades(tmp_path_factory):
    """`dlkata grade` of four softmax submissions: the numbers every integration must reproduce."""
    tmp = tmp_path_factory.mktemp("grades")
    sources = {"reference": REFERENCE, "stub": STUB, "mutant": SOFTMAX_MUTANT, "crash": CRASH}
    grades = {}
    for name, source in sources.items():
        root = submission_with(tmp / name, {"softmax": source})
        grades[name] = (root, grade_submission(root, (catalog.get("softmax"),)))
    return grades


def test_release_has_no_solution_hidden_test_or_mutant(tmp_path):
    out = tmp_path / "release"
    run_cli("release", str(out))
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {str(p.relative_to(out)) for p in files}
    assert not [n for n in names if n.startswith(("solutions", "tests", "grader/hidden")) or "EXPLAIN" in n]
    public = [p for p in files if p.name.startswith("test_") or p.name == "exercise.toml"]  # tests, hints
    # the engine (grader/) is public by design and shares boilerplate with some references; the
    # exercises, statements and docs must not contain a reference's lines
    text = "\n".join(p.read_text(errors="replace") for p in files
                     if p not in public and p.relative_to(out).parts[0] != "grader")
    for e in EXERCISES:
        reference = (KIT / "solutions" / e.id / f"{e.id}.py").read_text()
        stub = e.stub.read_text()
        distinctive = [ln.strip() for ln in reference.splitlines() if len(ln.strip()) > 30 and ln.strip() not in stub]
        leaked = [ln for ln in distinctive if ln in text]
        assert not leaked, f"{e.id}'s reference leaks into the release: {leaked[:2]}"
        for test_file in public:  # a public test or the last hint may share a one-liner with it, not more
            shared = [ln for ln in distinctive if ln in test_file.read_text()]
            assert len(shared) < 3, f"{test_file.name} repeats {e.id}'s reference: {shared[:3]}"
        hidden = e.hidden_tests.read_text()
        assert hidden not in text
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheel_dir), str(out)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheel_dir.glob("*.whl")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if "hidden" in n or "solutions" in n]
    done = run_cli("grade", str(out / "exercises"), cwd=out, env={"PYTHONPATH": str(out), "DLKATA_KIT": str(out)},
                   check=False)
    assert done.returncode == 2 and "instructor" in done.stderr
    done = run_cli("check", "softmax", str(out / "exercises"), cwd=out,
                   env={"PYTHONPATH": str(out), "DLKATA_KIT": str(out)}, check=False)
    assert done.returncode == 1 and "NOT_IMPLEMENTED" in done.stdout


def test_junit_and_markdown_reports(softmax_grades):
    _, result = softmax_grades["mutant"]
    root = ET.fromstring(FORMATS["junit"](result))
    cases = root.findall(".//testcase")
    assert len(cases) == len(result.exercises[0].tests)
    failed = {c.get("name"): c.find("failure").get("message") for c in cases if c.find("failure") is not None}
    expected = {t.name: t.message.splitlines()[0] for t in result.exercises[0].tests if t.outcome == "failed"}
    assert failed == expected and failed
    summary = FORMATS["markdown"](result)
    assert summary.startswith(f"## dlkata: {result.score:g} / {result.max_score:g}")
    assert all(name in summary for name in expected)


def test_gradescope_bundle_runs_against_a_standin_root(softmax_grades, tmp_path):
    bundle = tmp_path / "autograder.zip"
    run_cli("gradescope", str(bundle))
    names = zipfile.ZipFile(bundle).namelist()
    assert {"setup.sh", "run_autograder"} <= set(names)
    assert not [n for n in names if n.startswith(("solutions/", "tests/"))]
    for i, (name, (submission, result)) in enumerate(softmax_grades.items()):
        root = tmp_path / f"autograder{i}"
        zipfile.ZipFile(bundle).extractall(root / "source")
        (root / "submission").mkdir(parents=True)
        flat = i % 2 == 0  # learners upload <id>.py flat or inside <id>/
        target = root / "submission" / ("softmax.py" if flat else "softmax/softmax.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((submission / "softmax" / "softmax.py").read_bytes())
        subprocess.run(["bash", str(root / "source" / "run_autograder")], check=True, timeout=900,
                       capture_output=True, env={**os.environ, "AUTOGRADER_ROOT": str(root),
                                                 "DLKATA_PYTHON": sys.executable,
                                                 "PYTHONPATH": str(root / "source")})
        data = json.loads((root / "results" / "results.json").read_text())
        jsonschema.validate(data, GRADESCOPE_SCHEMA)
        softmax_tests = [t for t in data["tests"] if t["name"].startswith("softmax: ")]
        assert pytest.approx(sum(t["score"] for t in softmax_tests)) == result.score, name
        assert [t["status"] == "passed" for t in softmax_tests] == [t.outcome == "passed" for t in result.exercises[0].tests]


def test_grade_batch_one_row_per_learner(softmax_grades, tmp_path):
    classroom = tmp_path / "class"
    for name, (submission, _) in softmax_grades.items():
        submission_with(classroom / name, {"softmax": submission / "softmax" / "softmax.py"})
        (classroom / name / "submission").rename(classroom / f"{name}-dir")
        (classroom / name).rmdir()
    (classroom / "empty-dir").mkdir()
    out = tmp_path / "grades.csv"
    run_cli("grade-batch", str(classroom), "--jobs", "2", "--exercise", "softmax", "--output", str(out))
    rows = {r["learner"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {f"{n}-dir" for n in softmax_grades} | {"empty-dir"}
    for name, (_, result) in softmax_grades.items():
        assert float(rows[f"{name}-dir"]["softmax"]) == pytest.approx(result.score), name
        assert (tmp_path / "grades-results" / f"{name}-dir.json").is_file()
    assert rows["empty-dir"]["error"] and float(rows["empty-dir"]["score"]) == 0


def test_nbgrader_autograde_matches_dlkata_grade(softmax_grades, tmp_path):
    """Real nbgrader, offline: generate_assignment, autograde a reference, a stub and a mutant."""
    import nbformat
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    run_cli("nbgrader", str(course), "--assignment", "ps1", "--exercise", "softmax")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}  # alembic
    subprocess.run([*nbgrader, "generate_assignment", "ps1", "--force"], cwd=course, check=True,
                   capture_output=True, timeout=600, env=env)
    released = (course / "release" / "ps1" / "softmax.ipynb").read_text()
    assert "check_hidden" not in released and "BEGIN HIDDEN TESTS" not in released
    reference_lines = [ln.strip() for ln in REFERENCE.read_text().splitlines() if "return" in ln]
    assert not [ln for ln in reference_lines if ln in released], "the released notebook shows the solution"
    sources = {"reference": course / "source" / "ps1" / "softmax.ipynb",
               "stub": course / "release" / "ps1" / "softmax.ipynb"}
    for student, notebook in sources.items():
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        (course / "submitted" / student / "ps1" / "softmax.ipynb").write_bytes(notebook.read_bytes())
    nb = nbformat.read(sources["stub"], as_version=4)
    nb.cells[1].source = "%%writefile softmax.py\n" + SOFTMAX_MUTANT.read_text()
    (course / "submitted" / "mutant" / "ps1").mkdir(parents=True)
    nbformat.write(nb, course / "submitted" / "mutant" / "ps1" / "softmax.ipynb")
    subprocess.run([*nbgrader, "autograde", "ps1", "--force", "--create"], cwd=course, check=True,
                   capture_output=True, timeout=1800, env=env)
    gradebook = Gradebook(f"sqlite:///{course / 'gradebook.db'}")
    try:
        for student in ("reference", "stub", "mutant"):
            result = softmax_grades[student][1].exercises[0]
            notebook = gradebook.find_submission_notebook("softmax", "ps1", student)
            by_test = {g.name.split("__", 1)[1]: g.score for g in notebook.grades if "__" in g.name}
            scale = result.max_score / sum(t.max_points for t in result.tests)
            assert by_test == {t.name: pytest.approx(t.points * scale) for t in result.tests}, student
            assert gradebook.find_submission("ps1", student).score == pytest.approx(result.score), student
    finally:
        gradebook.close()
