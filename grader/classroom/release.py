"""``dlkata release OUT``: a starter repository for learners.

It holds the stubs, statements, public tests and hints, and the engine that ``dlkata check`` needs —
never a reference solution, a hidden test, a mutant or an explanation (those stay with the instructor's
installation, where ``dlkata grade`` runs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.catalog import Exercise, kit_root
from grader.errors import DlkataError

EXERCISE_FILES = ("README.md", "README.zh.md", "exercise.toml")
ENGINE_EXCLUDE = shutil.ignore_patterns("hidden", "__pycache__", "*.pyc")

STUDENT_README = """# dlkata — your exercises

Deep-learning interview questions as coding exercises. Each folder under `exercises/` holds a statement
(`README.md`, Chinese: `README.zh.md`), a stub to fill in and public tests.

```bash
make setup                      # once: a virtual environment with torch (CPU) and dlkata
.venv/bin/dlkata list           # the exercises, in order
.venv/bin/dlkata show softmax   # a statement
.venv/bin/dlkata check softmax  # its public tests against exercises/softmax/softmax.py
.venv/bin/dlkata hint softmax   # the next hint
```

The public tests are a quick feedback loop, not the grade: your instructor grades with hidden tests
that check more. Commit and push your `exercises/<id>/<id>.py` files; CI runs the public checks.

Exercises in this release: {ids}
"""

WORKFLOW = """name: public checks
on: [push, pull_request]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: make setup
      - name: public tests
        run: |
          status=0
          for id in {ids}; do .venv/bin/dlkata check "$id" || status=1; done
          exit $status
"""

MAKEFILE_TARGETS = ("setup",)


def release(out: Path, exercises: tuple[Exercise, ...]) -> Path:
    if out.exists() and any(out.iterdir()):
        raise DlkataError(f"{out} exists and is not empty; choose a new folder for the release")
    root = kit_root()
    out.mkdir(parents=True, exist_ok=True)
    for e in exercises:
        target = out / "exercises" / e.id
        target.mkdir(parents=True)
        for name in (*EXERCISE_FILES, e.stub.name, e.public_tests.name):
            if (e.folder / name).is_file():
                shutil.copy(e.folder / name, target / name)
    shutil.copytree(root / "grader", out / "grader", ignore=ENGINE_EXCLUDE)
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy(root / name, out / name)
    for doc in ("DISTRIBUTED.md",):
        if (root / "docs" / doc).is_file():
            (out / "docs").mkdir(exist_ok=True)
            shutil.copy(root / "docs" / doc, out / "docs" / doc)
    ids = " ".join(e.id for e in exercises)
    (out / "README.md").write_text(STUDENT_README.format(ids=ids), encoding="utf-8")
    (out / ".gitignore").write_text(".venv/\n__pycache__/\n*.egg-info/\n.dlkata/\n", encoding="utf-8")
    workflow = out / ".github" / "workflows" / "check.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(WORKFLOW.format(ids=ids), encoding="utf-8")
    return out
