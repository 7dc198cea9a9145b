"""Grade one exercise of one submission: check it exists, scan it, import it once in a sandbox, then
run the exercise's tests through pytest (in this process: it never executes submission code) and
collect each test's outcome."""

from __future__ import annotations

import functools
import gc
import importlib
import sys
import time
from pathlib import Path

import pytest
import torch

from grader import sandbox, scan
from grader.catalog import PACKAGE_DIR, Exercise, kit_root
from grader.errors import ProbeFailure, format_raised
from grader.interrupt import ctrl_c_kept
from grader.plugin import NOT_SUBMITTED
from grader.probes import imported
from grader.results import ExerciseResult, GradeResult, TestResult
from grader.sandbox import Sandbox

PYTEST_INI = PACKAGE_DIR / "pytest.ini"


class _Collector:
    """A pytest plugin object that keeps each test's outcome, points and message."""

    def __init__(self) -> None:
        self.tests: dict[str, TestResult] = {}
        self.collected: dict[str, float] = {}
        self.errors: list[str] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        # learners' messages come from the exception itself; the failure report pytest also builds
        # would by default re-parse the test's source for every failure (~0.1 s a failing learner)
        config.option.tbstyle = "native"

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        marker = item.get_closest_marker("points")
        self.collected[item.name] = float(marker.args[0]) if marker and marker.args else 1.0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "dlkata_outcome" not in props:
            return
        name = report.nodeid.split("::")[-1]
        max_points = float(props["dlkata_points"])
        passed = props["dlkata_outcome"] == "passed"
        self.tests[name] = TestResult(name, props["dlkata_outcome"], max_points if passed else 0.0,
                                      max_points, props["dlkata_message"])


# The only plugins a graded run loads: pytest's autoload is off and the variables that add plugins or
# options are unset while it runs, so whatever else is installed (pytest-randomly reseeding and
# reordering tests, say) cannot change a grade. Skipping the entry-point scan also saves ~70 ms a run.
THIRD_PARTY_PLUGINS = ("pytest_timeout", "_hypothesis_pytestplugin")
GRADED_PLUGINS = ("grader.plugin", *THIRD_PARTY_PLUGINS)


def _rootdir(test_file: Path) -> Path:
    """The kit root when the tests live in it: module names then differ between the hidden and the
    public ``test_<id>.py`` (pytest's importlib mode reuses a module of the same name)."""
    root = kit_root()
    return root if root in test_file.resolve().parents else test_file.parent


@functools.lru_cache(maxsize=None)
def _import_plugins_unrewritten() -> None:
    """Import the third-party pytest plugins (hypothesis among them) before the first ``pytest.main``.

    pytest assertion-rewrites every module of a plugin's distribution imported after it starts, and with
    PYTHONDONTWRITEBYTECODE set (or a read-only site-packages) it cannot cache the result, so each fresh
    process re-rewrote ~120 hypothesis modules: seconds of a quick ``check``. Only the tests and the kit's
    own ``grader`` package need rewriting; they are left alone. Then the objects alive now (modules, for
    the process's life) are frozen out of the garbage collector's scans."""
    for name in (*THIRD_PARTY_PLUGINS, "hypothesis", "hypothesis.strategies"):
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # torch's and pytest's ~250k long-lived objects: pytest's gc.collect() per run skips them


def run_pytest(test_file: Path, submission_root: Path, *, isolation: str, collect_only: bool = False,
               test_timeout_s: float = 120.0, extra: list[str] | None = None) -> _Collector:
    collector = _Collector()
    torch.set_num_threads(1)  # references are small; threads only stall on a busy machine
    args = [str(test_file), "-c", str(PYTEST_INI), "--rootdir", str(_rootdir(test_file)),
            "--confcutdir", str(test_file.parent),
            "-p", "no:cacheprovider", "-p", "no:terminal", "--import-mode=importlib",
            *(arg for plugin in GRADED_PLUGINS for arg in ("-p", plugin)),
            "-p", "no:logging",  # no test reads logs; its per-test handlers cost ~3 ms a test
            "--dlkata-submission", str(submission_root), "--dlkata-isolation", isolation,
            "--timeout", str(test_timeout_s), *(extra or [])]
    if collect_only:
        args.append("--collect-only")
    _import_plugins_unrewritten()
    with pytest.MonkeyPatch.context() as env:  # pytest reads these at startup
        env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        env.delenv("PYTEST_PLUGINS", raising=False)
        env.delenv("PYTEST_ADDOPTS", raising=False)
        with ctrl_c_kept():  # pytest would swallow a Ctrl-C and report the exercise as broken
            status = pytest.main(args, plugins=[collector])
    if not collector.errors and (status in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
                                 or not collector.collected):
        collector.errors.append(f"pytest stopped with {status!r} before running any test")
    return collector


def _all_tests(collector: _Collector, outcome: str, message: str) -> list[TestResult]:
    return [TestResult(name, outcome, 0.0, pts, message) for name, pts in collector.collected.items()]


def _scaled(exercise: Exercise, tests: list[TestResult]) -> tuple[float, float]:
    earned = sum(t.points for t in tests)
    total = sum(t.max_points for t in tests)
    if exercise.points is None or total == 0:
        return earned, total
    return exercise.points * earned / total, exercise.points


def grade_exercise(exercise: Exercise, submission_root: Path, *, isolation: str = "sandbox",
                   tests: Path | None = None, extra: list[str] | None = None) -> ExerciseResult:
    """Run ``tests`` (default: the hidden tests) of ``exercise`` against ``submission_root``."""
    started = time.perf_counter()
    _import_plugins_unrewritten()  # now: while a fork server warms up, not after its first sandbox (~0.4 s)
    test_file = tests or exercise.hidden_tests
    module = submission_root / exercise.id / f"{exercise.id}.py"
    stopped = _precheck(exercise, module, isolation)
    if stopped:
        outcome, message = stopped
        collector = run_pytest(test_file, submission_root, isolation=isolation, collect_only=True)
        results = _all_tests(collector, outcome, message.splitlines()[0])
    else:
        outcome, message = "graded", ""
        collector = run_pytest(test_file, submission_root, isolation=isolation,
                               test_timeout_s=max(60.0, 12 * exercise.timeout_s), extra=extra)
        results = [collector.tests.get(name) or TestResult(name, "error", 0.0, pts, "the test did not run")
                   for name, pts in collector.collected.items()]
        if isolation == "sandbox":
            sandbox.sweep()  # nothing the submission started outlives its grade
    if collector.errors:
        outcome, message = "error", "the grader could not load its tests:\n" + "\n".join(collector.errors)
    score, max_score = _scaled(exercise, results)
    return ExerciseResult(exercise.id, exercise.title, round(score, 6), round(max_score, 6), results,
                          outcome, message, round(time.perf_counter() - started, 3))


def _precheck(exercise: Exercise, module: Path, isolation: str) -> tuple[str, str] | None:
    """Why no test can pass, said once for the exercise: missing, forbidden spelling, import failure."""
    if module.is_symlink():
        return "error", f"{module.name} must be a regular file, not a link"
    if not module.is_file():
        return "error", NOT_SUBMITTED
    source = module.read_text(encoding="utf-8", errors="replace")
    try:
        uses = scan.forbidden_uses(source, exercise.forbidden)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        return "error", (f"{module.name} has a syntax error at line {exc.lineno}: {exc.msg}"
                         + (f"\n    {line}" if line else ""))
    if uses:
        where = "; ".join(f"line {u.line}: {u.name}" for u in uses)
        return "forbidden", f"{module.name} uses a forbidden API ({where}): implement it yourself"
    if exercise.forbidden or exercise.forbidden_aten:  # only a guard can be escaped
        escapes = scan.escape_hatches(source, aten_guard=bool(exercise.forbidden_aten))
        if escapes:
            return "forbidden", "\n".join(e.message() for e in escapes)
    sandbox = Sandbox(module, exercise.id, timeout_s=max(exercise.timeout_s, 10.0),
                      inline=isolation == "inline", probe_files=(imported.__code__.co_filename,), spares=0)
    try:
        sandbox.run(imported)
    except ProbeFailure as failure:
        record = getattr(failure, "record", None)
        return failure.outcome, format_raised(record) if record else failure.message
    finally:
        sandbox.close()
    return None


def grade_submission(submission_root: Path, exercises: tuple[Exercise, ...], *, isolation: str = "sandbox",
                     on_result=None) -> GradeResult:
    """Grade every exercise in ``exercises``; ``on_result(ExerciseResult)`` is called as each finishes."""
    _import_preloads(exercises)
    results = []
    for exercise in exercises:
        result = grade_exercise(exercise, submission_root, isolation=isolation)
        results.append(result)
        if on_result:
            on_result(result)
    return GradeResult(str(submission_root), results, isolation=isolation_in_force(isolation))


def _import_preloads(exercises: tuple[Exercise, ...]) -> None:
    """Import what the exercises ``preload`` before grading them, and freeze it like the plugins.

    torch._dynamo (~1 s, ~800 modules; any torch optimiser loads it) would otherwise be imported by the
    first test that needs it, and its objects scanned by the full ``gc.collect()`` pytest runs as every
    later exercise's session ends: seconds of a full grade, inline or sandboxed. With a fork server,
    which imports the same modules while it warms up, the grader also stops waiting for that."""
    names = [name for exercise in exercises for name in exercise.preload if name not in sys.modules]
    if not names:
        return
    for name in dict.fromkeys(names):
        try:
            importlib.import_module(name)
        except Exception:  # e.g. torch patched by submission code an inline grade ran in this process:
            pass  # only speed is at stake; whatever needs the module imports it and reports the error
    gc.collect()
    gc.freeze()


def isolation_in_force(isolation: str) -> str:
    if isolation == "inline":
        return "inline (no isolation)"
    from grader.sandbox import fork_server

    return "sandbox process: " + "; ".join(fork_server().isolation())
