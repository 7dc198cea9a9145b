"""Batch grading: every subdirectory of a folder is one learner's submission.

Each learner is graded in a process of its own (``python -m grader grade ... --format json``), so a
broken or malicious submission costs only its own row. Locally, ``--jobs`` such processes run at once;
with ``--scheduler ADDRESS`` each learner becomes one task on a Dask distributed cluster (the optional
``dlkata[cluster]`` extra), which receives the submission's files, not a path, so workers need no shared
filesystem. Either way the results stream into one gradebook (CSV or JSON) with a JSON result per
learner kept beside it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from grader.errors import DlkataError

LEARNER_TIMEOUT_S = 1800


@dataclass
class Row:
    learner: str
    result: dict | None  # the dlkata.result/1 document, or None if grading this learner failed
    error: str = ""


def read_submission(folder: Path) -> dict[str, bytes]:
    """The files that make a submission: ``<id>/<id>.py`` only."""
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in sorted(folder.glob("*/*.py"))
            if p.stem == p.parent.name}


def grade_files(learner: str, files: dict[str, bytes], exercises: tuple[str, ...] = ()) -> Row:
    """Grade one learner's files in a fresh grader process (runs locally or on a Dask worker)."""
    with tempfile.TemporaryDirectory(prefix="dlkata-batch-") as tmp:
        root = Path(tmp) / "submission"
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        root.mkdir(exist_ok=True)
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "grader", "grade", str(root), "--format", "json", "--output", str(out)]
        for e in exercises:
            cmd += ["--exercise", e]
        env = {**os.environ, "DLKATA_STATE_DIR": str(Path(tmp) / "state")}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=LEARNER_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            return Row(learner, None, f"grading took longer than {LEARNER_TIMEOUT_S} s")
        if not out.is_file():
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            return Row(learner, None, last[0])
        result = json.loads(out.read_text(encoding="utf-8"))
        result["submission"] = learner
        return Row(learner, result)


def learners(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DlkataError(f"{folder}: no such folder; give a folder with one subfolder per learner")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DlkataError(f"{folder}: no learner subfolders to grade")
    return found


def run_local(folders: list[Path], jobs: int, exercises: tuple[str, ...]) -> Iterator[Row]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_files, f.name, read_submission(f), exercises) for f in folders]
        for future in as_completed(futures):
            yield future.result()


def run_dask(folders: list[Path], address: str, exercises: tuple[str, ...]) -> Iterator[Row]:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise DlkataError("--scheduler needs Dask: pip install 'dlkata[cluster]'") from None
    with Client(address) as client:
        futures = [client.submit(grade_files, f.name, read_submission(f), exercises, key=f"dlkata-{f.name}",
                                 pure=False) for f in folders]
        for future in dask_completed(futures):
            yield future.result()


def write_gradebook(rows: list[Row], output: Path, exercise_ids: Iterable[str]) -> None:
    """One row per learner, a column per exercise; per-learner JSON in ``<stem>-results/`` beside it."""
    exercise_ids = list(exercise_ids)
    results_dir = output.with_name(f"{output.stem}-results")
    results_dir.mkdir(parents=True, exist_ok=True)
    table = []
    for row in sorted(rows, key=lambda r: r.learner):
        scores = {e["id"]: e["score"] for e in (row.result or {}).get("exercises", [])}
        record = {"learner": row.learner, "score": (row.result or {}).get("score", 0.0),
                  "max_score": (row.result or {}).get("max_score", 0.0),
                  **{e: scores.get(e, 0.0) for e in exercise_ids}, "error": row.error}
        table.append(record)
        (results_dir / f"{row.learner}.json").write_text(
            json.dumps(row.result if row.result else {"learner": row.learner, "error": row.error}, indent=2),
            encoding="utf-8")
    if output.suffix == ".json":
        output.write_text(json.dumps(table, indent=2), encoding="utf-8")
    else:
        with output.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["learner", "score", "max_score", *exercise_ids, "error"])
            writer.writeheader()
            writer.writerows(table)


def grade_batch(folder: Path, output: Path, exercise_ids: list[str], *, jobs: int = 1,
                scheduler: str | None = None, selected: tuple[str, ...] = (),
                progress: Callable[[Row], None] | None = None) -> list[Row]:
    folders = learners(folder)
    stream = run_dask(folders, scheduler, selected) if scheduler else run_local(folders, jobs, selected)
    rows = []
    for row in stream:
        rows.append(row)
        if progress:
            progress(row)
    write_gradebook(rows, output, exercise_ids)
    return rows
