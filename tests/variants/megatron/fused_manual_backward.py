"""Fused layer Functions with hand-written backward: one autograd.Function per layer computes the matmul,
its collective and every gradient (dX, dW, db) by explicit formulas, instead of composing Megatron's f/g
operators around F.linear.

Column-parallel: forward X W_r^T + b_r (optionally all-gathered into one flat buffer with
all_gather_into_tensor, then rearranged); backward dW_r = dY_r^T X, db_r = sum dY_r, dX = all-reduce of
dY_r W_r. Row-parallel: forward all-reduce of X^r W_r^T, then + b; backward dW_r = dY^T X^r, db = sum dY,
dX^r = dY W_r (all-gathered into the full input gradient when the layer sliced the input itself). The
1F1B schedule is produced greedily: forward while fewer than p - s activations are held, else backward.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _gather_last(t: Tensor, group) -> Tensor:
    """Concatenate every rank's ``t`` along the last dimension (rank order)."""
    p = dist.get_world_size(group)
    t = t.contiguous()
    flat = torch.empty(p * t.numel(), dtype=t.dtype)
    dist.all_gather_into_tensor(flat, t.reshape(-1), group=group)
    return torch.cat(list(flat.view((p,) + tuple(t.shape)).unbind(0)), dim=-1)


def _as_matrix(t: Tensor) -> Tensor:
    return t.reshape(-1, t.shape[-1])


class _ColumnFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, group, gather):
        ctx.save_for_backward(x, weight)
        ctx.group, ctx.gather, ctx.has_bias = group, gather, bias is not None
        y = torch.matmul(x, weight.t())
        if bias is not None:
            y = y + bias
        return _gather_last(y, group) if gather else y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        group = ctx.group
        if ctx.gather:
            k = weight.shape[0]
            r = dist.get_rank(group)
            gy = gy[..., r * k:(r + 1) * k]
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.matmul(gy, weight).contiguous()
            dist.all_reduce(gx, group=group)
        if ctx.needs_input_grad[1]:
            gw = _as_matrix(gy).t().matmul(_as_matrix(x))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = _as_matrix(gy).sum(dim=0)
        return gx, gw, gb, None, None


class _RowFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, group, input_is_parallel):
        k = weight.shape[1]
        r = dist.get_rank(group)
        xr = x if input_is_parallel else x[..., r * k:(r + 1) * k]
        ctx.save_for_backward(xr, weight)
        ctx.group, ctx.sliced, ctx.has_bias = group, not input_is_parallel, bias is not None
        y = torch.matmul(xr, weight.t()).contiguous()
        dist.all_reduce(y, group=group)
        if bias is not None:
            y = y + bias
        return y

    @staticmethod
    def backward(ctx, gy):
        xr, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.matmul(gy, weight)
            if ctx.sliced:
                gx = _gather_last(gx, ctx.group)
        if ctx.needs_input_grad[1]:
            gw = _as_matrix(gy).t().matmul(_as_matrix(xr))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = _as_matrix(gy).sum(dim=0)
        return gx, gw, gb, None, None


def _shard(t: Tensor | None, dim: int, group) -> torch.nn.Parameter | None:
    if t is None:
        return None
    p, r = dist.get_world_size(group), dist.get_rank(group)
    n = t.shape[dim] // p
    return torch.nn.Parameter(t.detach().narrow(dim, r * n, n).clone())


class ColumnParallelLinear(torch.nn.Module):
    def __init__(self, weight, bias, gather_output, group):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.gather_output, self.group = gather_output, group

    @classmethod
    def from_full(cls, linear: torch.nn.Linear, gather_output: bool = True, group=None) -> "ColumnParallelLinear":
        p = dist.get_world_size(group)
        if linear.out_features % p:
            raise ValueError(f"out_features={linear.out_features} is not divisible by {p} ranks")
        return cls(_shard(linear.weight, 0, group), _shard(linear.bias, 0, group), gather_output, group)

    def forward(self, x: Tensor) -> Tensor:
        return _ColumnFn.apply(x, self.weight, self.bias, self.group, self.gather_output)


class RowParallelLinear(torch.nn.Module):
    def __init__(self, weight, bias, input_is_parallel, group):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.input_is_parallel, self.group = input_is_parallel, group

    @classmethod
    def from_full(cls, linear: torch.nn.Linear, input_is_parallel: bool = False, group=None) -> "RowParallelLinear":
        p = dist.get_world_size(group)
        if linear.in_features % p:
            raise ValueError(f"in_features={linear.in_features} is not divisible by {p} ranks")
        bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().clone())
        return cls(_shard(linear.weight, 1, group), bias, input_is_parallel, group)

    def forward(self, x: Tensor) -> Tensor:
        return _RowFn.apply(x, self.weight, self.bias, self.group, self.input_is_parallel)


class ParallelMLP(torch.nn.Module):
    def __init__(self, fc1, fc2):
        super().__init__()
        self.fc1, self.fc2 = fc1, fc2

    @classmethod
    def from_full(cls, fc1: torch.nn.Linear, fc2: torch.nn.Linear, group=None) -> "ParallelMLP":
        return cls(ColumnParallelLinear.from_full(fc1, gather_output=False, group=group),
                   RowParallelLinear.from_full(fc2, input_is_parallel=True, group=group))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def ring_allreduce_bytes(num_elements: int, world_size: int, bytes_per_element: int = 4) -> int:
    chunk = (num_elements + world_size - 1) // world_size
    steps = 2 * (world_size - 1)
    return int(steps * chunk * bytes_per_element)


def pipeline_bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    idle = num_stages - 1
    return float(idle) / float(num_microbatches + idle)


def one_f_one_b_schedule(num_stages: int, num_microbatches: int) -> list[list[tuple[str, int]]]:
    schedule = []
    for s in range(num_stages):
        cap = num_stages - s                  # activations this stage may hold at once
        ops, fwd, bwd = [], 0, 0
        while bwd < num_microbatches:
            if fwd < num_microbatches and fwd - bwd < cap:
                ops.append(("F", fwd))
                fwd += 1
            else:
                ops.append(("B", bwd))
                bwd += 1
        schedule.append(ops)
    return schedule
