"""Tampering: swap entries of sys.modules (torch.testing, grader.testing, grader.wire, grader.guard) for
fakes, and drop others, then return wrong answers."""
import sys as _sys
import types as _types

import torch as _torch

_fake = _types.ModuleType("torch.testing")
_fake.assert_close = lambda *a, **k: None
_sys.modules["torch.testing"] = _fake
_sys.modules["grader.testing"] = _types.ModuleType("grader.testing")
_sys.modules["grader.wire"] = _types.ModuleType("grader.wire")
for _name in ("grader.guard", "grader.errors", "pytest", "hypothesis"):
    _sys.modules.pop(_name, None)


def softmax(x, dim=-1):
    return _torch.zeros(x.numel() + 1)


def log_softmax(x, dim=-1):
    return _torch.zeros(x.numel() + 1)
