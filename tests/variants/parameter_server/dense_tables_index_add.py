"""Dense tables and index_add_: every server keeps a full (num_keys, dim) table plus an explicit lost flag.

Each alive server stores a dense float32 table over the whole key space (only the rows of its ranges are
meaningful); a down server's table is None. A push is one vectorised index_add_ with alpha=-lr per alive
replica (so repeated keys are summed by index_add_), done under a per-server lock taken in server order.
Key-to-range mapping uses bisect over the range starts. Data loss is tracked explicitly: whenever a fail
leaves a range with no alive copy, that range joins a set of lost ranges for good. BoundedDelay counts
finished iterations per worker; top-k uses torch.topk on |grad|, decompression uses scatter on a flat
zero tensor.
"""

from __future__ import annotations

import bisect
import threading
from typing import Sequence

import torch
from torch import Tensor


class KeyUnavailableError(RuntimeError):
    """Raised by pull/push for a key whose every copy is down (or was lost)."""


class ParameterServer:
    def __init__(self, num_keys: int, dim: int, num_servers: int, replication: int = 2,
                 lr: float = 0.1) -> None:
        if min(num_keys, dim, num_servers) < 1:
            raise ValueError("num_keys, dim and num_servers must be >= 1")
        if replication < 0 or replication >= num_servers:
            raise ValueError("need 0 <= replication < num_servers")
        self.num_keys, self.dim, self.S, self.R, self.lr = num_keys, dim, num_servers, replication, lr
        # equal-as-possible split with the longer ranges first
        q, rem = divmod(num_keys, num_servers)
        self._starts = [r * q + min(r, rem) for r in range(num_servers)]
        self._tables: list[Tensor | None] = [torch.zeros(num_keys, dim) for _ in range(num_servers)]
        self._lost: set[int] = set()
        self._big_lock = threading.RLock()

    # -- placement -------------------------------------------------------------------------------------
    def _range(self, key: int) -> int:
        return bisect.bisect_right(self._starts, key) - 1

    def _servers_of_range(self, r: int) -> list[int]:
        return [(r + j) % self.S for j in range(self.R + 1)]

    def _ranges_of_server(self, s: int) -> list[int]:
        return sorted({(s - j) % self.S for j in range(self.R + 1)})

    def _validate_keys(self, keys) -> Tensor:
        idx = torch.as_tensor([int(k) for k in keys], dtype=torch.int64)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num_keys):
            raise ValueError("key out of range")
        return idx

    def replicas_for(self, key: int) -> list[int]:
        if not 0 <= key < self.num_keys:
            raise ValueError("key out of range")
        return self._servers_of_range(self._range(key))

    def _source(self, r: int) -> int:
        if r in self._lost:
            raise KeyUnavailableError(f"range {r} was lost")
        for s in self._servers_of_range(r):
            if self._tables[s] is not None:
                return s
        raise KeyUnavailableError(f"range {r} has no alive copy")  # not reachable: that range is lost

    # -- data ------------------------------------------------------------------------------------------
    def pull(self, keys: Sequence[int]) -> Tensor:
        idx = self._validate_keys(keys)
        out = torch.empty(len(idx), self.dim, dtype=torch.float32)
        with self._big_lock:
            for i, key in enumerate(idx.tolist()):
                out[i] = self._tables[self._source(self._range(key))][key]
        return out

    def push(self, keys: Sequence[int], grads: Tensor) -> None:
        idx = self._validate_keys(keys)
        if grads.dim() != 2 or grads.shape[0] != len(idx) or grads.shape[1] != self.dim:
            raise ValueError("grads must have shape (len(keys), dim)")
        grads = grads.to(torch.float32)
        with self._big_lock:
            ranges = sorted({self._range(k) for k in idx.tolist()})
            for r in ranges:
                self._source(r)            # raises before anything is applied
            for s in range(self.S):
                table = self._tables[s]
                if table is None:
                    continue
                mine = set(self._ranges_of_server(s))
                sel = [i for i, k in enumerate(idx.tolist()) if self._range(k) in mine]
                if sel:
                    sel_t = torch.tensor(sel, dtype=torch.int64)
                    table.index_add_(0, idx[sel_t], grads[sel_t], alpha=-self.lr)

    # -- failures --------------------------------------------------------------------------------------
    def _check_server(self, s: int) -> None:
        if s < 0 or s >= self.S:
            raise ValueError("server out of range")

    def fail(self, server: int) -> None:
        self._check_server(server)
        with self._big_lock:
            if self._tables[server] is None:
                return
            self._tables[server] = None
            for r in self._ranges_of_server(server):
                if all(self._tables[s] is None for s in self._servers_of_range(r)):
                    self._lost.add(r)

    def recover(self, server: int) -> None:
        self._check_server(server)
        with self._big_lock:
            if self._tables[server] is not None:
                return
            table = torch.zeros(self.num_keys, self.dim)
            for r in self._ranges_of_server(server):
                if r in self._lost:
                    continue
                lo = self._starts[r]
                hi = self._starts[r + 1] if r + 1 < self.S else self.num_keys
                src = self._tables[self._source(r)]
                table[lo:hi] = src[lo:hi]
            self._tables[server] = table


class BoundedDelay:
    def __init__(self, num_workers: int, max_delay: int | None) -> None:
        if num_workers < 1:
            raise ValueError("num_workers < 1")
        if max_delay is not None and max_delay < 0:
            raise ValueError("max_delay < 0")
        self.n, self.tau = num_workers, max_delay
        self.done = [0] * num_workers      # number of finished iterations per worker

    def _worker(self, w: int) -> None:
        if w not in range(self.n):
            raise ValueError("unknown worker")

    def can_start(self, worker: int, iteration: int) -> bool:
        self._worker(worker)
        if iteration < 0:
            raise ValueError("iteration < 0")
        if self.tau is None:
            return True
        # every worker finished iteration t - tau - 1  <=>  each has finished at least t - tau iterations
        return min(self.done) >= iteration - self.tau

    def finish(self, worker: int, iteration: int) -> None:
        self._worker(worker)
        if iteration != self.done[worker]:
            raise ValueError("not the worker's next iteration")
        self.done[worker] += 1


def topk_compress(grad: Tensor, k: int) -> tuple[Tensor, Tensor]:
    n = grad.numel()
    if k < 0 or k > n:
        raise ValueError("k out of range")
    flat = grad.flatten()
    if k == 0:
        return torch.empty(0, dtype=torch.int64), flat[:0].clone()
    mags = flat.abs()
    if not mags.is_floating_point():
        mags = mags.double()
    _, indices = torch.topk(mags, k)
    return indices, flat.gather(0, indices)


def topk_decompress(indices: Tensor, values: Tensor, shape: torch.Size) -> Tensor:
    size = torch.Size(shape)
    flat = torch.zeros(size.numel(), dtype=values.dtype, device=values.device)
    return flat.scatter(0, indices.to(torch.int64), values).reshape(size)
