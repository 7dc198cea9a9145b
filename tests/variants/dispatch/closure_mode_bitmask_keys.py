"""Enters the dispatch mode by hand, unwraps with a hand-written recursion, bitmask key sets in the toy.

`traced_aten_ops` builds a mode class that appends to a list it closes over and calls
`__enter__`/`__exit__` explicitly; `LoggingTensor` passes the full strided layout to
`_make_wrapper_subclass` and converts results with its own recursive helper (tuples, lists, dicts);
the toy `Dispatcher` models key sets as integer bitmasks (one bit per key, priority = bit position),
takes the highest set bit repeatedly, and implements `redispatch` by masking off `after` and the bits
above it.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode


def traced_aten_ops(fn: Callable, *args, **kwargs) -> list[str]:
    seen: list[str] = []

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs if kwargs is not None else {}))

    mode = _Recorder()
    mode.__enter__()
    try:
        fn(*args, **kwargs)
    except BaseException as exc:
        if not mode.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        mode.__exit__(None, None, None)
    return seen


def _convert(obj, fn):
    if isinstance(obj, tuple):
        return tuple(_convert(o, fn) for o in obj)
    if isinstance(obj, list):
        return [_convert(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: _convert(o, fn) for k, o in obj.items()}
    return fn(obj)


class LoggingTensor(torch.Tensor):
    log: list[str] = []

    @staticmethod
    def __new__(cls, elem: Tensor) -> "LoggingTensor":
        obj = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=elem.device,
            requires_grad=elem.requires_grad,
        )
        obj.elem = elem
        return obj

    def __repr__(self):
        return f"LoggingTensor({self.elem!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        LoggingTensor.log.append(str(func))

        def unwrap(x):
            return x.elem if isinstance(x, LoggingTensor) else x

        def wrap(x):
            if isinstance(x, torch.Tensor) and not isinstance(x, LoggingTensor):
                return LoggingTensor(x)
            return x

        out = func(*_convert(args, unwrap), **_convert(kwargs or {}, unwrap))
        return _convert(out, wrap)


class Dispatcher:
    KEYS: tuple[str, ...] = ("Python", "Autograd", "CPU")

    def __init__(self) -> None:
        # Like c10's DispatchKeySet: one bit per key, the highest-priority key in the highest bit.
        n = len(self.KEYS)
        self._bit = {k: 1 << (n - 1 - i) for i, k in enumerate(self.KEYS)}
        self._table: dict[tuple[str, int], Callable] = {}

    def _check(self, key: str) -> int:
        if key not in self._bit:
            raise ValueError(f"unknown dispatch key {key!r}")
        return self._bit[key]

    def register(self, op: str, key: str, kernel: Callable) -> None:
        self._table[(op, self._check(key))] = kernel

    def _dispatch(self, op: str, mask: int, args) -> Any:
        keyset = 0
        for a in args:
            if hasattr(a, "keys"):
                for k in a.keys:
                    keyset |= self._bit[k]
        keyset &= mask
        looked = []
        while keyset:
            top = 1 << (keyset.bit_length() - 1)
            looked.append(self.KEYS[len(self.KEYS) - top.bit_length()])
            kernel = self._table.get((op, top))
            if kernel is not None:
                return kernel(self, *args)
            keyset ^= top
        raise NotImplementedError(f"no kernel for op {op!r} under keys {looked}")

    def call(self, op: str, *args) -> Any:
        return self._dispatch(op, -1, args)

    def redispatch(self, op: str, after: str, *args) -> Any:
        return self._dispatch(op, self._check(after) - 1, args)
