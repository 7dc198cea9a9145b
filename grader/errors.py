"""Exception types. ``DlkataError`` is the one root the CLI maps to exit code 2; the ``ProbeFailure``
family is raised in the test process when a probe did not return data, and the pytest plugin turns each
into a test outcome."""

from __future__ import annotations


class DlkataError(Exception):
    """A usage error (unknown exercise, missing path): one clear line, exit code 2."""


class ProbeFailure(AssertionError):
    """A probe gave no usable result. ``outcome`` is the result-schema outcome it stands for."""

    outcome = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SubmissionRaised(ProbeFailure):
    """Submission code raised an exception (carried back as text, never as a pickled object)."""

    def __init__(self, record: dict) -> None:
        self.record = record
        self.type_name: str = record["type"]
        self.mro: list[str] = list(record.get("mro", [record["type"]]))
        self.text: str = record.get("message", "")
        self.outcome = ("not_implemented" if self.is_a("NotImplementedError")
                        else "timeout" if self.is_a("WorldTimeout")  # a distributed world that hung
                        else "error")
        super().__init__(format_raised(record))

    def is_a(self, name: str | type) -> bool:
        """Whether the learner's exception is an instance of ``name`` (a class or a class name)."""
        wanted = name if isinstance(name, str) else name.__name__
        return wanted in self.mro


def format_raised(record: dict) -> str:
    where = record.get("traceback", "").rstrip()
    head = f"{record.get('file', 'your code')} raised {record['type']}: {record.get('message', '')}".rstrip(": ")
    if record["type"] == "NotImplementedError":
        head = f"not implemented yet ({record.get('file', 'your code')} raised NotImplementedError)"
    return f"{head}\n{where}" if where else head


class ProbeTimeout(ProbeFailure):
    outcome = "timeout"


class ProbeCrashed(ProbeFailure):
    outcome = "crashed"


class ForbiddenCall(ProbeFailure):
    outcome = "forbidden"


class UnsupportedResult(ProbeFailure):
    outcome = "error"
