"""The static escape scan (grader/scan.py): it refuses what could reach or disarm the in-process guard, and
never refuses honest code (the kit's references, stubs, mutants and honest-outcome submissions)."""

from __future__ import annotations

import pytest

from grader import scan
from tests.conftest import EXERCISES, KIT

GUARDED = [e for e in EXERCISES if e.forbidden or e.forbidden_aten]  # only a guard can be escaped
HONEST = [(e, path) for e in GUARDED
          for path in (KIT / "solutions" / e.id / f"{e.id}.py", KIT / "exercises" / e.id / f"{e.id}.py",
                       *sorted((KIT / "tests" / "mutants" / e.id).glob("*.py")))
          if path.exists()]
OUTCOMES = sorted(p for p in (KIT / "tests" / "submissions").glob("*__*.py") if not p.stem.startswith("error__syntax"))


@pytest.mark.parametrize("exercise, path", HONEST, ids=[str(p.relative_to(KIT)) for _, p in HONEST])
def test_honest_code_is_never_refused(exercise, path):
    escapes = scan.escape_hatches(path.read_text(encoding="utf-8"), aten_guard=bool(exercise.forbidden_aten))
    assert not escapes, [e.message() for e in escapes]


@pytest.mark.parametrize("path", OUTCOMES, ids=[p.stem for p in OUTCOMES])
def test_outcome_submissions_reach_their_outcome(path):
    escapes = scan.escape_hatches(path.read_text(encoding="utf-8"), aten_guard=True)
    assert path.stem.startswith("forbidden__") or not escapes, [e.message() for e in escapes]


OWN_OBJECTS = """
import torch
class Layer(torch.nn.Module):
    def __init__(self, **options):
        super().__init__()
        for name, value in options.items():
            setattr(self, name, value)
        self._snapshot = getattr(self, "_snapshot", {})
        self.__dict__.setdefault("_counts", {})
    def forward(self, x):
        return getattr(x, "shape"), x.untyped_storage().nbytes(), x._version, vars(self), torch.compile
"""


def test_own_objects_and_constant_names_are_fine():
    assert scan.escape_hatches(OWN_OBJECTS, aten_guard=True) == []


@pytest.mark.parametrize("source, what", [
    ("import sys\nf = sys._getframe(1)", "sys._getframe"),
    ("import inspect as i\nf = i.stack()", "inspect.stack"),
    ("def g():\n    yield\nf = g().gi_frame.f_back", "gi_frame"),
    ("try:\n    1 / 0\nexcept Exception as e:\n    f = e.__traceback__.tb_frame", "tb_frame"),
    ("import torch\ng = torch.nn.functional.softmax.__globals__", "__globals__"),
    ("import torch\nf = torch.softmax.__wrapped__", "__wrapped__"),
    ("s = object.__subclasses__()", "__subclasses__"),
    ("from _thread import start_new_thread", "_thread"),
    ("import ctypes", "ctypes"),
    ("import gc", "gc"),
    ("import importlib\nm = importlib.import_module('torch')", "importlib"),
    ("m = __import__('torch')", "__import__"),
    ("eval('1')", "eval"),
    ("import grader.guard", "grader"),
    ("import sys\nm = sys.modules", "sys.modules"),
    ("import torch\nf = getattr(torch, 'soft' + 'max')", "getattr with a computed name"),
    ("import torch\nc = getattr(torch, '_C')", "getattr of a private name (_C)"),
    ("g = getattr\n", "getattr"),
    ("import torch\nd = vars(torch)", "vars"),
])
def test_escape_hatches_are_refused_with_their_line(source, what):
    escapes = scan.escape_hatches(source)
    assert what in [e.what for e in escapes], escapes
    line = next(e for e in escapes if e.what == what).line
    message = next(e for e in escapes if e.what == what).message()
    assert message.startswith(f"sandbox: line {line} uses {what}, which ") and "solutions never need it" in message


@pytest.mark.parametrize("source, what", [
    ("import torch\nk = torch._C.DispatchKey.Python", "_C"),
    ("from torch.utils._python_dispatch import _disable_current_modes", "_python_dispatch"),
    ("import torch.library", "torch.library"),
    ("import torch\nclass T(torch.Tensor):\n    def __torch_dispatch__(cls, func, types, args, kwargs):\n        pass",
     "__torch_dispatch__"),
    ("import torch\ny = torch.ops.aten._softmax.default.redispatch", "redispatch"),
])
def test_dispatch_guard_escapes_are_refused_only_where_there_is_one(source, what):
    assert what in [e.what for e in scan.escape_hatches(source, aten_guard=True)]
    assert what not in [e.what for e in scan.escape_hatches(source, aten_guard=False)]
