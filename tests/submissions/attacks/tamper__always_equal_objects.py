"""Tampering: return objects whose equality always holds (a float, tuple, dict and ndarray subclass, a
numpy object array, a torch.Size subclass, a duck-typed fake tensor), one kind per call."""
import numpy as _np
import torch as _torch


class _EqFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class _EqTuple(tuple):
    def __eq__(self, other):
        return True


class _EqDict(dict):
    def __eq__(self, other):
        return True


class _EqArray(_np.ndarray):
    def __eq__(self, other):
        return _np.ones(self.shape, dtype=bool)


class _EqSize(_torch.Size):
    def __eq__(self, other):
        return True


class _DuckTensor:
    shape = property(lambda self: self._shape)
    dtype = _torch.float32

    def __init__(self, x):
        self._shape = x.shape

    def __eq__(self, other):
        return True

    def __getattr__(self, name):
        return lambda *a, **k: self


_calls = [0]


def _fake(x):
    _calls[0] += 1
    kinds = [lambda: _EqFloat(0.5), lambda: _EqTuple((1,)), lambda: _EqDict(a=1),
             lambda: _np.zeros(x.shape).view(_EqArray), lambda: _np.array([object()] * max(1, x.numel())),
             lambda: _EqSize(x.shape), lambda: _DuckTensor(x)]
    return kinds[_calls[0] % len(kinds)]()


def softmax(x, dim=-1):
    return _fake(x)


def log_softmax(x, dim=-1):
    return _fake(x)
