"""The result schema ``dlkata.result/1`` (keys may be added, never renamed)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

SCHEMA = "dlkata.result/1"
OUTCOMES = ("passed", "failed", "error", "timeout", "crashed", "forbidden", "not_implemented")


@dataclass
class TestResult:
    name: str
    outcome: str
    points: float
    max_points: float
    message: str = ""


@dataclass
class ExerciseResult:
    id: str
    title: str
    score: float
    max_score: float
    tests: list[TestResult] = field(default_factory=list)
    outcome: str = "graded"  # graded, or the one outcome that stopped every test (error, forbidden, ...)
    message: str = ""        # said once for the whole exercise (not submitted, import error, ...)
    seconds: float = 0.0

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


@dataclass
class GradeResult:
    submission: str
    exercises: list[ExerciseResult]
    isolation: str = ""
    schema: str = SCHEMA

    @property
    def score(self) -> float:
        return round(sum(e.score for e in self.exercises), 6)

    @property
    def max_score(self) -> float:
        return round(sum(e.max_score for e in self.exercises), 6)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    def to_dict(self) -> dict:
        return {"schema": self.schema, "submission": self.submission, "score": self.score,
                "max_score": self.max_score, "isolation": self.isolation,
                "exercises": [asdict(e) for e in self.exercises]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> "GradeResult":
        exercises = [ExerciseResult(**{**e, "tests": [TestResult(**t) for t in e["tests"]]})
                     for e in data["exercises"]]
        return cls(submission=data["submission"], exercises=exercises, isolation=data.get("isolation", ""))
