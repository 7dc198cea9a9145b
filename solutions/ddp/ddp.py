"""Data-parallel training by hand: what DistributedDataParallel does with autograd.

Every rank holds a replica of the model and a different slice of the batch. With equal slices of size
``b`` and a mean loss, the full batch's gradient is the mean of the ranks' gradients:

    g = (1 / (p b)) sum_{r, i} grad l(x_{r,i}) = (1 / p) sum_r g_r,     g_r = (1 / b) sum_i grad l(x_{r,i})

so after each backward the ranks all-reduce (sum) their gradients and divide by ``p``. Replicas start
equal (``broadcast_parameters``) and stay equal because every rank then applies the same update.

Overlap: autograd produces gradients layer by layer, last layer first. A post-accumulate-grad hook on each
parameter fires as soon as its ``.grad`` is final for this backward. Gradients are packed into buckets in
that order, and each bucket's all-reduce is launched (``async_op=True``) the moment the bucket closes, so
communication runs while autograd is still computing the earlier layers' gradients. Bucketing trades
latency (one collective per parameter is many small messages) against overlap (one bucket for everything
starts only at the end). The rule here, greedy in ready order with cap ``C`` elements:

    before adding g: if the open bucket is non-empty and numel(open) + numel(g) > C, close it
    add g; if numel(open) >= C, or g is the last gradient of this backward, close it

``no_sync()`` skips communication: gradients accumulate in ``.grad``, and the next synced backward's
hooks see (and all-reduce) the accumulated sums. One all-reduce for several micro-batches.
"""

from __future__ import annotations

import contextlib
import itertools

import torch
import torch.distributed as dist


def broadcast_parameters(model: torch.nn.Module, src: int = 0, group=None) -> None:
    """Overwrite every parameter and buffer, in place, with rank ``src``'s (a global rank)."""
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            dist.broadcast(tensor, src, group=group)


class _Bucket:
    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        self.params = params
        self.flat = torch.cat([p.grad.reshape(-1) for p in params])       # (sum of numels,)
        self.work = None


class GradientSynchronizer:
    """Average the gradients of ``model`` over ``group`` during backward, in buckets of ~``bucket_cap_numel``."""

    def __init__(self, model: torch.nn.Module, group=None, bucket_cap_numel: int = 2**20) -> None:
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.cap = bucket_cap_numel
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.syncing = True
        self._open: list[torch.nn.Parameter] = []
        self._open_numel = 0
        self._ready = 0                    # gradients ready in this backward
        self._launched: list[_Bucket] = []
        self._hooks = [p.register_post_accumulate_grad_hook(self._on_grad_ready) for p in self.params]

    def _on_grad_ready(self, param: torch.nn.Parameter) -> None:
        if not self.syncing:
            return
        if self._open and self._open_numel + param.numel() > self.cap:
            self._close()
        self._open.append(param)
        self._open_numel += param.numel()
        self._ready += 1
        if self._open_numel >= self.cap or self._ready == len(self.params):
            self._close()

    def _close(self) -> None:
        bucket = _Bucket(self._open)
        bucket.work = dist.all_reduce(bucket.flat, group=self.group, async_op=True)
        self._launched.append(bucket)
        self._open, self._open_numel = [], 0

    def wait(self) -> None:
        """Finish the launched all-reduces and write the averaged gradients back to ``.grad``."""
        for bucket in self._launched:
            bucket.work.wait()
            bucket.flat /= self.world_size
            for param, grad in zip(bucket.params, bucket.flat.split([p.numel() for p in bucket.params])):
                param.grad.copy_(grad.view_as(param.grad))
        self._launched, self._ready = [], 0

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate ``.grad`` locally; the next synced one sends the sum."""
        previous, self.syncing = self.syncing, False
        try:
            yield
        finally:
            self.syncing = previous

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
