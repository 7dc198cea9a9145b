"""The original stub of an exercise, and ``dlkata reset``: put it back, keeping the learner's version in
``.dlkata/backups/<id>-<timestamp>.py`` of the workspace.

A file "is a stub" when every function in it only raises ``NotImplementedError`` (besides a docstring,
``pass`` and ``super().__init__(...)``). The original comes from the kit's ``exercises/<id>/<id>.py``
when that is still a stub, else from the newest version of it in the kit's git history that is one."""

from __future__ import annotations

import ast
import shutil
import subprocess
import time
from pathlib import Path

from grader.catalog import Exercise, kit_root
from grader.errors import DlkataError
from grader.workspace import state_dir


def _trivial(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
        return True
    if isinstance(stmt, ast.Raise):
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):  # super().__init__(...)
        func = stmt.value.func
        return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super")
    return False


def is_stub(source: str) -> bool:
    """Every function only raises NotImplementedError: nothing of the learner's is in it yet."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return bool(functions) and all(all(_trivial(s) for s in f.body) for f in functions)


def _git_versions(path: Path):
    """The file's committed versions in the kit's history, newest first (nothing without git)."""
    root = kit_root()
    relative = path.resolve().relative_to(root).as_posix()
    try:
        log = subprocess.run(["git", "-C", str(root), "log", "--format=%H", "--", relative],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return
    for commit in log.stdout.split():
        shown = subprocess.run(["git", "-C", str(root), "show", f"{commit}:{relative}"],
                               capture_output=True, text=True, timeout=30)
        if shown.returncode == 0:
            yield shown.stdout


def original_stub(exercise: Exercise) -> str:
    source = exercise.stub.read_text(encoding="utf-8") if exercise.stub.is_file() else ""
    if is_stub(source):
        return source
    try:
        for version in _git_versions(exercise.stub):
            if is_stub(version):
                return version
    except ValueError:  # the stub is not inside the kit checkout
        pass
    raise DlkataError(f"cannot find the original stub of {exercise.id}: {exercise.stub} has been edited "
                      "and the kit has no git history holding it")


def backup_path(exercise_id: str) -> Path:
    folder = state_dir() / "backups"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"{exercise_id}-{stamp}.py", 1
    while path.exists():
        n += 1
        path = folder / f"{exercise_id}-{stamp}-{n}.py"
    return path


def reset(exercise: Exercise, root: Path, backup: Path | None = None) -> tuple[str, Path | None]:
    """Write the original stub to ``root/<id>/<id>.py``. Returns ``("same" | "created" | "reset", backup)``."""
    target = root / exercise.id / f"{exercise.id}.py"
    stub = original_stub(exercise)
    if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == stub:
        return "same", None
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(stub, encoding="utf-8")
        return "created", None
    backup = backup or backup_path(exercise.id)
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, backup)
    target.write_text(stub, encoding="utf-8")
    return "reset", backup
