"""Reduce-scatter with Adam's "epsilon-hat" form: pre-divides each gradient by N, reduce-scatters the padded
flat vector straight into this rank's shard, and applies the mathematically equal update
w -= (lr * sqrt(1 - beta2^t) / (1 - beta1^t)) * m / (sqrt(v) + eps * sqrt(1 - beta2^t)) in place.

The weights are gathered back with all_gather_into_tensor into a preallocated flat buffer and written to
the parameters through views of it. The memory formula sums each model state's bytes, divided by N when
the stage partitions that state.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor


def zero_memory_bytes(num_params: int, world_size: int, stage: int, param_bytes: int = 2,
                      grad_bytes: int = 2, optimizer_bytes: int = 12) -> float:
    if stage not in (0, 1, 2, 3):
        raise ValueError("stage must be in 0..3")
    if world_size < 1:
        raise ValueError("world_size must be >= 1")
    # (bytes per parameter, first stage that partitions it)
    states = [(optimizer_bytes, 1), (grad_bytes, 2), (param_bytes, 3)]
    total = 0.0
    for nbytes, from_stage in states:
        total += nbytes * num_params / (world_size if stage >= from_stage else 1)
    return total


class ZeroAdam:
    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, group=None) -> None:
        self._params = [p for p in params]
        self._hp = dict(lr=lr, b1=betas[0], b2=betas[1], eps=eps, wd=weight_decay)
        self._group = group
        self._n = dist.get_world_size(group=group)
        self._r = dist.get_rank(group=group)
        numel = sum(p.numel() for p in self._params)
        self._numel = numel
        self._shard = -(-numel // self._n)
        dtype = self._params[0].dtype
        self._buf = torch.zeros(self._n * self._shard, dtype=dtype)
        self.exp_avg = torch.zeros(self._shard, dtype=dtype)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
        self._step = 0

    def shard_numel(self) -> int:
        return self._shard

    def _pack(self, tensors) -> Tensor:
        buf = torch.zeros_like(self._buf)
        i = 0
        for t in tensors:
            buf[i:i + t.numel()].copy_(t.reshape(-1))
            i += t.numel()
        return buf

    @torch.no_grad()
    def step(self) -> None:
        hp, S, n = self._hp, self._shard, self._n
        grads = self._pack(p.grad for p in self._params).div_(n)
        g = torch.empty(S, dtype=grads.dtype)
        dist.reduce_scatter_tensor(g, grads, group=self._group)
        w = self._pack(self._params)[self._r * S:(self._r + 1) * S].clone()
        if hp["wd"]:
            g.add_(w, alpha=hp["wd"])

        self._step += 1
        t = self._step
        self.exp_avg.mul_(hp["b1"]).add_(g, alpha=1 - hp["b1"])
        self.exp_avg_sq.mul_(hp["b2"]).addcmul_(g, g, value=1 - hp["b2"])
        sqrt_bc2 = (1 - hp["b2"] ** t) ** 0.5
        step_size = hp["lr"] * sqrt_bc2 / (1 - hp["b1"] ** t)
        denom = self.exp_avg_sq.sqrt().add_(hp["eps"] * sqrt_bc2)
        w.addcdiv_(self.exp_avg, denom, value=-step_size)

        dist.all_gather_into_tensor(self._buf, w, group=self._group)
        i = 0
        for p in self._params:
            p.copy_(self._buf[i:i + p.numel()].view_as(p))
            i += p.numel()

    def zero_grad(self) -> None:
        for p in self._params:
            if p.grad is not None:
                p.grad.zero_()
