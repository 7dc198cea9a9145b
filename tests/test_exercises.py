"""For every exercise in the catalog: are all pieces there, does the reference score 100%, does the
stub score 0 with every hidden test not implemented, does every mutant lose points, and does every
correct variant (written another way than the reference) keep full marks?"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import EXERCISES, KIT, MUTANTS, VARIANTS, submission_with

ids = [e.id for e in EXERCISES]


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_every_piece_is_there(exercise):
    missing = [str(p.relative_to(KIT)) for p in (exercise.stub, exercise.statement, exercise.public_tests,
                                                 exercise.folder / "README.zh.md", exercise.hidden_tests,
                                                 KIT / "solutions" / exercise.id / f"{exercise.id}.py")
               if not p.is_file()]
    assert not missing, f"{exercise.id} lacks {', '.join(missing)}"
    mutants = [m for e, m in MUTANTS if e.id == exercise.id]
    assert len(mutants) >= 3, f"{exercise.id} has {len(mutants)} mutants; at least 3 are required"
    variants = [v for e, v in VARIANTS if e.id == exercise.id]
    assert len(variants) >= 2, f"{exercise.id} has {len(variants)} correct variants; at least 2 are required"
    assert len(exercise.hints) >= 1 and len(exercise.hints_zh) == len(exercise.hints), (
        f"{exercise.id}: hints are needed in English and Chinese, as many of each")


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_reference_scores_full_marks(exercise, grade):
    result = grade(exercise.id, KIT / "solutions")
    failed = {t.name: t.message[:500] for t in result.tests if t.outcome != "passed"}
    assert result.outcome == "graded", result.message
    assert not failed and result.score == result.max_score > 0, f"reference fails: {failed}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_stub_scores_zero_and_every_test_is_not_implemented(exercise, grade):
    result = grade(exercise.id, KIT / "exercises")
    assert result.score == 0, f"the stub scores {result.score}"
    wrong = {t.name: t.outcome for t in result.tests if t.outcome != "not_implemented"}
    assert result.tests and not wrong, f"hidden tests the stub does not fail as not_implemented: {wrong}"


def _summary(module: Path, saying: str) -> str:
    """The first paragraph of the module docstring, on one line."""
    doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")))
    assert doc, f"{module.name} needs a module docstring {saying}"
    return " ".join(doc.split("\n\n")[0].split())


@pytest.mark.parametrize("exercise,mutant", MUTANTS, ids=[f"{e.id}-{m.stem}" for e, m in MUTANTS])
def test_mutant_loses_points(exercise, mutant, grade, tmp_path):
    mistake = _summary(mutant, "naming its mistake")
    result = grade(exercise.id, submission_with(tmp_path, {exercise.id: mutant}), extra=["-x"])  # first failure suffices
    assert result.score < result.max_score, f"no hidden test of {exercise.id} catches: {mistake}"


@pytest.mark.parametrize("exercise,variant", VARIANTS, ids=[f"{e.id}-{v.stem}" for e, v in VARIANTS])
def test_correct_variant_scores_full_marks(exercise, variant, grade, tmp_path):
    how = _summary(variant, "saying how it differs from the reference")
    result = grade(exercise.id, submission_with(tmp_path, {exercise.id: variant}))
    failed = {t.name: t.message[:500] for t in result.tests if t.outcome != "passed"}
    assert not failed and result.score == result.max_score > 0, (
        f"hidden tests of {exercise.id} reject a correct variant ({how}): {failed}")


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_public_tests_pass_on_reference_and_fail_on_stub(exercise, grade):
    reference = grade(exercise.id, KIT / "solutions", isolation="inline", tests=exercise.public_tests)
    assert reference.tests and all(t.outcome == "passed" for t in reference.tests), (
        {t.name: t.message[:300] for t in reference.tests if t.outcome != "passed"})
    stub = grade(exercise.id, KIT / "exercises", isolation="inline", tests=exercise.public_tests)
    assert all(t.outcome == "not_implemented" for t in stub.tests)
