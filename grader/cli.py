"""The ``dlkata`` command: a thin click layer over the library. Every ``DlkataError`` becomes one line
on stderr and exit code 2; a grade below ``--min-score`` exits 1."""

from __future__ import annotations

import sys
from pathlib import Path


def _selected_in(argv: list[str]) -> tuple[str, ...]:
    """The ``--exercise`` values of a command line, read before click parses it (a bad one: click's error)."""
    ids = [value for flag, value in zip(argv, argv[1:]) if flag == "--exercise"]
    return tuple(ids + [a.split("=", 1)[1] for a in argv if a.startswith("--exercise=")])


if sys.argv[1:2] in (["grade"], ["watch"]):  # start the fork server first: it imports torch while we do
    from grader import zygote

    zygote.start_early(_selected_in(sys.argv[2:]) if sys.argv[1] == "grade" else ())

import click

from grader import catalog
from grader.errors import DlkataError
from grader.report import FORMATS
from grader.workspace import State

RELEASE_NOTE = ("this copy of dlkata has no hidden tests (a student release): grading belongs to your "
                "instructor's installation. Use `dlkata check ID` for the public tests.")


def _exercises(ids: tuple[str, ...]) -> tuple[catalog.Exercise, ...]:
    return tuple(catalog.get(i) for i in ids) if ids else catalog.catalog()


def _submission(path: str, exercises: tuple[catalog.Exercise, ...], allow_empty: bool = False) -> Path:
    root = Path(path).resolve()
    if not root.is_dir():
        raise DlkataError(f"{path}: no such folder; give a folder laid out like exercises/ (e.g. ./exercises)")
    if not allow_empty and not catalog.is_submission(root, exercises):
        raise DlkataError(f"{path}: not a submission: it holds no <id>/<id>.py for "
                          f"{'these exercises' if len(exercises) < len(catalog.catalog()) else 'any exercise'}")
    return root


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DlkataError as exc:
            click.echo(f"dlkata: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="dlkata")
def main() -> None:
    """dlkata: deep-learning interview exercises with a sandboxed autograder."""


@main.command("list")
def list_() -> None:
    """Exercises in order, with topic, difficulty and status from the last grade."""
    state = State()
    for e in catalog.catalog():
        click.echo(f"{e.order:>2}. {e.id:<18} {e.title:<58} {e.topic:<12} {'*' * e.difficulty:<3} {state.status(e.id)}")


@main.command()
@click.argument("exercise_id")
def show(exercise_id: str) -> None:
    """Print an exercise's statement (README.zh.md with --lang zh)."""
    from grader.learner import i18n

    path, fell_back = i18n.statement(catalog.get(exercise_id))
    if fell_back:
        click.echo(i18n.t("no_zh_statement", id=exercise_id), err=True)
    click.echo(path.read_text(encoding="utf-8"))


@main.command()
@click.argument("exercise_id")
def hint(exercise_id: str) -> None:
    """Show the next hint not yet shown (remembered per workspace)."""
    from grader.learner import i18n

    exercise = catalog.get(exercise_id)
    hints = i18n.hints(exercise)
    if not hints:
        click.echo(i18n.t("no_hints", id=exercise.id))
        return
    shown = State().next_hint(exercise.id, hints)
    if shown is None:
        click.echo(i18n.t("hints_done", total=len(hints), id=exercise.id))
    else:
        level, text = shown
        click.echo(i18n.t("hint", level=level, total=len(hints), id=exercise.id, text=text))


@main.command()
@click.argument("exercise_id")
@click.argument("path", default="exercises")
def check(exercise_id: str, path: str) -> None:
    """Run one exercise's public tests (fast, in this process)."""
    from grader.runner import grade_exercise  # torch: only the commands that run tests import it

    exercise = catalog.get(exercise_id)
    root = _submission(path, (exercise,))
    result = grade_exercise(exercise, root, isolation="inline", tests=exercise.public_tests)
    if result.message:
        click.echo(f"{exercise.id}: {result.message}")
    for t in result.tests:
        mark = click.style("PASS", fg="green") if t.outcome == "passed" else click.style(t.outcome.upper(), fg="red")
        click.echo(f"{mark} {t.name}")
        if t.outcome != "passed" and not result.message:
            click.echo("     " + "\n     ".join(t.message.splitlines()[:12]))
    passed = sum(t.outcome == "passed" for t in result.tests)
    click.echo(f"{passed} passed, {len(result.tests) - passed} failed")
    sys.exit(0 if passed == len(result.tests) and result.tests else 1)


@main.command()
@click.argument("path", default="exercises")
@click.option("--exercise", "exercise_ids", multiple=True, metavar="ID", help="Grade only these exercises.")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE.")
@click.option("--min-score", type=click.FloatRange(0, 100), help="Exit 1 when the total is below PCT percent.")
@click.option("--allow-empty", is_flag=True, help="Grade a folder with no exercise files (every exercise: not submitted).")
def grade(path: str, exercise_ids: tuple[str, ...], fmt: str, output: str | None, min_score: float | None,
          allow_empty: bool) -> None:
    """Grade PATH (default ./exercises) with the hidden tests, every probe in a sandbox."""
    from grader.runner import grade_submission

    exercises = _exercises(exercise_ids)
    if not any(e.hidden_tests.is_file() for e in exercises):
        raise DlkataError(RELEASE_NOTE)
    root = _submission(path, exercises, allow_empty)
    result = grade_submission(root, exercises)
    State().record(result)
    text = FORMATS[fmt](result)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    if not output or fmt == "table":
        click.echo(text)
    if min_score is not None and result.percent < min_score:
        click.echo(f"score {result.percent:.1f}% is below --min-score {min_score:g}%", err=True)
        sys.exit(1)


@main.command("grade-batch")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--jobs", type=click.IntRange(1, 64), help="Learners graded at once, a core each [default: all usable cores].")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("grades.csv"),
              show_default=True, help="Gradebook: .csv or .json (per-learner results go beside it).")
@click.option("--exercise", "exercise_ids", multiple=True, metavar="ID")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")
def grade_batch_(folder: Path, jobs: int | None, output: Path, exercise_ids: tuple[str, ...], scheduler: str | None) -> None:
    """Grade every subfolder of FOLDER (one learner each) into one gradebook."""
    from rich.progress import Progress

    from grader.batch import grade_batch, learners

    exercises = _exercises(exercise_ids)
    if not any(e.hidden_tests.is_file() for e in exercises):
        raise DlkataError(RELEASE_NOTE)
    total = len(learners(folder))
    with Progress(transient=False) as bar:
        task = bar.add_task("grading", total=total)
        rows = grade_batch(folder, output, [e.id for e in exercises], jobs=jobs, scheduler=scheduler,
                           selected=exercise_ids, progress=lambda row: bar.advance(task))
    failed = [r.learner for r in rows if r.error]
    click.echo(f"{len(rows)} learners graded into {output}" + (f"; could not grade: {', '.join(failed)}" if failed else ""))


@main.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--exercise", "exercise_ids", multiple=True, metavar="ID")
def release(out: Path, exercise_ids: tuple[str, ...]) -> None:
    """Write a starter repository for learners to OUT (no solutions, no hidden tests)."""
    from grader.classroom.release import release as make_release

    make_release(out, _exercises(exercise_ids))
    click.echo(f"student release written to {out}")


@main.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def gradescope(out: Path) -> None:
    """Write a Gradescope autograder bundle (setup.sh, run_autograder and the kit) to OUT.zip."""
    from grader.classroom.gradescope import bundle

    bundle(out)
    click.echo(f"Gradescope autograder bundle written to {out}")


@main.command("nbgrader")
@click.argument("course", type=click.Path(file_okay=False, path_type=Path))
@click.option("--assignment", default="dlkata", show_default=True)
@click.option("--exercise", "exercise_ids", multiple=True, metavar="ID")
def nbgrader_(course: Path, assignment: str, exercise_ids: tuple[str, ...]) -> None:
    """Write nbgrader source notebooks (one per exercise) into COURSE/source/ASSIGNMENT."""
    try:
        from grader.classroom.nbgrader import write_course
    except ImportError:
        raise DlkataError("this needs nbgrader: pip install nbgrader") from None
    written = write_course(course, assignment, _exercises(exercise_ids))
    click.echo(f"{len(written)} notebooks written to {course / 'source' / assignment}; "
               f"next: cd {course} && nbgrader generate_assignment {assignment}")


from grader import cli_learner  # noqa: E402,F401  registers the learner commands
