"""ZeRO: the memory each stage saves, and ZeRO stage 1 (sharded Adam state) on a real process group.

Read README.md first (``dlkata show zero``). Replace each ``raise NotImplementedError`` with your code;
check with ``dlkata check zero``. ZeroAdam runs on real ``torch.distributed`` gloo ranks: see
docs/DISTRIBUTED.md for ``grader.distributed.run_world``, which you can use to try it yourself.
Forbidden: ``torch.optim.Adam``/``AdamW`` (and their functional forms), ``torch.distributed.optim``,
``torch.distributed.fsdp``.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor


def zero_memory_bytes(num_params: int, world_size: int, stage: int, param_bytes: int = 2,
                      grad_bytes: int = 2, optimizer_bytes: int = 12) -> float:
    """Per-rank bytes of model states (weights, gradients, optimizer state) of mixed-precision Adam with
    ``num_params`` parameters on ``world_size`` data-parallel ranks under ZeRO ``stage`` 0-3 (the ZeRO
    paper's formulas). ValueError for a stage outside 0-3 or world_size < 1.
    """
    raise NotImplementedError("zero_memory_bytes")


class ZeroAdam:
    """torch.optim.Adam whose state is sharded over the ranks of ``group`` (None: the default group).

    All parameters are flattened, in the order given, into one vector of P elements, padded with zeros
    to a multiple of the world size N. Shards have S = ceil(P / N) elements; rank r owns elements
    [r * S, (r + 1) * S) and keeps Adam state only for them, in the attributes ``exp_avg`` and
    ``exp_avg_sq``: 1-D tensors of S elements, the parameters' dtype. Every rank builds ZeroAdam with the
    same parameters; every parameter receives a gradient each step.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, group=None) -> None:
        raise NotImplementedError("ZeroAdam.__init__")

    def shard_numel(self) -> int:
        """S, the number of elements of the flat, padded parameter vector this rank owns."""
        raise NotImplementedError("ZeroAdam.shard_numel")

    def step(self) -> None:
        """Average the gradients over the ranks, keep this rank's shard, Adam-update the shard (exactly as
        torch.optim.Adam would, weight decay included), all-gather the shards into every rank's parameters."""
        raise NotImplementedError("ZeroAdam.step")

    def zero_grad(self) -> None:
        """Clear every parameter's gradient (set it to None, or to zero)."""
        raise NotImplementedError("ZeroAdam.zero_grad")
