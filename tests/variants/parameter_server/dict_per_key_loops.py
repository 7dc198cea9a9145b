"""Per-key dicts and Python loops: each server keeps a dict key -> vector, pushes apply one row at a time.

Instead of range-shaped tensors, every alive server stores one float32 vector per key it holds in a plain
dict (a down server has no dict at all). A key is available when some alive replica still has it in its
dict, so a lost range needs no flag: the recovering servers simply find no copy to take. Repeated keys in
a push are applied sequentially (w -= lr * g, once per occurrence) under one lock. BoundedDelay keeps the
last finished iteration of each worker (-1 at start); top-k uses a stable descending argsort of |grad|,
and decompression assigns through a flat view.
"""

from __future__ import annotations

import threading
from typing import Sequence

import torch
from torch import Tensor


class KeyUnavailableError(RuntimeError):
    """Raised by pull/push for a key whose every copy is down (or was lost)."""


class ParameterServer:
    def __init__(self, num_keys: int, dim: int, num_servers: int, replication: int = 2,
                 lr: float = 0.1) -> None:
        if num_keys < 1 or dim < 1 or num_servers < 1:
            raise ValueError("num_keys, dim and num_servers must be at least 1")
        if not 0 <= replication < num_servers:
            raise ValueError("replication must be in [0, num_servers)")
        self.num_keys, self.dim, self.num_servers = num_keys, dim, num_servers
        self.replication, self.lr = replication, lr
        base, extra = divmod(num_keys, num_servers)
        self._range_of: list[int] = []
        for r in range(num_servers):
            self._range_of.extend([r] * (base + (1 if r < extra else 0)))
        # server -> {key: vector} while alive, None while down
        self._mem: list[dict[int, Tensor] | None] = [{} for _ in range(num_servers)]
        for key in range(num_keys):
            for s in self.replicas_for(key):
                self._mem[s][key] = torch.zeros(dim, dtype=torch.float32)
        self._lock = threading.Lock()

    def _check_key(self, key) -> int:
        key = int(key)
        if not 0 <= key < self.num_keys:
            raise ValueError(f"key {key} not in [0, {self.num_keys})")
        return key

    def _check_server(self, server: int) -> int:
        if not 0 <= server < self.num_servers:
            raise ValueError(f"server {server} not in [0, {self.num_servers})")
        return server

    def replicas_for(self, key: int) -> list[int]:
        r = self._range_of[self._check_key(key)]
        return [(r + i) % self.num_servers for i in range(self.replication + 1)]

    def _holders(self, key: int) -> list[int]:
        """Alive replicas of ``key`` that still have its data, primary first."""
        return [s for s in self.replicas_for(key) if self._mem[s] is not None and key in self._mem[s]]

    def pull(self, keys: Sequence[int]) -> Tensor:
        keys = [self._check_key(k) for k in keys]
        with self._lock:
            rows = []
            for key in keys:
                holders = self._holders(key)
                if not holders:
                    raise KeyUnavailableError(f"key {key} is unavailable")
                rows.append(self._mem[holders[0]][key].clone())
        if not rows:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        return torch.stack(rows)

    def push(self, keys: Sequence[int], grads: Tensor) -> None:
        keys = [self._check_key(k) for k in keys]
        if tuple(grads.shape) != (len(keys), self.dim):
            raise ValueError(f"grads must have shape ({len(keys)}, {self.dim}), got {tuple(grads.shape)}")
        grads = grads.detach().to(torch.float32)
        with self._lock:
            targets = []
            for key in keys:
                holders = self._holders(key)
                if not holders:
                    raise KeyUnavailableError(f"key {key} is unavailable")
                targets.append(holders)
            for i, (key, holders) in enumerate(zip(keys, targets)):
                for s in holders:
                    self._mem[s][key].sub_(self.lr * grads[i])

    def fail(self, server: int) -> None:
        self._check_server(server)
        with self._lock:
            self._mem[server] = None

    def recover(self, server: int) -> None:
        self._check_server(server)
        with self._lock:
            if self._mem[server] is not None:
                return
            mem: dict[int, Tensor] = {}
            for key in range(self.num_keys):
                if server not in self.replicas_for(key):
                    continue
                holders = self._holders(key)
                if holders:
                    mem[key] = self._mem[holders[0]][key].clone()
            self._mem[server] = mem


class BoundedDelay:
    def __init__(self, num_workers: int, max_delay: int | None) -> None:
        if num_workers < 1:
            raise ValueError("num_workers must be at least 1")
        if max_delay is not None and max_delay < 0:
            raise ValueError("max_delay must be >= 0 or None")
        self.max_delay = max_delay
        self._last = [-1] * num_workers   # last finished iteration per worker
        self._lock = threading.Lock()

    def _check_worker(self, worker: int) -> None:
        if not 0 <= worker < len(self._last):
            raise ValueError(f"unknown worker {worker}")

    def can_start(self, worker: int, iteration: int) -> bool:
        self._check_worker(worker)
        if iteration < 0:
            raise ValueError("iteration must be >= 0")
        if self.max_delay is None:
            return True
        needed = iteration - self.max_delay - 1
        with self._lock:
            return all(last >= needed for last in self._last)

    def finish(self, worker: int, iteration: int) -> None:
        self._check_worker(worker)
        with self._lock:
            if iteration != self._last[worker] + 1:
                raise ValueError(f"worker {worker} must finish iteration {self._last[worker] + 1} next")
            self._last[worker] = iteration


def topk_compress(grad: Tensor, k: int) -> tuple[Tensor, Tensor]:
    flat = grad.reshape(-1)
    if not 0 <= k <= flat.numel():
        raise ValueError(f"k must be in [0, {flat.numel()}]")
    order = torch.argsort(flat.abs(), descending=True, stable=True)
    indices = order[:k].to(torch.int64)
    return indices, flat[indices]


def topk_decompress(indices: Tensor, values: Tensor, shape: torch.Size) -> Tensor:
    out = torch.zeros(tuple(shape), dtype=values.dtype, device=values.device)
    out.view(-1)[indices.long()] = values
    return out
