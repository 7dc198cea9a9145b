"""MUTANT: weight decay applied AdamW-style (decoupled) instead of as torch.optim.Adam's L2 term

DeepSpeed ZeRO: what each stage partitions and what it costs, and ZeRO-1 Adam on a real process group.

Memory (Rajbhandari et al., ZeRO, 2020). Mixed-precision Adam keeps, per parameter, a 2-byte fp16
weight, a 2-byte fp16 gradient and K = 12 bytes of optimizer state (fp32 master weight, momentum,
variance). With Psi parameters on N data-parallel ranks, per-rank model-state memory is

    stage 0 (plain DP):          (2 + 2 + K) * Psi
    stage 1 (P_os):               2 Psi + 2 Psi + K Psi / N
    stage 2 (P_os+g):             2 Psi + (2 + K) Psi / N
    stage 3 (P_os+g+p):           (2 + 2 + K) Psi / N

(the 2, 2, K above are param_bytes, grad_bytes, optimizer_bytes). Psi = 7.5e9, N = 64: 120 GB, 31.4 GB,
16.6 GB, 1.9 GB.

ZeroAdam (stage 1). All parameters are flattened, in order, into one vector of P elements, padded with
zeros to N * S where S = ceil(P / N). Rank r owns elements [r S, (r+1) S) and keeps Adam state for them
only. One step, t = 1, 2, ...:

    g     = reduce_scatter(flat grads) / N          # (S,) this rank's shard of the mean gradient
    g     = g + weight_decay * w                    # L2 weight decay, as torch.optim.Adam
    m     = beta1 m + (1 - beta1) g
    v     = beta2 v + (1 - beta2) g^2
    w     = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    flat  = all_gather(w)                           # (N S,) every rank's shard, in rank order

Communication: a reduce-scatter and an all-gather move the same bytes as one all-reduce (an all-reduce
is a reduce-scatter followed by an all-gather), so stage 1 saves (N-1)/N of the optimizer state for free.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor

PARTITIONED = {0: (), 1: ("optimizer",), 2: ("optimizer", "grad"), 3: ("optimizer", "grad", "param")}


def zero_memory_bytes(num_params: int, world_size: int, stage: int, param_bytes: int = 2,
                      grad_bytes: int = 2, optimizer_bytes: int = 12) -> float:
    """Per-rank bytes of weights, gradients and optimizer state under ZeRO ``stage`` (0-3)."""
    if stage not in PARTITIONED:
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage}")
    if world_size < 1 or num_params < 0:
        raise ValueError(f"need world_size >= 1 and num_params >= 0, got {world_size}, {num_params}")
    parts = {"param": param_bytes, "grad": grad_bytes, "optimizer": optimizer_bytes}
    return float(sum(num_params * b / (world_size if name in PARTITIONED[stage] else 1)
                     for name, b in parts.items()))


class ZeroAdam:
    """Adam whose state is sharded over the ranks of ``group`` (ZeRO stage 1)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, group=None) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("ZeroAdam got an empty parameter list")
        self.lr, self.betas, self.eps, self.weight_decay, self.group = lr, betas, eps, weight_decay, group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.numel = sum(p.numel() for p in self.params)  # P
        self._shard = math.ceil(self.numel / self.world_size)  # S
        dtype = self.params[0].dtype
        self.exp_avg = torch.zeros(self._shard, dtype=dtype)  # (S,)
        self.exp_avg_sq = torch.zeros(self._shard, dtype=dtype)  # (S,)
        self.step_count = 0

    def shard_numel(self) -> int:
        """S = ceil(P / N): elements of the flat, padded parameter vector this rank owns."""
        return self._shard

    def _flat(self, tensors: list[Tensor]) -> Tensor:
        """The tensors flattened in order and zero-padded to N * S elements."""
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])  # (P,)
        return torch.nn.functional.pad(flat, (0, self.world_size * self._shard - self.numel))  # (N S,)

    def _mine(self, flat: Tensor) -> Tensor:
        return flat[self.rank * self._shard:(self.rank + 1) * self._shard]  # (S,)

    @torch.no_grad()
    def step(self) -> None:
        grad = torch.empty(self._shard, dtype=self.exp_avg.dtype)  # (S,)
        dist.reduce_scatter_tensor(grad, self._flat([p.grad for p in self.params]), group=self.group)
        grad /= self.world_size  # the sum over ranks -> the mean gradient
        shard = self._mine(self._flat(self.params)).clone()  # (S,) this rank's weights
        self._adam(shard, grad)
        full = torch.empty(self.world_size * self._shard, dtype=shard.dtype)  # (N S,)
        dist.all_gather(list(full.chunk(self.world_size)), shard, group=self.group)
        offset = 0
        for p in self.params:
            p.copy_(full[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    def _adam(self, w: Tensor, g: Tensor) -> None:
        """One Adam step on the shard, in place: exactly torch.optim.Adam (amsgrad=False)."""
        beta1, beta2 = self.betas
        self.step_count += 1
        if self.weight_decay:
            w.mul_(1 - self.lr * self.weight_decay)
        self.exp_avg.mul_(beta1).add_(g, alpha=1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bias1, bias2 = 1 - beta1 ** self.step_count, 1 - beta2 ** self.step_count
        denom = self.exp_avg_sq.sqrt() / math.sqrt(bias2) + self.eps
        w.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
