"""Gradients become views of their bucket's buffer, so the all-reduce writes them; async broadcasts.

`broadcast_parameters` launches one asynchronous broadcast per parameter and buffer, then waits for
them all. The synchronizer keeps the order in which gradients became ready in one list and the open
bucket as the index where it starts in that list; when a bucket closes its gradients are concatenated
and each parameter's `.grad` is replaced by its slice of the concatenated buffer, so the in-flight
all-reduce sums straight into the gradients; `wait()` then only scales them by `1 / group size`.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist


def broadcast_parameters(model: torch.nn.Module, src: int = 0, group=None) -> None:
    tensors = [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        works = [dist.broadcast(t, src=src, group=group, async_op=True) for t in tensors]
        for w in works:
            w.wait()


class GradientSynchronizer:
    def __init__(self, model: torch.nn.Module, group=None, bucket_cap_numel: int = 2**20) -> None:
        self.group = group
        self.cap = bucket_cap_numel
        params = [p for p in model.parameters() if p.requires_grad]
        self.n_params = len(params)
        self.enabled = True
        self.order: list[torch.Tensor] = []  # parameters in the order their gradient became ready
        self.bucket_start = 0  # index in self.order where the open bucket begins
        self.works = []
        self.handles = [p.register_post_accumulate_grad_hook(self._hook) for p in params]

    def _open_numel(self) -> int:
        return sum(p.grad.numel() for p in self.order[self.bucket_start:])

    def _close(self) -> None:
        members = self.order[self.bucket_start:]
        self.bucket_start = len(self.order)
        if not members:
            return
        flat = torch.cat([p.grad.detach().flatten() for p in members])
        offset = 0
        for p in members:
            n = p.grad.numel()
            p.grad = flat[offset:offset + n].unflatten(0, p.shape)
            offset += n
        self.works.append(dist.all_reduce(flat, group=self.group, async_op=True))

    def _hook(self, p: torch.Tensor) -> None:
        if not self.enabled:
            return
        if self._open_numel() > 0 and self._open_numel() + p.grad.numel() > self.cap:
            self._close()
        self.order.append(p)
        if self._open_numel() >= self.cap or len(self.order) == self.n_params:
            self._close()

    def wait(self) -> None:
        for w in self.works:
            w.wait()
        scale = 1.0 / dist.get_world_size(self.group)
        for p in self.order:
            p.grad.mul_(scale)
        self.works, self.order, self.bucket_start = [], [], 0

    @contextlib.contextmanager
    def no_sync(self):
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = True

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
