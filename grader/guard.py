"""Forbidden APIs, enforced while submission code runs (sandbox side).

The sandbox runs the submission's import and every probe through ``Guard.guarded``, so both layers are
active for as long as submission code may run: its own functions, aliases it binds at module level
(``softmax = getattr(F, "softmax")``), callables and objects it hands back, threads it starts.

* Python level: each forbidden dotted name (``torch.nn.functional.softmax``, ``torch.Tensor.softmax``,
  a class such as ``torch.optim.Adam``, a whole module such as ``torch.distributed.optim``, or a prefix
  pattern ``torch._fused_*``) is replaced by a wrapper that refuses to run.
* Dispatcher level: a ``TorchDispatchMode`` rejects the exercise's forbidden aten ops, so aliases
  (``torch.ops.aten._softmax``, ``getattr(F, "soft" + "max")``, ``torch._C`` internals) cannot slip through.

A violation raises ``ForbiddenAPIError`` (a ``BaseException``, so ``except Exception`` does not swallow
it) and is recorded; the sandbox reports a recorded violation even if the submission caught the error.
When guarded code returns, the guard checks that it is intact (see ``Guard.tampering``); a disarmed
guard is a violation too. Kit probe code that needs a forbidden name itself binds it at import, before
the guard wraps it.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import importlib
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
        self._prepared: dict[tuple[Any, str], Callable] | None = None  # (owner, attribute) -> our wrapper
        self._installed: dict[tuple[Any, str], Callable] = {}  # the same, once in place

    # -- state ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._depth > 0

    def violation(self, name: str) -> ForbiddenAPIError:
        message = forbidden_message(name)
        self.violations.append(message)
        return ForbiddenAPIError(message)

    # -- Python level ----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Make (not yet install) a refusing wrapper for every forbidden name (missing optional packages
        are skipped), and guarded thread starters. The fork server prepares a guard once per spec and
        each sandbox inherits it: wrapping ~400 functions in every sandbox would copy-on-write each."""
        if self._prepared is not None:
            return
        wrappers: dict[tuple[Any, str], Callable] = {}  # two forbidden names may wrap one object: the last counts
        for name in self.forbidden:
            for owner, attr, target, full in resolve(name):
                if isinstance(target, type):
                    for method in ("__init__", "forward", "step"):
                        original = getattr(target, method, None)
                        if callable(original):
                            wrappers[target, method] = self._refuse(original, full)
                elif callable(target):
                    wrappers[owner, attr] = self._refuse(target, full)
        guard, start, start_raw = self, threading.Thread.start, _thread.start_new_thread

        def guarded_start(thread: threading.Thread) -> None:
            if guard.active:
                thread.run = guard.guarded(thread.run)
            start(thread)

        def guarded_start_raw(function: Callable, args: tuple, kwargs: dict | None = None) -> int:
            if guard.active:
                function = guard.guarded(function)
            return start_raw(function, args, kwargs or {})

        wrappers[threading.Thread, "start"] = guarded_start
        wrappers[_thread, "start_new_thread"] = guarded_start_raw  # threading binds its own copy
        self._prepared = wrappers

    def install(self) -> None:
        """Put the wrappers in place: forbidden names refuse to run, and threads started by guarded
        code run guarded for their whole life."""
        self.prepare()
        self._installed = {}
        for (owner, attr), wrapper in self._prepared.items():
            try:
                setattr(owner, attr, wrapper)
            except (AttributeError, TypeError):  # e.g. a read-only attribute of a C type: left as it is
                continue
            self._installed[owner, attr] = wrapper

    def _refuse(self, fn: Callable, name: str) -> Callable:
        guard = self

        @functools.wraps(fn)
        def refusing(*args, **kwargs):
            if guard.active:
                raise guard.violation(name)
            return fn(*args, **kwargs)

        return refusing

    # -- running submission code ------------------------------------------------------------------
    def guarded(self, fn: Callable) -> Callable:
        """``fn`` run with the guard active (the aten mode entered on this thread), checked as it returns."""
        guard = self

        @functools.wraps(fn)
        def run_guarded(*args, **kwargs):
            local = guard._local
            outermost = not getattr(local, "entered", False)
            guard._depth += 1
            local.entered = True
            try:
                if not outermost:
                    return fn(*args, **kwargs)
                with _AtenGuard(guard) if guard.forbidden_aten else contextlib.nullcontext():
                    value = fn(*args, **kwargs)
                    tampered = guard.tampering()  # while the mode should still be on the stack
                    if tampered:
                        raise guard.violation(f"tampering with the forbidden-API guard ({tampered})")
                return value
            finally:
                guard._depth -= 1
                local.entered = not outermost

        return run_guarded

    def tampering(self) -> str | None:
        """What guarded code changed in the guard, checked as it returns; None if the guard is intact."""
        if dict(vars(Guard)) != _GUARD_CLASS:
            return "its class"
        if not self.active:
            return "its state"
        if not all(_runs(vars(owner).get(attr), wrapper) for (owner, attr), wrapper in self._installed.items()):
            return "a forbidden name's wrapper was replaced"
        if self.forbidden_aten:
            import torch

            if any(torch._C._dispatch_tls_is_dispatch_key_excluded(key)
                   for key in (torch._C.DispatchKey.Python, torch._C.DispatchKey.PythonTLSSnapshot)):
                return "the Python dispatch key is excluded"
            if not _mode_on_stack(self):
                return "the dispatch mode left the torch._C dispatch-mode stack"
        return None


def _runs(current: Any, wrapper: Callable) -> bool:
    """Is ``wrapper`` what ``current`` runs: itself, or under a wrapper torch adds (an optimizer's step hook)?"""
    while current is not None and current is not wrapper:
        current = getattr(current, "__wrapped__", None)
    return current is wrapper


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


def _mode_on_stack(guard: Guard) -> bool:
    """Is this guard's dispatch mode on this thread's stack, its class unpatched?"""
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    cls, pristine = _aten_guard_class()
    return (dict(vars(cls)) == pristine
            and any(type(m) is cls and m.guard is guard for m in _get_current_dispatch_mode_stack()))


@functools.lru_cache(maxsize=None)
def _aten_guard_class() -> tuple[type, dict]:
    cls = _aten_guard_type()
    return cls, dict(vars(cls))  # the class as created: a patched one is tampering


def _AtenGuard(guard: Guard):
    return _aten_guard_class()[0](guard)


_GUARD_CLASS = dict(vars(Guard))  # taken before any submission runs: a patched Guard is tampering


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


@functools.lru_cache(maxsize=None)
def resolve(name: str) -> tuple[tuple[Any, str, Any, str], ...]:
    """(owner, attribute, object, full name) for each object a forbidden name denotes, as first resolved
    (in the fork server, before any guard wrapped them: a sandbox inherits the answer instead of walking
    torch's modules again)."""
    return tuple(_resolve(name))


def _resolve(name: str) -> list[tuple[Any, str, Any, str]]:
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
