"""All-reduce then slice, with the textbook Adam formula: sums the full flat gradient with one all_reduce,
divides by N and keeps this rank's slice (instead of a reduce-scatter), then updates with the paper's
form m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t), w -= lr * m_hat / (sqrt(v_hat) + eps), with
the moments updated as beta * m + (1 - beta) * g rather than torch's lerp_/addcmul_.

The updated shards are all-gathered as a list of S-element tensors and concatenated. The memory formula
is written out per stage as in the paper's table.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor


def zero_memory_bytes(num_params: int, world_size: int, stage: int, param_bytes: int = 2,
                      grad_bytes: int = 2, optimizer_bytes: int = 12) -> float:
    if world_size < 1:
        raise ValueError("world_size must be >= 1")
    psi, n = num_params, world_size
    if stage == 0:
        return float((param_bytes + grad_bytes + optimizer_bytes) * psi)
    if stage == 1:
        return param_bytes * psi + grad_bytes * psi + optimizer_bytes * psi / n
    if stage == 2:
        return param_bytes * psi + (grad_bytes + optimizer_bytes) * psi / n
    if stage == 3:
        return (param_bytes + grad_bytes + optimizer_bytes) * psi / n
    raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage}")


class ZeroAdam:
    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, group=None) -> None:
        self.params = list(params)
        self.lr, self.beta1, self.beta2 = lr, betas[0], betas[1]
        self.eps, self.weight_decay, self.group = eps, weight_decay, group
        self.world = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.total = sum(p.numel() for p in self.params)
        self.S = math.ceil(self.total / self.world)
        self.dtype = self.params[0].dtype
        self.exp_avg = torch.zeros(self.S, dtype=self.dtype)
        self.exp_avg_sq = torch.zeros(self.S, dtype=self.dtype)
        self.t = 0

    def shard_numel(self) -> int:
        return self.S

    def _flat(self, tensors) -> Tensor:
        flat = torch.zeros(self.world * self.S, dtype=self.dtype)
        flat[:self.total] = torch.cat([t.detach().reshape(-1) for t in tensors])
        return flat

    @torch.no_grad()
    def step(self) -> None:
        lo, hi = self.rank * self.S, (self.rank + 1) * self.S
        grad = self._flat([p.grad for p in self.params])
        dist.all_reduce(grad, group=self.group)
        g = (grad / self.world)[lo:hi]
        w = self._flat(self.params)[lo:hi].clone()
        if self.weight_decay != 0:
            g = g + self.weight_decay * w

        self.t += 1
        b1, b2 = self.beta1, self.beta2
        self.exp_avg.copy_(b1 * self.exp_avg + (1 - b1) * g)
        self.exp_avg_sq.copy_(b2 * self.exp_avg_sq + (1 - b2) * g * g)
        m_hat = self.exp_avg / (1 - b1 ** self.t)
        v_hat = self.exp_avg_sq / (1 - b2 ** self.t)
        w = w - self.lr * m_hat / (v_hat.sqrt() + self.eps)

        shards = [torch.empty(self.S, dtype=self.dtype) for _ in range(self.world)]
        dist.all_gather(shards, w.contiguous(), group=self.group)
        new = torch.cat(shards)
        offset = 0
        for p in self.params:
            p.copy_(new[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
