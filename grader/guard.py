"""Forbidden APIs, enforced while submission code runs (sandbox side).

Two layers, both active only while a function or method defined in the submission is on the stack
(the probe's own set-up code may use anything):

* Python level: each forbidden dotted name (``torch.nn.functional.softmax``, ``torch.Tensor.softmax``,
  a class such as ``torch.optim.Adam``, a whole module such as ``torch.distributed.optim``, or a prefix
  pattern ``torch._fused_*``) is replaced by a wrapper that refuses to run.
* Dispatcher level: a ``TorchDispatchMode`` rejects the exercise's forbidden aten ops, so aliases
  (``torch.ops.aten._softmax``, ``getattr(F, "soft" + "max")``, ``torch._C`` internals) cannot slip through.

A violation raises ``ForbiddenAPIError`` (a ``BaseException``, so ``except Exception`` does not swallow
it) and is recorded; the sandbox reports a recorded violation even if the submission caught the error.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import threading
import types
from typing import Any, Callable, Iterable


class ForbiddenAPIError(BaseException):
    pass


def forbidden_message(name: str) -> str:
    return f"{name} is forbidden in this exercise: implement it yourself"


class Guard:
    def __init__(self, forbidden: Iterable[str] = (), forbidden_aten: Iterable[str] = ()) -> None:
        self.forbidden = tuple(forbidden)
        self.forbidden_aten = frozenset(forbidden_aten)
        self.violations: list[str] = []
        self._depth = 0  # process-wide: a thread the submission starts cannot step outside the guard
        self._local = threading.local()  # per thread: is the aten mode entered here?

    # -- state ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._depth > 0

    def violation(self, name: str) -> ForbiddenAPIError:
        message = forbidden_message(name)
        self.violations.append(message)
        return ForbiddenAPIError(message)

    # -- Python level ----------------------------------------------------------------------------
    def install(self) -> None:
        """Replace every forbidden name by a refusing wrapper (missing optional packages are skipped),
        and make threads started by submission code run guarded for their whole life."""
        for name in self.forbidden:
            for owner, attr, target, full in _resolve(name):
                self._patch(owner, attr, target, full)
        guard, start = self, threading.Thread.start

        def guarded_start(thread: threading.Thread) -> None:
            if guard.active:
                thread.run = guard.guarded(thread.run)
            start(thread)

        threading.Thread.start = guarded_start

    def _patch(self, owner: Any, attr: str, target: Any, full: str) -> None:
        if isinstance(target, type):
            for method in ("__init__", "forward", "step"):
                original = getattr(target, method, None)
                if callable(original):
                    setattr(target, method, self._refuse(original, full))
        elif callable(target):
            try:
                setattr(owner, attr, self._refuse(target, full))
            except (AttributeError, TypeError):
                pass

    def _refuse(self, fn: Callable, name: str) -> Callable:
        guard = self

        @functools.wraps(fn)
        def refusing(*args, **kwargs):
            if guard.active:
                raise guard.violation(name)
            return fn(*args, **kwargs)

        return refusing

    # -- marking submission code -----------------------------------------------------------------
    def wrap_module(self, module: types.ModuleType) -> None:
        """Make every function and method defined in ``module`` run with the guard active."""
        for name, value in list(vars(module).items()):
            if getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                setattr(module, name, self.guarded(value))
            elif isinstance(value, type):
                self._wrap_class(value)

    def _wrap_class(self, cls: type) -> None:
        for name, value in list(vars(cls).items()):
            if isinstance(value, staticmethod):
                setattr(cls, name, staticmethod(self.guarded(value.__func__)))
            elif isinstance(value, classmethod):
                setattr(cls, name, classmethod(self.guarded(value.__func__)))
            elif isinstance(value, property):
                setattr(cls, name, property(*(self.guarded(f) if f else None
                                             for f in (value.fget, value.fset, value.fdel)), value.__doc__))
            elif inspect.isfunction(value):
                setattr(cls, name, self.guarded(value))

    def guarded(self, fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
            return fn  # bodies run lazily, outside any wrapper; nothing forbidden applies to them yet
        guard = self

        @functools.wraps(fn)
        def run_guarded(*args, **kwargs):
            local = guard._local
            outermost = not getattr(local, "entered", False)
            guard._depth += 1
            local.entered = True
            try:
                if outermost and guard.forbidden_aten:
                    with _AtenGuard(guard):
                        return _checked(fn(*args, **kwargs))
                return fn(*args, **kwargs)
            finally:
                guard._depth -= 1
                local.entered = not outermost

        def _checked(value):
            if not _mode_on_stack():
                raise guard.violation("removing the dispatch guard (torch._C dispatch-mode stack)")
            return value

        run_guarded.__dlkata_guarded__ = True
        return run_guarded


def _aten_guard_type():
    from torch.utils._python_dispatch import TorchDispatchMode

    def dispatch(mode, func, types, args=(), kwargs=None):
        name = func.overloadpacket._qualified_op_name  # e.g. "aten::_softmax"
        if name in mode.guard.forbidden_aten and mode.guard.active:
            raise mode.guard.violation(f"{name} (the aten op behind it)")
        return func(*args, **(kwargs or {}))

    class AtenGuard(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            # torch would wrap __torch_dispatch__ in torch._disable_dynamo, whose first call imports
            # torch._dynamo (seconds, the bulk of a quick `check`); it is done below only once dynamo is
            # loaded, i.e. when torch.compile can be tracing at all.
            return False

        def __init__(self, guard: Guard) -> None:
            super().__init__()
            self.guard = guard

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if "torch._dynamo" in sys.modules:  # never let torch.compile trace into the guard
                return _dynamo_disabled(dispatch)(self, func, types, args, kwargs)
            return dispatch(self, func, types, args, kwargs)

    return AtenGuard


@functools.lru_cache(maxsize=None)
def _dynamo_disabled(fn: Callable) -> Callable:
    import torch._dynamo

    return torch._dynamo.disable(fn, recursive=True)


def _mode_on_stack() -> bool:
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return any(type(m).__name__ == "AtenGuard" for m in _get_current_dispatch_mode_stack())


@functools.lru_cache(maxsize=None)
def _aten_guard_class():
    return _aten_guard_type()


def _AtenGuard(guard: Guard):
    return _aten_guard_class()(guard)


def import_longest_prefix(name: str) -> tuple[types.ModuleType | None, int]:
    """Import the longest importable module prefix of a dotted name: (module, number of parts used)."""
    parts = name.rstrip("*").rstrip(".").split(".")
    for i in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:i])), i
        except ImportError:
            continue
        except Exception:  # a module that fails to import for another reason is not forbidden-reachable
            return None, 0
    return None, 0


def _resolve(name: str) -> list[tuple[Any, str, Any, str]]:
    """(owner, attribute, object, full name) for each object a forbidden name denotes."""
    parts = name.split(".")
    pattern = parts[-1].endswith("*")
    head = parts[:-1] if pattern else parts
    obj, i = import_longest_prefix(".".join(head))
    owner = None
    if obj is None:
        return []
    for attr in head[i:]:
        owner, obj = obj, getattr(obj, attr, None)
        if obj is None:
            return []
    if pattern:
        prefix = parts[-1][:-1]
        return [(obj, a, getattr(obj, a), f"{'.'.join(head)}.{a}") for a in dir(obj) if a.startswith(prefix)]
    if isinstance(obj, types.ModuleType):
        return [(obj, a, getattr(obj, a), f"{name}.{a}") for a in dir(obj)
                if not a.startswith("__") and callable(getattr(obj, a, None))
                and getattr(getattr(obj, a), "__module__", "").startswith(obj.__name__)]
    return [(owner, head[-1], obj, name)] if owner is not None else []
