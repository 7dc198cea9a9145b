"""Explicit Python byte sets for overlap, and torch's own back-to-front chunk walk for `can_view`.

Addresses are enumerated with `itertools.product` over the index space into Python sets of every byte
(after a disjoint-range fast path); `same_storage` compares `(device, storage pointer)` keys, an empty
storage having no key; `can_view` infers the `-1` itself and then walks the
old dims from the last one, closing a chunk whenever the next dim to the left is not contiguous with it,
and greedily consumes new dims from the right to match each chunk's element count.
"""

import itertools
import math

import numpy
import torch
from torch import Tensor


def _storage_key(t: Tensor):
    st = t.untyped_storage()
    if st.nbytes() == 0:
        return None
    return (str(t.device), st.data_ptr())


def same_storage(a: Tensor, b: Tensor) -> bool:
    ka, kb = _storage_key(a), _storage_key(b)
    return ka is not None and kb is not None and ka == kb


def _byte_range(base, sizes, strides, itemsize):
    lo = hi = base
    for n, s in zip(sizes, strides):
        if s > 0:
            hi += (n - 1) * s
        else:
            lo += (n - 1) * s
    return lo, hi + itemsize  # half-open


def _bytes(base, sizes, strides, itemsize) -> set:
    out = set()
    for idx in itertools.product(*(range(n) for n in sizes)):
        start = base + sum(i * s for i, s in zip(idx, strides))
        out.update(range(start, start + itemsize))
    return out


def _overlap(base_a, sizes_a, strides_a, isz_a, base_b, sizes_b, strides_b, isz_b) -> bool:
    if math.prod(sizes_a) == 0 or math.prod(sizes_b) == 0:
        return False
    lo_a, hi_a = _byte_range(base_a, sizes_a, strides_a, isz_a)
    lo_b, hi_b = _byte_range(base_b, sizes_b, strides_b, isz_b)
    if hi_a <= lo_b or hi_b <= lo_a:
        return False
    small, big = (
        ((base_a, sizes_a, strides_a, isz_a), (base_b, sizes_b, strides_b, isz_b))
        if math.prod(sizes_a) <= math.prod(sizes_b)
        else ((base_b, sizes_b, strides_b, isz_b), (base_a, sizes_a, strides_a, isz_a))
    )
    big_bytes = _bytes(*big)
    for idx in itertools.product(*(range(n) for n in small[1])):
        start = small[0] + sum(i * s for i, s in zip(idx, small[2]))
        if any(x in big_bytes for x in range(start, start + small[3])):
            return True
    return False


def overlaps(a: Tensor, b: Tensor) -> bool:
    if a.device != b.device:
        return False
    ea, eb = a.element_size(), b.element_size()
    return _overlap(a.data_ptr(), tuple(a.shape), [s * ea for s in a.stride()], ea,
                    b.data_ptr(), tuple(b.shape), [s * eb for s in b.stride()], eb)


def _infer(shape, numel):
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        return None
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or numel % known != 0:
            return None
        shape[shape.index(-1)] = numel // known
    elif known != numel:
        return None
    return shape


def can_view(t: Tensor, shape: tuple[int, ...]) -> bool:
    old_sizes = list(t.shape)
    old_strides = list(t.stride())
    numel = math.prod(old_sizes)
    new = _infer(shape, numel)
    if new is None:
        return False
    if numel == 0 or not old_sizes:
        return True
    view_d = len(new) - 1
    chunk_stride = old_strides[-1]
    tensor_numel = 1
    view_numel = 1
    for d in range(len(old_sizes) - 1, -1, -1):
        tensor_numel *= old_sizes[d]
        at_chunk_end = d == 0 or (old_sizes[d - 1] != 1 and old_strides[d - 1] != tensor_numel * chunk_stride)
        if at_chunk_end:
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return False
            if d > 0:
                chunk_stride = old_strides[d - 1]
                tensor_numel = 1
                view_numel = 1
    return view_d == -1


def shares_memory_with_array(t: Tensor, a: numpy.ndarray) -> bool:
    if t.device.type != "cpu":
        return False
    et = t.element_size()
    return _overlap(t.data_ptr(), tuple(t.shape), [s * et for s in t.stride()], et,
                    a.ctypes.data, tuple(a.shape), list(a.strides), a.itemsize)
