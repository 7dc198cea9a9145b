"""Megatron operators as small autograd Functions, with every gather written as an all-reduce of a
zero-padded buffer, and explicit index arithmetic for the 1F1B phases.

f (identity forward, all-reduce backward), g (all-reduce forward, identity backward), a gather (each rank
writes its slice into a zero tensor of the full size, then all-reduce sums them: exact, since the other
entries are zeros) and a split (slice forward, padded all-reduce backward). The layers call
torch.addmm/matmul on flattened inputs instead of F.linear and restore the leading dimensions after. The
pipeline functions use math.ceil-free integer arithmetic and build each stage's warm-up, steady and
cool-down phases explicitly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _padded_gather(t: Tensor, group) -> Tensor:
    p, r = dist.get_world_size(group), dist.get_rank(group)
    k = t.shape[-1]
    full = t.new_zeros(tuple(t.shape[:-1]) + (p * k,))
    full[..., r * k:(r + 1) * k] = t
    dist.all_reduce(full, group=group)
    return full


def _own_slice(t: Tensor, group) -> Tensor:
    p, r = dist.get_world_size(group), dist.get_rank(group)
    k = t.shape[-1] // p
    return t[..., r * k:(r + 1) * k].contiguous()


class _CopyToRegion(torch.autograd.Function):       # f
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        dist.all_reduce(g, group=ctx.group)
        return g, None


class _ReduceFromRegion(torch.autograd.Function):   # g
    @staticmethod
    def forward(ctx, x, group):
        y = x.contiguous().clone()
        dist.all_reduce(y, group=group)
        return y

    @staticmethod
    def backward(ctx, g):
        return g, None


class _GatherFromRegion(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return _padded_gather(x, group)

    @staticmethod
    def backward(ctx, g):
        return _own_slice(g, ctx.group), None


class _ScatterToRegion(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return _own_slice(x, group)

    @staticmethod
    def backward(ctx, g):
        return _padded_gather(g.contiguous(), ctx.group), None


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    y2 = torch.addmm(bias, x2, weight.t()) if bias is not None else x2.matmul(weight.t())
    return y2.reshape(*lead, weight.shape[0])


class ColumnParallelLinear(torch.nn.Module):
    @classmethod
    def from_full(cls, linear: torch.nn.Linear, gather_output: bool = True, group=None) -> "ColumnParallelLinear":
        p, r = dist.get_world_size(group), dist.get_rank(group)
        out = linear.weight.shape[0]
        if out % p != 0:
            raise ValueError("out_features must be divisible by the group size")
        rows = torch.arange(r * (out // p), (r + 1) * (out // p))
        self = cls()
        with torch.no_grad():
            self.weight = torch.nn.Parameter(linear.weight.index_select(0, rows))
            self.bias = (None if linear.bias is None
                         else torch.nn.Parameter(linear.bias.index_select(0, rows)))
        self.gather_output, self.group = gather_output, group
        return self

    def forward(self, x: Tensor) -> Tensor:
        y = _linear(_CopyToRegion.apply(x, self.group), self.weight, self.bias)
        return _GatherFromRegion.apply(y, self.group) if self.gather_output else y


class RowParallelLinear(torch.nn.Module):
    @classmethod
    def from_full(cls, linear: torch.nn.Linear, input_is_parallel: bool = False, group=None) -> "RowParallelLinear":
        p, r = dist.get_world_size(group), dist.get_rank(group)
        n_in = linear.weight.shape[1]
        if n_in % p != 0:
            raise ValueError("in_features must be divisible by the group size")
        cols = torch.arange(r * (n_in // p), (r + 1) * (n_in // p))
        self = cls()
        with torch.no_grad():
            self.weight = torch.nn.Parameter(linear.weight.index_select(1, cols))
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.clone())
        self.input_is_parallel, self.group = input_is_parallel, group
        return self

    def forward(self, x: Tensor) -> Tensor:
        if not self.input_is_parallel:
            x = _ScatterToRegion.apply(x, self.group)
        y = _ReduceFromRegion.apply(_linear(x, self.weight, None), self.group)
        return y if self.bias is None else y + self.bias


class ParallelMLP(torch.nn.Module):
    @classmethod
    def from_full(cls, fc1: torch.nn.Linear, fc2: torch.nn.Linear, group=None) -> "ParallelMLP":
        self = cls()
        self.fc1 = ColumnParallelLinear.from_full(fc1, gather_output=False, group=group)
        self.fc2 = RowParallelLinear.from_full(fc2, input_is_parallel=True, group=group)
        return self

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        return self.fc2(F.gelu(h, approximate="none"))


def ring_allreduce_bytes(num_elements: int, world_size: int, bytes_per_element: int = 4) -> int:
    if world_size == 1:
        return 0
    chunk = -(-num_elements // world_size)
    return 2 * (world_size - 1) * chunk * bytes_per_element


def pipeline_bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    return 1.0 - num_microbatches / (num_microbatches + num_stages - 1)


def one_f_one_b_schedule(num_stages: int, num_microbatches: int) -> list[list[tuple[str, int]]]:
    p, m = num_stages, num_microbatches
    out = []
    for s in range(p):
        warm = min(p - s - 1, m)
        ops = [("F", i) for i in range(warm)]
        for i in range(m - warm):
            ops += [("F", warm + i), ("B", i)]
        ops += [("B", i) for i in range(m - warm, m)]
        out.append(ops)
    return out
