"""The layers use the whole world's size and rank instead of the group they are given."""


from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _world(group) -> tuple[int, int]:
    return dist.get_world_size(), dist.get_rank()


def _shard(n: int, group, what: str) -> tuple[int, int]:
    """(start, size) of this rank's contiguous slice of ``n`` features."""
    p, r = _world(group)
    if n % p:
        raise ValueError(f"{what}={n} is not divisible by the tensor-parallel world size {p}")
    size = n // p
    return r * size, size


# -- the communication operators, as autograd functions --------------------------------------------------

class _CopyToParallel(torch.autograd.Function):
    """f: identity forward; backward sums the ranks' partial input gradients."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _ReduceFromParallel(torch.autograd.Function):
    """g: forward sums the ranks' partial outputs; the (replicated) gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        x = x.contiguous().clone()
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


def _all_gather_last_dim(x: Tensor, group) -> Tensor:                          # (..., k) -> (..., k * p)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts, dim=-1)


class _GatherFromParallel(torch.autograd.Function):
    """All-gather along the last dim; backward keeps this rank's slice of the replicated gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group, ctx.size = group, x.shape[-1]
        return _all_gather_last_dim(x, group)

    @staticmethod
    def backward(ctx, grad: Tensor):
        r = dist.get_rank(ctx.group)
        return grad[..., r * ctx.size:(r + 1) * ctx.size].contiguous(), None


class _ScatterToParallel(torch.autograd.Function):
    """Keep this rank's slice of the last dim; backward all-gathers the slices' gradients."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        start, size = _shard(x.shape[-1], group, "the input's last dimension")
        ctx.group = group
        return x[..., start:start + size].contiguous()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _all_gather_last_dim(grad, ctx.group), None


# -- tensor-parallel layers ---------------------------------------------------------------------------------

class ColumnParallelLinear(torch.nn.Module):
    """This rank's rows of a Linear's weight: ``weight`` (out/p, in), ``bias`` (out/p,) or None."""

    def __init__(self, weight: Tensor, bias: Tensor | None, gather_output: bool = True, group=None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(bias) if bias is not None else None
        self.gather_output = gather_output
        self.group = group

    @classmethod
    def from_full(cls, linear: torch.nn.Linear, gather_output: bool = True, group=None) -> "ColumnParallelLinear":
        start, size = _shard(linear.out_features, group, "out_features")
        weight = linear.weight.detach()[start:start + size].clone()                # (out/p, in)
        bias = linear.bias.detach()[start:start + size].clone() if linear.bias is not None else None
        return cls(weight, bias, gather_output, group)

    def forward(self, x: Tensor) -> Tensor:                                       # x (..., in)
        y = F.linear(_CopyToParallel.apply(x, self.group), self.weight, self.bias)  # (..., out/p)
        return _GatherFromParallel.apply(y, self.group) if self.gather_output else y


class RowParallelLinear(torch.nn.Module):
    """This rank's columns of a Linear's weight: ``weight`` (out, in/p); ``bias`` (out,) in full, or None."""

    def __init__(self, weight: Tensor, bias: Tensor | None, input_is_parallel: bool = False, group=None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(bias) if bias is not None else None
        self.input_is_parallel = input_is_parallel
        self.group = group

    @classmethod
    def from_full(cls, linear: torch.nn.Linear, input_is_parallel: bool = False, group=None) -> "RowParallelLinear":
        start, size = _shard(linear.in_features, group, "in_features")
        weight = linear.weight.detach()[:, start:start + size].clone()             # (out, in/p)
        bias = linear.bias.detach().clone() if linear.bias is not None else None  # (out,)
        return cls(weight, bias, input_is_parallel, group)

    def forward(self, x: Tensor) -> Tensor:                      # x (..., in/p) if parallel, else (..., in)
        if not self.input_is_parallel:
            x = _ScatterToParallel.apply(x, self.group)                          # (..., in/p)
        y = _ReduceFromParallel.apply(F.linear(x, self.weight), self.group)       # (..., out)
        return y + self.bias if self.bias is not None else y


class ParallelMLP(torch.nn.Module):
    """``fc2(gelu(fc1(x)))`` with ``fc1`` column-parallel and ``fc2`` row-parallel: one all-reduce each way."""

    def __init__(self, fc1: ColumnParallelLinear, fc2: RowParallelLinear) -> None:
        super().__init__()
        self.fc1 = fc1
        self.fc2 = fc2

    @classmethod
    def from_full(cls, fc1: torch.nn.Linear, fc2: torch.nn.Linear, group=None) -> "ParallelMLP":
        return cls(ColumnParallelLinear.from_full(fc1, gather_output=False, group=group),
                   RowParallelLinear.from_full(fc2, input_is_parallel=True, group=group))

    def forward(self, x: Tensor) -> Tensor:                       # (..., d) -> (..., hidden/p) -> (..., d)
        return self.fc2(F.gelu(self.fc1(x)))


# -- data and pipeline parallelism: the arithmetic ---------------------------------------------------------

def ring_allreduce_bytes(num_elements: int, world_size: int, bytes_per_element: int = 4) -> int:
    """Bytes each rank sends in a ring all-reduce: ``2 (p - 1)`` chunks of ``ceil(n / p)`` elements."""
    return 2 * (world_size - 1) * math.ceil(num_elements / world_size) * bytes_per_element


def pipeline_bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    """Idle fraction of a synchronous pipeline: ``(p - 1) / (m + p - 1)``."""
    return (num_stages - 1) / (num_microbatches + num_stages - 1)


def one_f_one_b_schedule(num_stages: int, num_microbatches: int) -> list[list[tuple[str, int]]]:
    """Per stage, its ops in order: warm-up forwards, then one forward / one backward, then the backwards."""
    schedule = []
    for stage in range(num_stages):
        warmup = min(num_stages - stage - 1, num_microbatches)
        ops = [("F", mb) for mb in range(warmup)]
        for i in range(num_microbatches - warmup):
            ops += [("F", warmup + i), ("B", i)]
        ops += [("B", mb) for mb in range(num_microbatches - warmup, num_microbatches)]
        schedule.append(ops)
    return schedule
