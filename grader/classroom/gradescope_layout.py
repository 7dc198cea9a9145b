"""Lay out a Gradescope submission folder as a dlkata submission: ``<id>.py`` anywhere in it (flat or in
``<id>/``) becomes ``OUT/<id>/<id>.py``. Only files named after a known exercise are taken."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grader import catalog


def layout(source: Path, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    taken = []
    for exercise in catalog.catalog():
        candidates = [source / exercise.id / f"{exercise.id}.py", source / f"{exercise.id}.py",
                      *sorted(source.rglob(f"{exercise.id}.py"))]
        found = next((c for c in candidates if c.is_file() and not c.is_symlink()), None)
        if found:
            (out / exercise.id).mkdir(exist_ok=True)
            shutil.copyfile(found, out / exercise.id / f"{exercise.id}.py")
            taken.append(exercise.id)
    return taken


if __name__ == "__main__":
    layout(Path(sys.argv[1]), Path(sys.argv[2]))
