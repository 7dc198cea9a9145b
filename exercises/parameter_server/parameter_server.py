"""A parameter server in one process: key ranges, replication, fault recovery, bounded delay, top-k.

Read README.md first (``dlkata show parameter_server``). Replace each ``raise NotImplementedError`` with
your code; check with ``dlkata check parameter_server``. Everything runs in one Python process: servers
are objects, not machines, and workers are threads.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class KeyUnavailableError(RuntimeError):
    """Raised by pull/push for a key whose every copy is down (or was lost)."""


class ParameterServer:
    """A sharded, replicated key-value store: key k holds a float32 vector of ``dim`` weights.

    Keys 0..num_keys-1 are split into ``num_servers`` contiguous ranges, as equal as possible, earlier
    ranges one key longer (10 keys, 4 servers: [0, 3), [3, 6), [6, 8), [8, 10)). Range r's primary is
    server r; its copies live on servers r+1, ..., r+replication (mod num_servers). Weights start at zero.
    ValueError unless num_keys, dim, num_servers >= 1 and 0 <= replication < num_servers.
    """

    def __init__(self, num_keys: int, dim: int, num_servers: int, replication: int = 2,
                 lr: float = 0.1) -> None:
        raise NotImplementedError("ParameterServer.__init__")

    def replicas_for(self, key: int) -> list[int]:
        """The servers holding ``key``'s range, primary first (replication + 1 of them)."""
        raise NotImplementedError("ParameterServer.replicas_for")

    def pull(self, keys: Sequence[int]) -> Tensor:
        """Weights of ``keys`` in that order, shape (len(keys), dim), each read from its first alive replica.

        KeyUnavailableError if some key has no copy left; ValueError for a key out of range.
        """
        raise NotImplementedError("ParameterServer.pull")

    def push(self, keys: Sequence[int], grads: Tensor) -> None:
        """``w[k] -= lr * grad`` on every alive replica of each key; gradients of repeated keys add up.

        ``grads`` has shape (len(keys), dim), else ValueError. Safe to call from many threads at once (no
        update is lost). A push touching an unavailable key raises KeyUnavailableError, one touching a
        key out of range ValueError, and then nothing of that push is applied.
        """
        raise NotImplementedError("ParameterServer.push")

    def fail(self, server: int) -> None:
        """The server goes down and loses its memory (a no-op if it is down already)."""
        raise NotImplementedError("ParameterServer.fail")

    def recover(self, server: int) -> None:
        """The server comes back and copies every range it holds from an alive replica (no-op if alive).

        A range that had every copy down at once is lost for good: it stays unavailable.
        """
        raise NotImplementedError("ParameterServer.recover")


class BoundedDelay:
    """Bounded-delay consistency: iteration t may start once every worker finished t - max_delay - 1.

    Iterations count from 0 and each worker finishes them in order. max_delay=0 is bulk synchronous,
    None fully asynchronous. ValueError for num_workers < 1 or max_delay < 0.
    """

    def __init__(self, num_workers: int, max_delay: int | None) -> None:
        raise NotImplementedError("BoundedDelay.__init__")

    def can_start(self, worker: int, iteration: int) -> bool:
        """Whether ``worker`` may start ``iteration`` now. ValueError: unknown worker, iteration < 0."""
        raise NotImplementedError("BoundedDelay.can_start")

    def finish(self, worker: int, iteration: int) -> None:
        """``worker`` finished ``iteration``; ValueError unless it is the worker's next iteration."""
        raise NotImplementedError("BoundedDelay.finish")


def topk_compress(grad: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(flat int64 indices, signed values) of the k entries of largest |grad|, in any order.

    ValueError unless 0 <= k <= grad.numel().
    """
    raise NotImplementedError("topk_compress")


def topk_decompress(indices: Tensor, values: Tensor, shape: torch.Size) -> Tensor:
    """A tensor of ``shape`` and ``values.dtype``: ``values`` at the flat ``indices``, zero elsewhere."""
    raise NotImplementedError("topk_decompress")
