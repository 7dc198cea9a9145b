"""Storage, strides and aliasing: do two tensors share memory, and can a tensor be viewed as a shape?

Read README.md first (``dlkata show storage``). Replace each ``raise NotImplementedError`` with your code;
check with ``dlkata check storage``. Forbidden: ``numpy.shares_memory``, ``numpy.may_share_memory``, and
``view`` / ``reshape`` in any spelling (decide from sizes and strides, never by trying).
"""

import numpy
import torch
from torch import Tensor


def same_storage(a: Tensor, b: Tensor) -> bool:
    """True iff ``a`` and ``b`` are on the same device and their storages have the same data pointer.

    A storage of 0 bytes shares with nothing (two empty tensors give False). Views with different
    offsets, strides or dtypes of one storage give True, even if they have no byte in common.
    Returns a Python bool.
    """
    raise NotImplementedError("same_storage")


def overlaps(a: Tensor, b: Tensor) -> bool:
    """True iff some byte of some element of ``a`` is a byte of some element of ``b``.

    Addresses are absolute (data pointer + offsets), each element covering ``element_size()`` bytes, so
    views with different dtypes (``x.view(torch.uint8)``) are compared byte by byte. Exact for any
    strides: ``x[::2]`` and ``x[1::2]`` do not overlap. A tensor with no elements overlaps nothing;
    tensors on different devices never overlap. Returns a Python bool.
    """
    raise NotImplementedError("overlaps")


def can_view(t: Tensor, shape: tuple[int, ...]) -> bool:
    """True iff ``t.view(shape)`` would succeed, decided from ``t``'s sizes and strides alone.

    ``shape`` may contain one -1 (inferred, as in torch). An invalid shape (two -1, a size below -1, the
    wrong number of elements, -1 that cannot be inferred) gives False; never raises, never calls a
    view or reshape. Returns a Python bool.
    """
    raise NotImplementedError("can_view")


def shares_memory_with_array(t: Tensor, a: numpy.ndarray) -> bool:
    """True iff some byte of an element of ``t`` is a byte of an element of ``a`` (exact, like overlaps).

    numpy strides are in bytes and may be negative; an empty tensor or array shares nothing; a tensor
    that is not on the CPU shares nothing with ``a``. Returns a Python bool.
    """
    raise NotImplementedError("shares_memory_with_array")
