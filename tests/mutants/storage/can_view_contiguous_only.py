"""can_view says True only for contiguous tensors (plus a valid shape)."""


import math

import numpy
import torch
from torch import Tensor


# -- same storage -----------------------------------------------------------------------------------------

def same_storage(a: Tensor, b: Tensor) -> bool:
    """Same device and same storage data pointer; a storage of 0 bytes shares with nothing."""
    if a.device != b.device:
        return False
    sa, sb = a.untyped_storage(), b.untyped_storage()
    if sa.nbytes() == 0 or sb.nbytes() == 0:
        return False
    return sa.data_ptr() == sb.data_ptr()


# -- exact overlap of byte sets ---------------------------------------------------------------------------

class _Layout:
    """The byte footprint of a strided array: base address, sizes, strides in bytes, itemsize."""

    def __init__(self, base: int, sizes, byte_strides, itemsize: int) -> None:
        self.base, self.itemsize = base, itemsize
        self.sizes, self.strides = tuple(sizes), tuple(byte_strides)
        self.empty = 0 in self.sizes
        reach = [(n - 1) * s for n, s in zip(self.sizes, self.strides)]
        self.lo = base + sum(r for r in reach if r < 0)  # first byte
        self.hi = base + sum(r for r in reach if r > 0) + itemsize  # one past the last byte

    def dense(self) -> bool:
        """Whether the elements cover [lo, hi) without a hole (dims sorted by |stride|)."""
        covered = self.itemsize
        for stride, n in sorted((abs(s), n) for n, s in zip(self.sizes, self.strides) if n > 1 and s != 0):
            if stride > covered:
                return False
            covered += stride * (n - 1)
        return True

    def starts(self) -> Tensor:
        """Sorted unique start addresses of the elements, (E,) int64."""
        offsets = torch.zeros(1, dtype=torch.int64)
        for n, s in zip(self.sizes, self.strides):
            offsets = (offsets[:, None] + torch.arange(n, dtype=torch.int64) * s).flatten()  # (prod sizes,)
        return torch.unique(offsets) + self.base  # unique also sorts


def _hits(starts: Tensor, itemsize: int, lo: int, hi: int) -> bool:
    """Whether some [s, s + itemsize) meets the byte range [lo, hi)."""
    return bool(((starts < hi) & (starts + itemsize > lo)).any())


def _layouts_overlap(a: _Layout, b: _Layout) -> bool:
    if a.empty or b.empty or a.hi <= b.lo or b.hi <= a.lo:
        return False
    if a.dense():
        return _hits(b.starts(), b.itemsize, a.lo, a.hi)
    if b.dense():
        return _hits(a.starts(), a.itemsize, b.lo, b.hi)
    sa, sb = a.starts(), b.starts()  # (Ea,), (Eb,) sorted
    # [x, x + ia) meets some [y, y + ib) iff the first y > x - ib is < x + ia
    first = torch.searchsorted(sb, sa - b.itemsize, right=True)  # (Ea,)
    inside = first < sb.numel()
    return bool((sb[first[inside]] < sa[inside] + a.itemsize).any())


def _tensor_layout(t: Tensor) -> _Layout:
    size = t.element_size()
    return _Layout(t.data_ptr(), t.shape, [s * size for s in t.stride()], size)


def overlaps(a: Tensor, b: Tensor) -> bool:
    """Whether some byte of an element of ``a`` is a byte of an element of ``b`` (absolute addresses)."""
    if a.device != b.device:
        return False
    return _layouts_overlap(_tensor_layout(a), _tensor_layout(b))


def shares_memory_with_array(t: Tensor, a: numpy.ndarray) -> bool:
    """Exact overlap of ``t``'s and ``a``'s element bytes (``t`` off the CPU shares nothing with ``a``)."""
    if t.device.type != "cpu":
        return False
    array = _Layout(a.__array_interface__["data"][0], a.shape, a.strides, a.itemsize)
    return _layouts_overlap(_tensor_layout(t), array)


# -- can_view ------------------------------------------------------------------------------------------------

def _infer_shape(shape: tuple[int, ...], numel: int) -> tuple[int, ...] | None:
    """``shape`` with its -1 filled in (torch's infer_size), or None if it is invalid for ``numel``."""
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        return None
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or numel % known:  # -1 next to a 0 could be anything
            return None
        return tuple(numel // known if d == -1 else d for d in shape)
    return shape if known == numel else None


def _chunks(sizes: tuple[int, ...], strides: tuple[int, ...]) -> list[int]:
    """Element counts of the maximal runs of mutually contiguous dims (size-1 dims dropped)."""
    dims = [(n, s) for n, s in zip(sizes, strides) if n != 1]
    chunks: list[int] = []
    for k, (n, s) in enumerate(dims):
        if k > 0 and dims[k - 1][1] == n * s:  # contiguous with the previous dim
            chunks[-1] *= n
        else:
            chunks.append(n)
    return chunks


def can_view(t: Tensor, shape: tuple[int, ...]) -> bool:
    """True iff ``t.view(shape)`` would succeed; decided from sizes and strides only, never raises."""
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return False
    new = _infer_shape(shape, t.numel())
    if new is None:
        return False
    if t.numel() == 0:
        return True
    return t.is_contiguous()
    groups = [n for n in new if n != 1]  # size-1 dims of the new shape fit anywhere
    i = 0
    for chunk in _chunks(tuple(t.shape), t.stride()):
        count = 1
        while count < chunk and i < len(groups):  # consecutive new dims must multiply to the chunk
            count *= groups[i]
            i += 1
        if count != chunk:
            return False
    return i == len(groups)
