"""The learner's commands beyond check/grade, registered on the ``dlkata`` group: ``watch``,
``progress``, ``reset``, ``explain``, ``report`` and ``mock``; plus the ``--lang`` option (on the group
and on each learner-facing command, ``show`` and ``hint`` included). The logic is in ``grader.learner``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.columns import Columns
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from grader import catalog
from grader.cli import RELEASE_NOTE, _submission, main
from grader.errors import DlkataError
from grader.learner import i18n
from grader.results import GradeResult
from grader.workspace import State, state_dir


def _console() -> Console:
    return Console(highlight=False)


def _kit_graded(exercises) -> None:
    if not any(e.hidden_tests.is_file() for e in exercises):
        raise DlkataError(RELEASE_NOTE)


# -- watch -----------------------------------------------------------------------------------------

@main.command()
@click.argument("exercise_id", required=False)
@click.argument("path", default="exercises")
def watch(exercise_id: str | None, path: str) -> None:
    """Re-run an exercise's public tests on every save of PATH/ID/ID.py; once they pass, move on to the
    next unsolved exercise. Without ID: the first unsolved one. Ctrl-C stops."""
    from grader.learner import watch as watching

    if exercise_id and Path(exercise_id).is_dir() and exercise_id not in {e.id for e in catalog.catalog()}:
        exercise_id, path = None, exercise_id  # `dlkata watch FOLDER`
    root = _submission(path, catalog.catalog() if exercise_id is None else (catalog.get(exercise_id),))
    exercise = catalog.get(exercise_id) if exercise_id else watching.first_unsolved(root)
    if exercise is None:
        click.echo(i18n.t("watch_all_done"))
        return
    try:
        watching.watch_loop(exercise, root, watching.file_changes(root))
    except KeyboardInterrupt:  # between the loop's own handler and the watcher's shutdown
        click.echo(i18n.t("watch_stopped"))


# -- progress and reset ----------------------------------------------------------------------------

@main.command()
@click.argument("path", default="exercises")
def progress(path: str) -> None:
    """Solved / attempted / untouched per topic, and the best hidden-test score of each exercise."""
    from grader.learner import progress as prog

    root = Path(path).resolve()
    table = prog.rows(root if root.is_dir() else None)
    console = _console()
    topics = Table(title=i18n.t("progress_title"))
    for column in ("col_topic", "solved", "attempted", "untouched"):
        topics.add_column(i18n.t(column), justify="left" if column == "col_topic" else "right")
    for topic, counts in prog.by_topic(table).items():
        topics.add_row(topic, *(str(counts[s]) for s in prog.STATUSES))
    console.print(topics)
    detail = Table()
    for column in ("col_exercise", "col_topic", "col_status", "col_best", "col_hints"):
        detail.add_column(i18n.t(column), justify="right" if column in ("col_best", "col_hints") else "left")
    style = {"solved": "green", "attempted": "yellow", "untouched": "dim"}
    for row in table:
        best = "-" if row.best_percent is None else f"{row.best_percent:.0f}%"
        hints = len(i18n.hints(row.exercise))
        detail.add_row(f"{row.exercise.order:>2}. {row.exercise.id}", row.exercise.topic,
                       f"[{style[row.status]}]{i18n.t(row.status)}[/]", best,
                       f"{min(row.hints_shown, hints)}/{hints}")
    console.print(detail)
    counts = {s: sum(r.status == s for r in table) for s in prog.STATUSES}
    console.print(i18n.t("progress_total", total=len(table), **counts))


@main.command()
@click.argument("exercise_id")
@click.argument("path", default="exercises")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(exercise_id: str, path: str, yes: bool) -> None:
    """Put the original stub back in PATH/ID/ID.py; your version is kept in .dlkata/backups/."""
    from grader.learner import stubs

    exercise = catalog.get(exercise_id)
    root = Path(path).resolve()
    if not root.is_dir():
        raise DlkataError(f"{path}: no such folder; give a folder laid out like exercises/ (e.g. ./exercises)")
    target = root / exercise.id / f"{exercise.id}.py"
    stub = stubs.original_stub(exercise)
    if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == stub:
        click.echo(i18n.t("reset_same", file=target))
        return
    backup = stubs.backup_path(exercise.id)
    if target.is_file() and not yes and not click.confirm(i18n.t("reset_confirm", file=target, backup=backup)):
        click.echo(i18n.t("aborted"))
        return
    what, backup = stubs.reset(exercise, root, backup)
    click.echo(i18n.t({"same": "reset_same", "created": "reset_created", "reset": "reset_done"}[what],
                      file=target, backup=backup))


# -- explain ---------------------------------------------------------------------------------------

@main.command()
@click.argument("exercise_id")
@click.argument("path", default="exercises")
@click.option("--force", is_flag=True, help="Show it even though the exercise has not passed its hidden tests.")
@click.option("--side-by-side", is_flag=True, help="Your solution and the reference in two panels, not a diff.")
def explain(exercise_id: str, path: str, force: bool, side_by_side: bool) -> None:
    """Once ID passes its hidden tests: the interview answer (EXPLAIN.md) and the reference solution
    beside yours."""
    from grader.learner.explain import explanation

    found = explanation(catalog.get(exercise_id), Path(path).resolve(), force=force)
    console = _console()
    console.print(Markdown(found.explain_md) if found.explain_md else i18n.t("explain_missing", id=exercise_id))
    console.rule()
    if found.yours is None:
        console.print(i18n.t("explain_no_yours", file=found.yours_path))
        console.print(Panel(Syntax(found.reference, "python", line_numbers=True, word_wrap=True),
                            title=i18n.t("explain_reference")))
    elif side_by_side:
        console.print(Columns([Panel(Syntax(found.yours, "python", word_wrap=True), title=i18n.t("explain_yours")),
                               Panel(Syntax(found.reference, "python", word_wrap=True), title=i18n.t("explain_reference"))],
                              equal=True, expand=True))
    else:
        diff = found.diff()
        if not diff:
            console.print(i18n.t("explain_identical"))
        else:
            console.print(i18n.t("explain_diff"))
            console.print(Syntax(diff, "diff", word_wrap=True))


# -- report and mock -------------------------------------------------------------------------------

def _grade_for_report(root: Path, exercises) -> GradeResult:
    from rich.progress import Progress

    from grader.runner import grade_submission

    with Progress(transient=True) as bar:
        task = bar.add_task("grading", total=len(exercises))
        result = grade_submission(root, exercises, on_result=lambda r: bar.advance(task))
    State().record(result)
    return result


@main.command()
@click.argument("path", required=False)
@click.option("--html", "html_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML page to FILE.")
@click.option("--from-json", "from_json", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use this result (dlkata grade --format json) instead of grading.")
@click.option("--exercise", "exercise_ids", multiple=True, metavar="ID", help="Grade only these exercises.")
def report(path: str | None, html_file: Path, from_json: Path | None, exercise_ids: tuple[str, ...]) -> None:
    """Grade PATH (default ./exercises), or read --from-json, and write a self-contained HTML report."""
    from grader.learner import html_report

    if from_json:
        try:
            result = GradeResult.from_dict(json.loads(from_json.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise DlkataError(f"{from_json}: not a dlkata result ({exc})") from None
        root = Path(path or result.submission).resolve()
        root = root if root.is_dir() else None
    else:
        exercises = tuple(catalog.get(i) for i in exercise_ids) if exercise_ids else catalog.catalog()
        _kit_graded(exercises)
        root = _submission(path or "exercises", exercises)
        result = _grade_for_report(root, exercises)
    html_report.write(html_file, result, root)
    click.echo(i18n.t("report_written", file=html_file))


@main.command()
@click.argument("path", default="exercises")
@click.option("--minutes", type=click.FloatRange(min=0), default=45.0, show_default=True,
              help="Length of the interview (0: grade at once).")
@click.option("--topic", "topics", multiple=True, metavar="TOPIC", help="Draw only from these topics.")
@click.option("--seed", type=int, help="Seed of the draw (the same seed picks the same exercises).")
@click.option("--count", type=click.IntRange(min=1), default=3, show_default=True, help="How many exercises.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the report (default .dlkata/mock-<time>.html).")
def mock(path: str, minutes: float, topics: tuple[str, ...], seed: int | None, count: int,
         html_file: Path | None) -> None:
    """A mock interview: random exercises, a countdown, then grading and an HTML report."""
    from grader.learner import html_report
    from grader.learner.mock import countdown, pick
    from grader.report import table

    chosen = tuple(pick(count, topics, seed))
    _kit_graded(chosen)
    root = _submission(path, chosen, allow_empty=True)
    console = _console()
    console.print(i18n.t("mock_picked", count=len(chosen), minutes=minutes, path=root))
    for e in chosen:
        console.print(f"  {e.order:>2}. [bold]{e.id}[/bold]  {e.title}  ({e.topic}, {'*' * e.difficulty})"
                      f"  [dim]dlkata show {e.id}[/dim]")
    how = countdown(minutes * 60, console)
    console.print(i18n.t("mock_time_up" if how == "time_up" else "mock_stopped"))
    result = _grade_for_report(root, chosen)
    click.echo(table.render(result))
    html_file = html_file or state_dir() / f"mock-{time.strftime('%Y%m%d-%H%M%S')}.html"
    html_report.write(html_file, result, root, title="dlkata mock interview")
    click.echo(i18n.t("report_written", file=html_file))


# -- --lang everywhere the learner reads -----------------------------------------------------------

main.params.append(i18n.lang_option(group=True))
for _name in ("show", "hint", "watch", "progress", "reset", "explain", "report", "mock"):
    main.commands[_name].params.append(i18n.lang_option())
