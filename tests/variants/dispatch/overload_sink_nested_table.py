"""Mode that records OpOverload objects into a caller's list; tree_map_only wrapping; nested per-op tables.

`traced_aten_ops` hands the mode a list to fill with the OpOverload objects, enters it through an
`ExitStack` and converts them to names afterwards; `LoggingTensor` passes only size, dtype and
device to `_make_wrapper_subclass` and unwraps/wraps with `tree_map_only` by type; the `Dispatcher`
keeps `op -> {key: kernel}` dicts and picks the kernel by sorting candidate keys on a priority rank,
filtering by `rank > rank(after)` for redispatch.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map_only


class _OpLog(TorchDispatchMode):
    """Keeps the OpOverload objects themselves; the caller turns them into names."""

    def __init__(self, sink: list):
        super().__init__()
        self.sink = sink

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.sink.append(func)
        return func(*args, **({} if kwargs is None else kwargs))


def traced_aten_ops(fn: Callable, *args, **kwargs) -> list[str]:
    overloads: list = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_OpLog(overloads))
        fn(*args, **kwargs)
    return [str(f) for f in overloads]


class LoggingTensor(torch.Tensor):
    log: list[str] = []

    @staticmethod
    def __new__(cls, elem: Tensor) -> "LoggingTensor":
        r = torch.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)
        r.elem = elem
        return r

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        cls.log.append(str(func))
        plain_args, plain_kwargs = tree_map_only(cls, lambda x: x.elem, (args, kwargs or {}))
        result = func(*plain_args, **plain_kwargs)
        return tree_map_only(Tensor, cls, result)


class Dispatcher:
    KEYS: tuple[str, ...] = ("Python", "Autograd", "CPU")

    def __init__(self) -> None:
        self.kernels: dict[str, dict[str, Callable]] = {}
        self._rank = {k: i for i, k in enumerate(self.KEYS)}

    def register(self, op: str, key: str, kernel: Callable) -> None:
        if key not in self._rank:
            raise ValueError(f"{key!r} is not one of {self.KEYS}")
        self.kernels.setdefault(op, {})[key] = kernel

    def _run(self, op: str, args, below: int) -> Any:
        keys = frozenset().union(*(a.keys for a in args if hasattr(a, "keys")))
        candidates = sorted((k for k in keys if self._rank[k] > below), key=self._rank.__getitem__)
        table = self.kernels.get(op, {})
        for key in candidates:
            if key in table:
                return table[key](self, *args)
        raise NotImplementedError(
            f"{op}: no kernel registered for any of the keys " + ", ".join(candidates) + " (key set looked at)"
        )

    def call(self, op: str, *args) -> Any:
        return self._run(op, args, -1)

    def redispatch(self, op: str, after: str, *args) -> Any:
        if after not in self._rank:
            raise ValueError(f"{after!r} is not one of {self.KEYS}")
        return self._run(op, args, self._rank[after])
