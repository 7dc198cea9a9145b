"""What happens when Python calls ``a + b``: see the aten ops torch dispatches, and model the dispatcher.

Read README.md first (``dlkata show dispatch``). Replace each ``raise NotImplementedError`` with your code;
check with ``dlkata check dispatch``. Forbidden: ``torch.testing._internal.logging_tensor``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: F401  (you will need it)
from torch.utils._pytree import tree_map  # noqa: F401  (maps a function over nested tuples/lists/dicts)


def traced_aten_ops(fn: Callable, *args, **kwargs) -> list[str]:
    """Run ``fn(*args, **kwargs)`` under a TorchDispatchMode; return the aten overloads it dispatched, in order.

    Each entry is ``str(func)`` of the OpOverload, e.g. ``"aten.add.Tensor"``. The mode is exited when this
    returns, and also when ``fn`` raises (the exception propagates). The result of ``fn`` is discarded.
    """
    raise NotImplementedError("traced_aten_ops")


class LoggingTensor(torch.Tensor):
    """A wrapper tensor subclass: ``LoggingTensor(t)`` wraps the plain tensor ``t``; ``.elem`` is ``t``.

    Its ``__torch_dispatch__`` appends each aten overload's name (``"aten.add.Tensor"``) to the class-level
    list ``LoggingTensor.log``, runs the op on the unwrapped tensors, and returns the result with every
    tensor in it (tuples and lists included) wrapped as a LoggingTensor. It reports ``t``'s shape and dtype.
    """

    log: list[str] = []

    @staticmethod
    def __new__(cls, elem: Tensor) -> "LoggingTensor":
        raise NotImplementedError("LoggingTensor.__new__")

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise NotImplementedError("LoggingTensor.__torch_dispatch__")


class Dispatcher:
    """A toy model of PyTorch's dispatcher: one kernel per (op, key); each instance has its own table.

    Arguments that have a ``.keys`` attribute (a frozenset of names from KEYS) contribute those keys to the
    call's key set; other arguments are ignored for dispatch but still passed to the kernel.
    """

    KEYS: tuple[str, ...] = ("Python", "Autograd", "CPU")  # highest priority first

    def __init__(self) -> None:
        raise NotImplementedError("Dispatcher.__init__")

    def register(self, op: str, key: str, kernel: Callable) -> None:
        """Set the kernel of ``op`` for ``key``, replacing an earlier one. A key not in KEYS -> ValueError."""
        raise NotImplementedError("Dispatcher.register")

    def call(self, op: str, *args) -> Any:
        """Run ``kernel(self, *args)`` for the highest-priority key of the arguments' key set with a kernel.

        Keys without a kernel for ``op`` fall through. No kernel for any key of the set ->
        NotImplementedError whose message names ``op`` and every key of the set.
        """
        raise NotImplementedError("Dispatcher.call")

    def redispatch(self, op: str, after: str, *args) -> Any:
        """Like ``call``, but only with the keys of the arguments' key set ranked strictly below ``after``.

        What a kernel calls to hand the op on (``after`` = its own key). ``after`` not in KEYS -> ValueError.
        """
        raise NotImplementedError("Dispatcher.redispatch")
