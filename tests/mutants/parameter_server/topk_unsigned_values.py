"""MUTANT: top-k sends |grad| as the values, losing the sign

Mu Li's parameter server (OSDI 2014) in one process: key ranges, replication, bounded delay, top-k.

Key ranges. Keys 0..K-1 are cut into N contiguous ranges, as equal as possible, the first K mod N
ranges one key longer (10 keys on 4 servers: [0,3) [3,6) [6,8) [8,10)). Range r lives on

    replicas(r) = [r, r+1, ..., r+R]  (mod N)        primary first, R = replication

so every key has R+1 copies and survives any R servers being down. A push updates every alive copy,

    w[k] <- w[k] - lr * sum of the grads pushed for k,

under one lock, so concurrent pushes never lose an update. A server that fails loses its memory; when
it recovers it copies each range it holds from an alive copy. A range whose R+1 copies were all down at
once has no copy left anywhere: it stays unavailable, even after its servers come back.

Bounded delay. With done[w] = number of iterations worker w has finished (it finishes them in order),

    can_start(w, t)  <=>  min_w' done[w'] >= t - max_delay
                     <=>  every worker has finished iteration t - max_delay - 1

max_delay = 0 is bulk synchronous (BSP), None is fully asynchronous.

Top-k compression sends only the k entries of largest |g|: (flat indices, signed values), 2k numbers
instead of numel.
"""

from __future__ import annotations

import bisect
import threading
from typing import Sequence

import torch
from torch import Tensor


class KeyUnavailableError(RuntimeError):
    """Every copy of a key's range is down (or was lost): the key can be neither pulled nor pushed."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


class ParameterServer:
    """A sharded, replicated key-value store of ``dim``-vectors updated by SGD pushes."""

    def __init__(self, num_keys: int, dim: int, num_servers: int, replication: int = 2,
                 lr: float = 0.1) -> None:
        _require(num_keys >= 1 and dim >= 1 and num_servers >= 1, "num_keys, dim and num_servers must be >= 1")
        _require(0 <= replication < num_servers, f"replication must be in [0, num_servers), got {replication}")
        self.num_keys, self.dim, self.num_servers = num_keys, dim, num_servers
        self.replication, self.lr = replication, lr
        size, extra = divmod(num_keys, num_servers)
        lengths = [size + (r < extra) for r in range(num_servers)]
        self._starts = [sum(lengths[:r]) for r in range(num_servers + 1)]  # range r = [starts[r], starts[r+1])
        self._alive = [True] * num_servers
        self._store: list[dict[int, Tensor]] = [  # server -> {range: (range length, dim)}
            {r: torch.zeros(lengths[r], dim) for r in self._ranges_held_by(s)} for s in range(num_servers)]
        self._lock = threading.Lock()

    # -- placement -------------------------------------------------------------------------------------
    def _range_of(self, key: int) -> int:
        _require(0 <= key < self.num_keys, f"key {key} is out of range [0, {self.num_keys})")
        return bisect.bisect_right(self._starts, key) - 1

    def _servers_of_range(self, r: int) -> list[int]:
        return [(r + j) % self.num_servers for j in range(self.replication + 1)]

    def _ranges_held_by(self, server: int) -> list[int]:
        return [(server - j) % self.num_servers for j in range(self.replication + 1)]

    def _check_server(self, server: int) -> None:
        _require(0 <= server < self.num_servers, f"unknown server {server} (there are {self.num_servers})")

    def replicas_for(self, key: int) -> list[int]:
        """The servers holding ``key``, primary first."""
        return self._servers_of_range(self._range_of(int(key)))

    # -- data --------------------------------------------------------------------------------------------
    def _live_copies(self, r: int) -> list[Tensor]:
        """The alive copies of range r (all equal); empty if none is left."""
        return [self._store[s][r] for s in self._servers_of_range(r) if self._alive[s] and r in self._store[s]]

    def _locate(self, keys: Sequence[int]) -> list[tuple[int, int]]:
        """(range, row inside the range) per key; raises before anything is touched."""
        ranges = [self._range_of(int(k)) for k in keys]
        for k, r in zip(keys, ranges):
            if not self._live_copies(r):
                raise KeyUnavailableError(f"key {int(k)}: every copy of its range is down or lost")
        return [(r, int(k) - self._starts[r]) for k, r in zip(keys, ranges)]

    def pull(self, keys: Sequence[int]) -> Tensor:
        """The weights of ``keys``, (len(keys), dim), read from the first alive replica of each."""
        with self._lock:
            rows = [self._live_copies(r)[0][i] for r, i in self._locate(keys)]
            return torch.stack(rows) if rows else torch.zeros(0, self.dim)  # (len(keys), dim)

    def push(self, keys: Sequence[int], grads: Tensor) -> None:
        """w[k] -= lr * grad on every alive replica; gradients of repeated keys add up."""
        _require(tuple(grads.shape) == (len(keys), self.dim),
                 f"grads must have shape ({len(keys)}, {self.dim}), got {tuple(grads.shape)}")
        step = -self.lr * grads.detach().to(torch.float32)  # (len(keys), dim)
        with self._lock:  # one lock: the read-modify-write of every copy is atomic
            located = self._locate(keys)
            for r in sorted({r for r, _ in located}):
                mine = [j for j, (rj, _) in enumerate(located) if rj == r]
                rows = torch.tensor([located[j][1] for j in mine], dtype=torch.long)
                for copy in self._live_copies(r):
                    copy.index_add_(0, rows, step[mine])  # repeated rows accumulate

    # -- faults ------------------------------------------------------------------------------------------
    def fail(self, server: int) -> None:
        """The server goes down and forgets everything it stored."""
        self._check_server(server)
        with self._lock:
            self._alive[server] = False
            self._store[server] = {}

    def recover(self, server: int) -> None:
        """The server comes back and copies each range it holds from an alive replica (if one is left)."""
        self._check_server(server)
        with self._lock:
            if self._alive[server]:
                return
            for r in self._ranges_held_by(server):
                copies = self._live_copies(r)
                if copies:
                    self._store[server][r] = copies[0].clone()
            self._alive[server] = True


class BoundedDelay:
    """The bounded-delay consistency model: how far ahead of the slowest worker a worker may run."""

    def __init__(self, num_workers: int, max_delay: int | None) -> None:
        _require(num_workers >= 1, f"num_workers must be >= 1, got {num_workers}")
        _require(max_delay is None or max_delay >= 0, f"max_delay must be >= 0 or None, got {max_delay}")
        self.num_workers, self.max_delay = num_workers, max_delay
        self._done = [0] * num_workers  # iterations finished per worker
        self._lock = threading.Lock()

    def _check(self, worker: int, iteration: int) -> None:
        _require(0 <= worker < self.num_workers, f"unknown worker {worker}")
        _require(iteration >= 0, f"iterations count from 0, got {iteration}")

    def can_start(self, worker: int, iteration: int) -> bool:
        """Whether every worker has finished iteration ``iteration - max_delay - 1``."""
        self._check(worker, iteration)
        if self.max_delay is None:
            return True
        with self._lock:
            return min(self._done) >= iteration - self.max_delay

    def finish(self, worker: int, iteration: int) -> None:
        """Record that ``worker`` finished ``iteration`` (its next one, in order)."""
        self._check(worker, iteration)
        with self._lock:
            _require(iteration == self._done[worker],
                     f"worker {worker} must finish iteration {self._done[worker]} next, not {iteration}")
            self._done[worker] += 1


def topk_compress(grad: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(flat indices, signed values) of the ``k`` entries of largest magnitude."""
    flat = grad.reshape(-1)  # (numel,)
    _require(0 <= k <= flat.numel(), f"k must be in [0, {flat.numel()}], got {k}")
    indices = flat.abs().topk(k).indices  # (k,) int64
    return indices, flat[indices].abs()


def topk_decompress(indices: Tensor, values: Tensor, shape: torch.Size) -> Tensor:
    """The dense tensor of ``shape``: ``values`` at the flat ``indices``, zero elsewhere."""
    dense = torch.zeros(torch.Size(shape).numel(), dtype=values.dtype)  # (numel,)
    dense[indices] = values
    return dense.reshape(shape)
