"""The catalog: every exercise is a folder ``exercises/<id>/`` with an ``exercise.toml``.

Adding an exercise means adding its folders; nothing here names an exercise.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from grader.errors import DlkataError

PACKAGE_DIR = Path(__file__).resolve().parent
HIDDEN_DIR = PACKAGE_DIR / "hidden"
DEFAULT_TIMEOUT_S = 10.0


def kit_root() -> Path:
    """The kit checkout that holds ``exercises/`` (``DLKATA_KIT`` overrides, for installed graders)."""
    return Path(os.environ.get("DLKATA_KIT", PACKAGE_DIR.parent)).resolve()


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    topic: str
    difficulty: int
    order: int
    points: float | None  # None: the exercise is worth the sum of its tests' points
    timeout_s: float
    forbidden: tuple[str, ...] = ()  # dotted Python names, e.g. "torch.nn.functional.softmax"
    forbidden_aten: tuple[str, ...] = ()  # aten overload packets, e.g. "aten::_softmax"
    preload: tuple[str, ...] = ()  # modules torch loads lazily that grading it uses: the fork server imports them
    hints: tuple[str, ...] = ()
    hints_zh: tuple[str, ...] = ()
    folder: Path = field(default=Path("."), compare=False)

    @property
    def statement(self) -> Path:
        return self.folder / "README.md"

    @property
    def stub(self) -> Path:
        return self.folder / f"{self.id}.py"

    @property
    def public_tests(self) -> Path:
        return self.folder / f"test_{self.id}.py"

    @property
    def hidden_tests(self) -> Path:
        return HIDDEN_DIR / f"test_{self.id}.py"


REQUIRED = ("id", "title", "topic", "difficulty", "order")


def load_exercise(folder: Path) -> Exercise:
    path = folder / "exercise.toml"
    try:
        meta = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DlkataError(f"{path}: cannot read exercise metadata ({exc})") from exc
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise DlkataError(f"{path}: missing keys {', '.join(missing)}")
    if meta["id"] != folder.name:
        raise DlkataError(f"{path}: id is {meta['id']!r} but the folder is {folder.name!r}; they must match")
    if meta["difficulty"] not in (1, 2, 3):
        raise DlkataError(f"{path}: difficulty must be 1, 2 or 3, not {meta['difficulty']!r}")
    return Exercise(
        id=meta["id"],
        title=meta["title"],
        topic=meta["topic"],
        difficulty=int(meta["difficulty"]),
        order=int(meta["order"]),
        points=float(meta["points"]) if "points" in meta else None,
        timeout_s=float(meta.get("timeout_s", DEFAULT_TIMEOUT_S)),
        forbidden=tuple(meta.get("forbidden", ())),
        forbidden_aten=tuple(meta.get("forbidden_aten", ())),
        preload=tuple(meta.get("preload", ())),
        hints=tuple(meta.get("hints", ())),
        hints_zh=tuple(meta.get("hints_zh", ())),
        folder=folder,
    )


@lru_cache(maxsize=None)
def _load_catalog(root: Path) -> tuple[Exercise, ...]:
    folders = [p for p in (root / "exercises").iterdir() if (p / "exercise.toml").is_file()]
    return tuple(sorted((load_exercise(p) for p in folders), key=lambda e: (e.order, e.id)))


def catalog(root: Path | None = None) -> tuple[Exercise, ...]:
    """All exercises, in the learner's order."""
    root = root or kit_root()
    if not (root / "exercises").is_dir():
        raise DlkataError(f"no exercises/ folder under {root}; set DLKATA_KIT to the kit's checkout")
    return _load_catalog(root)


def get(exercise_id: str, root: Path | None = None) -> Exercise:
    for exercise in catalog(root):
        if exercise.id == exercise_id:
            return exercise
    known = ", ".join(e.id for e in catalog(root))
    raise DlkataError(f"unknown exercise {exercise_id!r}; known exercises: {known}")


def is_submission(path: Path, exercises: tuple[Exercise, ...]) -> bool:
    """A folder laid out like exercises/: at least one ``<id>/<id>.py`` of a known exercise."""
    return path.is_dir() and any((path / e.id / f"{e.id}.py").is_file() for e in exercises)
