"""All Dispatcher instances share one kernel table (a class attribute).

What happens when Python calls ``a + b``: the layers between the ``+`` and the CPU loop.

    a + b
      -> Tensor.__add__, a C++ binding (torch/csrc/autograd/generated/python_variable_methods.cpp)
      -> __torch_function__ check: if an argument's type (or an active TorchFunctionMode) overrides it,
         Python code runs here, before any dispatch
      -> argument parsing against the schema "add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1)"
      -> at::add -> the dispatcher: key set = union of the tensors' keys (+ thread-local include/exclude)
           AutogradCPU: record AddBackward0 if any input requires grad, then redispatch below Autograd
           (Python:     __torch_dispatch__ of a tensor subclass or a TorchDispatchMode, below Autograd)
           CPU:         the structured kernel: a TensorIterator loop over both inputs, vectorised

A ``TorchDispatchMode`` (``traced_aten_ops``) and a wrapper subclass (``LoggingTensor``) both hook the
``Python`` key, so they see the aten *overloads* the dispatcher runs (``aten.add.Tensor``) after the
Python-level sugar is gone: ``a + 1`` is also ``aten.add.Tensor`` (1 becomes a wrapped 0-dim tensor),
``F.linear(x, w)`` without bias is ``aten.t`` then ``aten.mm``.

``Dispatcher`` is a toy model of the dispatch table: a kernel per (op, key), keys ranked
``Python > Autograd > CPU``; ``call`` runs the highest-ranked key of the arguments' key set that has a
kernel (keys without one fall through), ``redispatch`` continues strictly below a given key.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map


class _RecordOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))  # an OpOverload: "aten.add.Tensor"
        return func(*args, **(kwargs or {}))


def traced_aten_ops(fn: Callable, *args, **kwargs) -> list[str]:
    """The aten overloads ``fn(*args, **kwargs)`` dispatches, in order, e.g. ``["aten.add.Tensor"]``."""
    mode = _RecordOps()
    with mode:  # exited even if fn raises
        fn(*args, **kwargs)
    return mode.ops


class LoggingTensor(torch.Tensor):
    """A wrapper subclass: holds a plain tensor ``elem``, logs every aten overload run on it."""

    log: list[str] = []
    elem: Tensor

    @staticmethod
    def __new__(cls, elem: Tensor) -> "LoggingTensor":
        # a tensor with elem's metadata but no storage of its own; the data lives in elem
        r = torch.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(),
                                                storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                layout=elem.layout, device=elem.device,
                                                requires_grad=elem.requires_grad)
        r.elem = elem
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl  # no Python-level override: go to dispatch

    def __repr__(self) -> str:
        return f"LoggingTensor({self.elem!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        LoggingTensor.log.append(str(func))

        def unwrap(x):
            return x.elem if isinstance(x, LoggingTensor) else x

        def wrap(x):
            return LoggingTensor(x) if isinstance(x, Tensor) and not isinstance(x, LoggingTensor) else x

        out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs or {}))
        return tree_map(wrap, out)  # tuples and lists of tensors too


class Dispatcher:
    """A toy dispatcher: kernels per (op, key); the arguments' ``.keys`` select which one runs."""

    KEYS: tuple[str, ...] = ("Python", "Autograd", "CPU")  # highest priority first

    _kernels: dict[tuple[str, str], Callable] = {}

    def __init__(self) -> None:
        pass

    def register(self, op: str, key: str, kernel: Callable) -> None:
        """Set the kernel of ``op`` for ``key`` (replacing an earlier one); unknown key -> ValueError."""
        if key not in self.KEYS:
            raise ValueError(f"unknown dispatch key {key!r}; known keys: {', '.join(self.KEYS)}")
        self._kernels[(op, key)] = kernel

    @staticmethod
    def _key_set(args: tuple) -> frozenset[str]:
        keys: set[str] = set()
        for arg in args:
            keys |= getattr(arg, "keys", frozenset())
        return frozenset(keys)

    def _dispatch(self, op: str, candidates: list[str], args: tuple) -> Any:
        for key in candidates:  # in priority order; a key without a kernel falls through
            kernel = self._kernels.get((op, key))
            if kernel is not None:
                return kernel(self, *args)
        raise NotImplementedError(f"no kernel for {op!r} for any of the dispatch keys "
                                  f"[{', '.join(candidates)}]")

    def call(self, op: str, *args) -> Any:
        """Run the highest-priority kernel of ``op`` among the arguments' keys: kernel(self, *args)."""
        key_set = self._key_set(args)
        return self._dispatch(op, [k for k in self.KEYS if k in key_set], args)

    def redispatch(self, op: str, after: str, *args) -> Any:
        """Like ``call``, but only keys ranked strictly below ``after`` (what a kernel calls to go on)."""
        if after not in self.KEYS:
            raise ValueError(f"unknown dispatch key {after!r}; known keys: {', '.join(self.KEYS)}")
        key_set = self._key_set(args)
        below = self.KEYS[self.KEYS.index(after) + 1:]
        return self._dispatch(op, [k for k in below if k in key_set], args)
