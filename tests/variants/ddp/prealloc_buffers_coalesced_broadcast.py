"""A class-based no_sync context, buckets copied into preallocated buffers, one broadcast per dtype.

`broadcast_parameters` packs all parameters and buffers of each dtype into one flat buffer, broadcasts
it once and copies the slices back into the original tensors; the synchronizer uses a single bound-method
hook, records the open bucket as `(param, numel)` pairs, allocates the bucket's buffer when it closes and
fills it slice by slice, divides the whole buffer by the group size after `wait()` on its work handle, and
assigns the slices to `.grad` as new tensors.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.distributed as dist


def broadcast_parameters(model: torch.nn.Module, src: int = 0, group=None) -> None:
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = defaultdict(list)
    for t in [*model.parameters(), *model.buffers()]:
        by_dtype[t.dtype].append(t)
    with torch.no_grad():
        for dtype, tensors in by_dtype.items():
            total = sum(t.numel() for t in tensors)
            buf = torch.empty(total, dtype=dtype)
            pos = 0
            for t in tensors:
                buf[pos:pos + t.numel()].copy_(t.flatten())
                pos += t.numel()
            dist.broadcast(buf, src, group)
            pos = 0
            for t in tensors:
                t.copy_(buf[pos:pos + t.numel()].unflatten(0, t.shape))
                pos += t.numel()


class _NoSync:
    def __init__(self, owner: "GradientSynchronizer") -> None:
        self.owner = owner

    def __enter__(self):
        self.saved = self.owner._enabled
        self.owner._enabled = False
        return self

    def __exit__(self, *exc) -> bool:
        self.owner._enabled = self.saved
        return False


class GradientSynchronizer:
    def __init__(self, model: torch.nn.Module, group=None, bucket_cap_numel: int = 2**20) -> None:
        self._group = group
        self._cap = bucket_cap_numel
        trainable = [p for p in model.parameters() if p.requires_grad]
        self._expected = len(trainable)
        self._seen = 0
        self._enabled = True
        self._bucket: list[tuple[torch.Tensor, int]] = []
        self._pending = []
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in trainable]

    def _bucket_size(self) -> int:
        return sum(n for _, n in self._bucket)

    def _flush(self) -> None:
        if not self._bucket:
            return
        buf = torch.empty(self._bucket_size(), dtype=self._bucket[0][0].grad.dtype)
        start = 0
        for p, n in self._bucket:
            buf.narrow(0, start, n).copy_(p.grad.detach().flatten())
            start += n
        handle = dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=self._group, async_op=True)
        self._pending.append((handle, buf, self._bucket))
        self._bucket = []

    def _grad_ready(self, p: torch.Tensor) -> None:
        if not self._enabled:
            return
        self._seen += 1
        last = self._seen == self._expected
        n = p.grad.numel()
        if self._bucket and self._bucket_size() + n > self._cap:
            self._flush()
        self._bucket.append((p, n))
        if last or self._bucket_size() >= self._cap:
            self._flush()
        if last:
            self._seen = 0

    def wait(self) -> None:
        size = dist.get_world_size(group=self._group)
        pending, self._pending = self._pending, []
        for handle, buf, members in pending:
            handle.wait()
            buf.div_(size)
            start = 0
            for p, n in members:
                p.grad = buf.narrow(0, start, n).unflatten(0, p.shape).clone()
                start += n

    def no_sync(self):
        return _NoSync(self)

    def remove(self) -> None:
        while self._hooks:
            self._hooks.pop().remove()
