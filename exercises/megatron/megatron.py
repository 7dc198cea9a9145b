"""Megatron's three kinds of parallelism and what each communicates.

Read README.md first (``dlkata show megatron``). Replace each ``raise NotImplementedError`` with your code;
check with ``dlkata check megatron``. The layers run on a real gloo process group (see docs/DISTRIBUTED.md):
``group=None`` means the default group; use ``dist.get_world_size(group)`` / ``dist.get_rank(group)``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


class ColumnParallelLinear(torch.nn.Module):
    """A Linear split by output features over the ``p`` ranks of ``group``.

    Rank ``r`` keeps ``weight`` = rows ``[r*out/p, (r+1)*out/p)`` of the full weight, shape (out/p, in), and
    ``bias`` = the same slice of the bias, shape (out/p,), or None for a Linear without bias.
    ``forward(x)`` takes the full input ``(..., in)`` (the same on every rank) and returns this rank's
    ``(..., out/p)`` slice of the output, or the full ``(..., out)`` on every rank if ``gather_output``.
    In backward, the gradient of ``x`` is the full input gradient on every rank (summed over the ranks).
    """

    @classmethod
    def from_full(cls, linear: torch.nn.Linear, gather_output: bool = True, group=None) -> "ColumnParallelLinear":
        """This rank's shard of ``linear`` (copied, not shared); ValueError if out_features % p != 0."""
        raise NotImplementedError("ColumnParallelLinear.from_full")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("ColumnParallelLinear.forward")


class RowParallelLinear(torch.nn.Module):
    """A Linear split by input features over the ``p`` ranks of ``group``.

    Rank ``r`` keeps ``weight`` = columns ``[r*in/p, (r+1)*in/p)`` of the full weight, shape (out, in/p), and
    the full ``bias`` (out,) or None. ``forward(x)`` takes this rank's slice ``(..., in/p)`` of the input if
    ``input_is_parallel``, else the full input ``(..., in)`` (and uses its own slice of it); it returns the
    full output ``(..., out)`` on every rank: the partial products summed over the ranks, plus the bias
    added once. The input's gradient has the input's shape.
    """

    @classmethod
    def from_full(cls, linear: torch.nn.Linear, input_is_parallel: bool = False, group=None) -> "RowParallelLinear":
        """This rank's shard of ``linear`` (copied, not shared); ValueError if in_features % p != 0."""
        raise NotImplementedError("RowParallelLinear.from_full")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("RowParallelLinear.forward")


class ParallelMLP(torch.nn.Module):
    """``fc2(gelu(fc1(x)))``: ``fc1`` a ColumnParallelLinear, ``fc2`` a RowParallelLinear (attributes).

    Input and output ``(..., d)``, full on every rank. Exactly one all-reduce in forward and one in backward,
    no other collective. ``gelu`` is ``torch.nn.functional.gelu`` (the exact, erf form).
    """

    @classmethod
    def from_full(cls, fc1: torch.nn.Linear, fc2: torch.nn.Linear, group=None) -> "ParallelMLP":
        raise NotImplementedError("ParallelMLP.from_full")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("ParallelMLP.forward")


def ring_allreduce_bytes(num_elements: int, world_size: int, bytes_per_element: int = 4) -> int:
    """Bytes each rank sends in a ring all-reduce: ``2 * (p - 1)`` chunks of ``ceil(n / p)`` elements."""
    raise NotImplementedError("ring_allreduce_bytes")


def pipeline_bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    """The idle fraction of a synchronous pipeline: ``(p - 1) / (m + p - 1)``."""
    raise NotImplementedError("pipeline_bubble_fraction")


def one_f_one_b_schedule(num_stages: int, num_microbatches: int) -> list[list[tuple[str, int]]]:
    """Per stage ``s`` (0 first), its ordered ops ``("F", mb)`` / ``("B", mb)``, micro-batches 0-based.

    Stage ``s`` runs ``min(p - s - 1, m)`` warm-up forwards, then alternates one forward and one backward
    (steady 1F1B), then runs the remaining backwards (cool-down); micro-batches in order.
    """
    raise NotImplementedError("one_f_one_b_schedule")
