"""The pytest side of the grader (registered as the ``dlkata`` pytest11 plugin).

Tests never import a submission: they take the ``submission`` fixture and call
``submission.run(probe, *args)``; the probe runs where the submission lives (a sandbox process, or this
process in inline mode) and returns plain data, and the test judges it here. Each test's outcome
(``passed``, ``failed``, ``error``, ``timeout``, ``crashed``, ``forbidden``, ``not_implemented``), points
and learner message are attached to its report as ``user_properties``.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

import pytest

from grader import catalog
from grader.errors import DlkataError, ProbeFailure, ProbeTimeout, SubmissionRaised
from grader.sandbox import Sandbox

NOT_SUBMITTED = "not submitted"
MESSAGE_LIMIT = 3000
TIMEOUTS_BEFORE_CUTOFF = 3  # after this many timed-out tests, the exercise's other tests are not run
TIMEOUT_ENV = "DLKATA_PROBE_TIMEOUT_S"  # overrides exercise.toml's timeout_s (the kit's own tests)
_timeouts = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dlkata")
    group.addoption("--dlkata-submission", default=None,
                    help="folder laid out like exercises/ whose <id>/<id>.py is tested "
                         "(default: the folder holding the test's exercise folder)")
    group.addoption("--dlkata-isolation", choices=("inline", "sandbox"), default="inline",
                    help="run probes in this process (inline, the default for learners) or a sandbox")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points the test is worth (default 1)")


class Submission:
    """One exercise's submission as a test sees it: ``run`` probes, ``raises`` expected errors."""

    def __init__(self, exercise_id: str, path: Path, sandbox: Sandbox | None) -> None:
        self.exercise_id = exercise_id
        self.path = path
        self._sandbox = sandbox

    def __repr__(self) -> str:  # stable: it appears in hypothesis' falsifying examples
        return f"<submission {self.exercise_id}>"

    def _require(self) -> Sandbox:
        if self._sandbox is None:
            raise ProbeFailure(NOT_SUBMITTED)
        return self._sandbox

    def run(self, probe: Callable, *args: Any, **kwargs: Any) -> Any:
        """``probe(module, *args, **kwargs)`` executed against the submission; returns plain data."""
        return self._require().run(probe, *args, **kwargs)

    def raises(self, expected: type | str, probe: Callable, *args: Any, msg: str = "",
               **kwargs: Any) -> SubmissionRaised:
        """Run ``probe`` expecting the submission to raise ``expected`` (a class or its name).

        A ``NotImplementedError`` still means "not implemented" (unless it is what is expected); any
        other exception, or none, fails the test with ``msg`` and what happened instead.
        """
        wanted = expected if isinstance(expected, str) else expected.__name__
        try:
            self.run(probe, *args, **kwargs)
        except SubmissionRaised as err:
            if err.is_a(wanted):
                return err
            if err.outcome == "not_implemented":
                raise
            raise AssertionError(f"{msg or f'expected {wanted}'}; instead:\n{err.message}") from None
        raise AssertionError(f"{msg or f'expected {wanted}'}, but nothing was raised")

    def source(self) -> str:
        """The submission's source text (for static checks; parsing it runs none of it)."""
        if not self.path.is_file():
            raise ProbeFailure(NOT_SUBMITTED)
        return self.path.read_text(encoding="utf-8", errors="replace")

    def tree(self) -> ast.Module:
        try:
            return ast.parse(self.source(), filename=self.path.name)
        except SyntaxError as exc:
            raise ProbeFailure(f"{self.path.name} has a syntax error at line {exc.lineno}: {exc.msg}") from None


def exercise_id_of(test_file: Path) -> str:
    name = test_file.stem
    if not name.startswith("test_"):
        raise DlkataError(f"{test_file}: the submission fixture needs a test file named test_<id>.py")
    return name[len("test_"):]


def submission_root(config: pytest.Config, test_file: Path) -> Path:
    option = config.getoption("--dlkata-submission")
    if option:
        return Path(option).resolve()
    if test_file.parent.name == exercise_id_of(test_file):  # exercises/<id>/test_<id>.py
        return test_file.parent.parent
    return catalog.kit_root() / "exercises"


def _tests_after(request: pytest.FixtureRequest) -> int:
    """How many tests that take a submission run after this one: the sandboxes still to come."""
    items = request.session.items
    later = items[items.index(request.node) + 1:] if request.node in items else []
    return sum("submission" in getattr(item, "fixturenames", ()) for item in later)


@pytest.fixture
def submission(request: pytest.FixtureRequest):
    test_file = Path(str(request.node.path))
    exercise_id = exercise_id_of(test_file)
    path = submission_root(request.config, test_file) / exercise_id / f"{exercise_id}.py"
    try:
        exercise = catalog.get(exercise_id)
        timeout_s, forbidden, aten = exercise.timeout_s, exercise.forbidden, exercise.forbidden_aten
    except DlkataError:
        timeout_s, forbidden, aten = catalog.DEFAULT_TIMEOUT_S, (), ()
    timeout_s = float(os.environ.get(TIMEOUT_ENV, timeout_s))
    sandbox = None
    if request.config.stash.get(_timeouts, 0) >= TIMEOUTS_BEFORE_CUTOFF:
        raise ProbeTimeout(f"timeout: not run, {TIMEOUTS_BEFORE_CUTOFF} earlier tests of this exercise timed out")
    if path.is_file():
        sandbox = Sandbox(path, exercise_id, timeout_s=timeout_s, forbidden=forbidden, forbidden_aten=aten,
                          probe_files=(str(test_file),), spares=_tests_after(request),
                          inline=request.config.getoption("--dlkata-isolation") == "inline")
    try:
        yield Submission(exercise_id, path, sandbox)
    finally:
        if sandbox is not None:
            sandbox.close()


# -- outcomes ------------------------------------------------------------------------------------

def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, ProbeFailure) else str(exc)
    notes = getattr(exc, "__notes__", None)
    if notes:
        text = f"{text}\n" + "\n".join(str(n) for n in notes)
    if not isinstance(exc, (AssertionError, ProbeFailure)):
        text = f"{type(exc).__name__}: {text}"
    text = re.sub(r" at 0x[0-9a-f]+", "", text)  # addresses differ between runs: a grade must not
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "\n[... message truncated]"


def _innermost(exc: BaseException) -> BaseException:
    """The probe failure inside a group (hypothesis wraps a failure that replays differently)."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [_innermost(e) for e in exc.exceptions]
        return next((e for e in inner if isinstance(e, ProbeFailure)), inner[0] if inner else exc)
    return exc


def outcome_of(report: pytest.TestReport, excinfo: pytest.ExceptionInfo | None) -> tuple[str, str]:
    if report.passed:
        return "passed", ""
    if excinfo is None:
        return ("failed" if report.when == "call" else "error"), str(report.longrepr)[-MESSAGE_LIMIT:]
    exc = _innermost(excinfo.value)
    if isinstance(exc, ProbeFailure):
        return exc.outcome, _message(exc)
    if "Timeout" in str(exc)[:200] and type(exc).__name__ == "Failed":  # pytest-timeout, the second line
        return "timeout", "timeout: the test ran past its time limit"
    if report.when != "call":
        return "error", _message(exc)
    return "failed", _message(exc)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.failed):
        verdict, message = outcome_of(report, call.excinfo)
        if verdict == "timeout":
            item.config.stash[_timeouts] = item.config.stash.get(_timeouts, 0) + 1
        marker = item.get_closest_marker("points")
        points = float(marker.args[0]) if marker and marker.args else 1.0
        report.user_properties.extend([("dlkata_outcome", verdict), ("dlkata_message", message),
                                       ("dlkata_points", points)])
