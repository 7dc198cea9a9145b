"""Vectorised numpy interval test for overlap, and a prefix-product set-inclusion test for `can_view`.

Element start addresses are built with numpy broadcasting (one `arange` per dim), and two tensors overlap
iff some pair of half-open byte intervals `[start, start + itemsize)` intersects, checked with one
broadcast comparison; `same_storage` compares `untyped_storage().data_ptr()`; `can_view` drops size-1
dims, records the prefix products of the old sizes where contiguity breaks (the run boundaries), and
accepts iff each of them is also a prefix product of the target shape, a set-inclusion test.
"""

import itertools
import math
import operator

import numpy
import torch
from torch import Tensor


def same_storage(a: Tensor, b: Tensor) -> bool:
    if a.device != b.device:
        return False
    sa, sb = a.untyped_storage(), b.untyped_storage()
    if min(sa.nbytes(), sb.nbytes()) == 0:
        return False
    return sa.data_ptr() == sb.data_ptr()


def _starts(base: int, sizes, byte_strides) -> numpy.ndarray:
    offs = numpy.zeros((), dtype=numpy.int64)
    for n, s in zip(sizes, byte_strides):
        offs = offs[..., None] + numpy.arange(n, dtype=numpy.int64) * s
    return numpy.unique(offs.ravel()) + base


def _intervals_meet(sa: numpy.ndarray, la: int, sb: numpy.ndarray, lb: int) -> bool:
    if sa.size == 0 or sb.size == 0:
        return False
    if sa.max() + la <= sb.min() or sb.max() + lb <= sa.min():
        return False
    hit = (sa[:, None] < sb[None, :] + lb) & (sb[None, :] < sa[:, None] + la)
    return bool(hit.any())


def _tensor_starts(t: Tensor) -> numpy.ndarray:
    es = t.element_size()
    return _starts(t.data_ptr(), t.shape, [s * es for s in t.stride()])


def overlaps(a: Tensor, b: Tensor) -> bool:
    if a.device != b.device or a.numel() == 0 or b.numel() == 0:
        return False
    return _intervals_meet(_tensor_starts(a), a.element_size(), _tensor_starts(b), b.element_size())


def _target_shape(shape, numel):
    dims = list(shape)
    free = [i for i, s in enumerate(dims) if s == -1]
    if len(free) > 1 or any(s < -1 for s in dims):
        return None
    rest = 1
    for s in dims:
        if s != -1:
            rest *= s
    if free:
        if rest == 0 or numel % rest:
            return None
        dims[free[0]] = numel // rest
    if math.prod(dims) != numel:
        return None
    return dims


def can_view(t: Tensor, shape: tuple[int, ...]) -> bool:
    numel = t.numel()
    target = _target_shape(shape, numel)
    if target is None:
        return False
    if numel == 0:
        return True
    # Prefix products of the old non-1 dims at every place where contiguity breaks: the run boundaries.
    dims = [(n, s) for n, s in zip(t.shape, t.stride()) if n != 1]
    boundaries = set()
    prefix = 1
    for k, (n, s) in enumerate(dims):
        if k > 0 and dims[k - 1][1] != n * s:
            boundaries.add(prefix)
        prefix *= n
    # Every run boundary must also be a boundary between new dims (a prefix product of the new shape).
    new_prefixes = set(itertools.accumulate(target, operator.mul))
    return boundaries <= new_prefixes


def shares_memory_with_array(t: Tensor, a: numpy.ndarray) -> bool:
    if t.device.type != "cpu" or t.numel() == 0 or a.size == 0:
        return False
    base = a.__array_interface__["data"][0]
    return _intervals_meet(_tensor_starts(t), t.element_size(), _starts(base, a.shape, a.strides), a.itemsize)
