"""``dlkata watch``: re-run an exercise's public tests on every save of its file, show the first failure
(the learner's traceback) and the hint level, and move on to the next unsolved exercise once they pass.

``watch_loop`` takes the stream of file changes (what ``watchfiles.watch`` yields: sets of
``(Change, path)``) and the test runner as arguments, so it can be driven without a real watcher."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

import click

from grader import catalog
from grader.catalog import Exercise
from grader.interrupt import ctrl_c_kept
from grader.learner import i18n
from grader.learner.checker import all_passed, first_failure
from grader.results import ExerciseResult
from grader.workspace import State

SHOWN_LINES = 40
Runner = Callable[[Exercise, Path], ExerciseResult]


def run_in_sandboxes(exercise: Exercise, root: Path) -> ExerciseResult:
    """The public tests with every probe in a sandbox forked from this process's fork server: each test
    loads the file as saved, a hang is the probe's timeout, and after the first run nothing imports torch
    again, so a save is checked in well under a second."""
    with ctrl_c_kept(interrupt=False):  # Ctrl-C while torch loads stops the watch once it has loaded
        from grader.runner import grade_exercise

    return grade_exercise(exercise, root, isolation="sandbox", tests=exercise.public_tests)


def target(exercise: Exercise, root: Path) -> Path:
    return (root / exercise.id / f"{exercise.id}.py").resolve()


def file_changes(root: Path) -> Iterable[set]:
    """Batches of changes to Python files under ``root`` (Ctrl-C raises KeyboardInterrupt)."""
    import watchfiles

    return watchfiles.watch(root, watch_filter=watchfiles.PythonFilter(), raise_interrupt=True)


def public_passed(state: State) -> dict:
    return state.data.setdefault("public", {})


def next_unsolved(current: Exercise, root: Path, state: State,
                  exercises: tuple[Exercise, ...] | None = None) -> Exercise | None:
    """The next exercise in order after ``current`` (then wrapping round) that has a file under ``root``,
    has not passed its hidden tests and has not passed its public tests in a watch."""
    exercises = exercises or catalog.catalog()
    ids = [e.id for e in exercises]
    start = ids.index(current.id) + 1 if current.id in ids else 0
    for exercise in exercises[start:] + exercises[:start]:
        if exercise.id == current.id:
            continue
        best = state.data["exercises"].get(exercise.id, {}).get("best_percent", 0.0)
        if best >= 100 or public_passed(state).get(exercise.id) or not target(exercise, root).is_file():
            continue
        return exercise
    return None


def show_result(result: ExerciseResult, exercise: Exercise, state: State, echo: Callable[[str], None]) -> bool:
    """Print the outcome of one run; True when every public test passed."""
    if all_passed(result):
        echo(click.style(i18n.t("watch_pass", id=exercise.id, total=len(result.tests)), fg="green"))
        return True
    if result.message or not result.tests:
        echo(click.style(i18n.t("watch_broken", id=exercise.id), fg="red"))
        echo(_indent(result.message or "no public tests were collected"))
    else:
        failure = first_failure(result)
        passed = sum(t.outcome == "passed" for t in result.tests)
        echo(click.style(i18n.t("watch_fail", passed=passed, total=len(result.tests), test=failure.name,
                                outcome=failure.outcome), fg="red"))
        echo(_indent(failure.message))
    hints = i18n.hints(exercise)
    if hints:
        level = min(state.hints_shown(exercise.id), len(hints))
        echo(i18n.t("hint_level", level=level, total=len(hints), id=exercise.id))
        if level:
            echo(i18n.t("last_hint", text=hints[level - 1]))
    return False


def _indent(text: str) -> str:
    lines = text.splitlines() or [""]
    more = len(lines) - SHOWN_LINES
    return "\n".join("    " + line for line in lines[:SHOWN_LINES]) + (f"\n    ... ({more} more lines)" if more > 0 else "")


def watch_loop(exercise: Exercise, root: Path, changes: Iterable[set], *, run: Runner = run_in_sandboxes,
               echo: Callable[[str], None] = click.echo, state: State | None = None,
               exercises: tuple[Exercise, ...] | None = None) -> str:
    """Watch until Ctrl-C (returns ``"stopped"``), every exercise passes (``"done"``) or the change
    stream ends (``"ended"``)."""
    root = Path(root).resolve()
    state = state or State()
    current: Exercise | None = exercise

    def check(ex: Exercise) -> bool:
        echo(click.style(i18n.t("watch_run", id=ex.id, time=time.strftime("%H:%M:%S")), bold=True))
        with ctrl_c_kept():  # code the run goes through may catch a Ctrl-C and carry on
            result = run(ex, root)
        passed = show_result(result, ex, state, echo)
        public_passed(state)[ex.id] = passed
        state.save()
        return passed

    def settle(ex: Exercise) -> Exercise | None:
        """Check ``ex``; while the current exercise passes, move on to the next unsolved one."""
        while check(ex):
            following = next_unsolved(ex, root, state, exercises)
            if following is None:
                echo(click.style(i18n.t("watch_all_done"), fg="green", bold=True))
                return None
            echo(click.style(i18n.t("watch_next", id=following.id, title=following.title), fg="cyan", bold=True))
            ex = following
        echo(i18n.t("watch_waiting", file=target(ex, root)))
        return ex

    try:
        if not target(exercise, root).is_file():
            echo(i18n.t("watch_missing", file=target(exercise, root), id=exercise.id))
            return "ended"
        echo(i18n.t("watch_start", file=target(exercise, root)))
        current = settle(exercise)
        if current is None:
            return "done"
        for batch in changes:
            paths = {Path(path).resolve() for change, path in batch if getattr(change, "name", "") != "deleted"}
            if target(current, root) not in paths:
                continue
            current = settle(current)
            if current is None:
                return "done"
    except KeyboardInterrupt:
        echo(i18n.t("watch_stopped"))
        return "stopped"
    return "ended"


def first_unsolved(root: Path, state: State | None = None) -> Exercise | None:
    """Where ``dlkata watch`` without an ID starts: the first exercise in order that is not yet solved."""
    state = state or State()
    exercises = catalog.catalog()
    for exercise in exercises:
        best = state.data["exercises"].get(exercise.id, {}).get("best_percent", 0.0)
        if best < 100 and not public_passed(state).get(exercise.id) and target(exercise, root).is_file():
            return exercise
    return None
