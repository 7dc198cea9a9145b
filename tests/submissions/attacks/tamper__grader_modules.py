"""Tampering: monkeypatch the grader's own modules in the sandbox: grader.testing.close, grader.wire's
plain-data checks, grader.results, grader.plugin's outcome, grader.errors, then return wrong answers."""
import grader.errors as _errors
import grader.plugin as _plugin
import grader.results as _results
import grader.testing as _testing
import grader.wire as _wire
import torch as _torch

_testing.close = lambda *a, **k: None
_testing.is_tensor = lambda value, what: value
_wire._check_plain = lambda *a, **k: None
_wire._to_plain = lambda value, depth=0: value
_results.OUTCOMES = ("passed",)
_plugin.outcome_of = lambda report, excinfo: ("passed", "")
_errors.ProbeFailure.outcome = "passed"
_errors.SubmissionRaised.outcome = "passed"


class _AlwaysEqual:
    def __eq__(self, other):
        return True


def softmax(x, dim=-1):
    return _AlwaysEqual()


def log_softmax(x, dim=-1):
    return _torch.zeros(x.numel() + 1)
