"""Does each outcome of the result schema come out of a purpose-made submission, with a message a
learner can act on, while the other exercises of the same submission are still graded?

Each file in tests/submissions/ is ``<expected outcome>__<what it does>.py``: its code is appended to
the softmax reference (so it overrides ``softmax``), and a second exercise's reference rides along.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader import catalog
from grader.runner import grade_submission
from tests.conftest import EXERCISES, KIT, submission_with

ATTACKS = sorted((KIT / "tests" / "submissions").glob("*__*.py"))
REFERENCE = (KIT / "solutions" / "softmax" / "softmax.py").read_text(encoding="utf-8")
BYSTANDER = next((e.id for e in EXERCISES if e.id != "softmax"), None)
WHOLE_EXERCISE = "(whole exercise)"


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch):
    monkeypatch.setenv("DLKATA_PROBE_TIMEOUT_S", "2")


def attacked(tmp_path, attack_source: str):
    files = {"softmax": REFERENCE + "\n\n" + attack_source}
    if BYSTANDER:
        files[BYSTANDER] = KIT / "solutions" / BYSTANDER / f"{BYSTANDER}.py"
    return submission_with(tmp_path, files)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.stem for a in ATTACKS])
def test_outcome_of_purpose_made_submission(attack, tmp_path):
    expected = attack.stem.split("__")[0]
    source = attack.read_text(encoding="utf-8")
    exercises = tuple(catalog.get(i) for i in ("softmax", BYSTANDER) if i)
    result = grade_submission(attacked(tmp_path, source), exercises)
    softmax = result.exercises[0]
    assert softmax.score < softmax.max_score
    if WHOLE_EXERCISE in source:
        assert softmax.outcome == expected and softmax.score == 0, (softmax.outcome, softmax.message)
        assert softmax.message and all(t.outcome == expected for t in softmax.tests)
    else:
        hits = [t for t in softmax.tests if t.outcome == expected]
        assert hits, {t.name: t.outcome for t in softmax.tests}
        assert all(t.message for t in hits)
    if BYSTANDER:
        other = result.exercises[1]
        assert other.score == other.max_score, f"{BYSTANDER} was not graded correctly beside the attack"


def _grade_json(tmp_path, source: str, *extra: str) -> dict:
    root = attacked(tmp_path, source)
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", "grader", "grade", str(root), "--format", "json", "--output",
                    str(out), *extra], check=True, capture_output=True, timeout=600,
                   env={**__import__("os").environ, "DLKATA_STATE_DIR": str(tmp_path / "state")})
    return json.loads(out.read_text())


def test_learner_traceback_names_their_file_and_line(tmp_path):
    source = (KIT / "tests" / "submissions" / "error__exception_with_traceback.py").read_text()
    data = _grade_json(tmp_path, source, "--exercise", "softmax")
    messages = [t["message"] for t in data["exercises"][0]["tests"] if t["outcome"] == "error"]
    line = REFERENCE.count("\n") + 2 + source.splitlines().index("    return x / (1 // scale)") + 1
    assert messages and all("ZeroDivisionError" in m for m in messages)
    assert f'File "softmax.py", line {line}, in softmax' in messages[0], messages[0]
    assert "grader/" not in messages[0], "grader internals leak into the learner's traceback"


def test_result_schema_and_not_submitted(tmp_path):
    data = _grade_json(tmp_path, "")
    assert data["schema"] == "dlkata.result/1"
    assert set(data) >= {"schema", "submission", "score", "max_score", "exercises"}
    by_id = {e["id"]: e for e in data["exercises"]}
    assert by_id["softmax"]["score"] == by_id["softmax"]["max_score"]
    missing = [e for e in data["exercises"] if e["id"] not in ("softmax", BYSTANDER)]
    for e in missing:
        assert e["score"] == 0 and e["outcome"] == "error" and e["message"] == "not submitted"
        assert all(t["outcome"] == "error" for t in e["tests"])
    for e in data["exercises"]:
        assert set(e) >= {"id", "title", "score", "max_score", "tests"}
        for t in e["tests"]:
            assert set(t) >= {"name", "outcome", "points", "max_points", "message"}
            assert t["outcome"] in ("passed", "failed", "error", "timeout", "crashed", "forbidden", "not_implemented")


def test_min_score_gate_and_usage_errors(tmp_path):
    root = attacked(tmp_path, "")
    env = {**__import__("os").environ, "DLKATA_STATE_DIR": str(tmp_path / "state")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "grader", *a], capture_output=True, text=True, env=env)
    assert run("grade", str(root), "--exercise", "softmax", "--min-score", "100").returncode == 0
    assert run("grade", str(root), "--min-score", "100").returncode == 1  # other exercises missing
    for args in (("grade", str(tmp_path / "nowhere")), ("grade", str(tmp_path)), ("grade", "--exercise", "nope"),
                 ("show", "nope")):
        done = run(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (args, done.stderr)


def test_a_pytest_that_runs_no_test_is_an_error_not_a_pass(tmp_path):
    """A usage error (here an unknown option) or an empty test file stops pytest before any test: the
    exercise must say the grader could not run its tests, never show 0/0 as solved."""
    from grader.runner import grade_exercise

    softmax = catalog.get("softmax")
    root = submission_with(tmp_path, {"softmax": KIT / "solutions" / "softmax" / "softmax.py"})
    empty = tmp_path / "test_softmax.py"
    empty.write_text("", encoding="utf-8")
    for result in (grade_exercise(softmax, root, isolation="inline", extra=["--no-such-option"]),
                   grade_exercise(softmax, root, isolation="inline", tests=empty)):
        assert result.outcome == "error" and "could not load its tests" in result.message, result


def test_installed_or_environment_plugins_cannot_change_a_grade(tmp_path, monkeypatch):
    """A pytest plugin installed beside the grader (an entry point) or named in PYTEST_PLUGINS /
    PYTEST_ADDOPTS is not loaded by a graded run: here it would fail every test."""
    from grader.runner import grade_exercise

    site = tmp_path / "site"
    (site / "ambient_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "ambient_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ambient-plugin\nVersion: 1.0\n", encoding="utf-8")
    (site / "ambient_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[pytest11]\nambient = ambient_plugin\n", encoding="utf-8")
    (site / "ambient_plugin.py").write_text(
        "def pytest_runtest_call(item):\n    raise AssertionError('an ambient plugin failed this test')\n",
        encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    for name, value in (("PYTEST_PLUGINS", "ambient_plugin"), ("PYTEST_ADDOPTS", "-p ambient_plugin"), (None, None)):
        with monkeypatch.context() as env:
            if name:
                env.setenv(name, value)
            result = grade_exercise(catalog.get("softmax"), KIT / "solutions", isolation="inline")
        assert result.score == result.max_score, (name, [t.message for t in result.tests if t.message][:1])
