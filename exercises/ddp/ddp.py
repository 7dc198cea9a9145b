"""How does autograd work when training is distributed? Data parallelism by hand.

Read README.md first (``dlkata show ddp``). Replace each ``raise NotImplementedError`` with your code; check
with ``dlkata check ddp``. Your code runs on a real gloo process group (see docs/DISTRIBUTED.md): ``group=None``
means the default group. Forbidden: ``torch.nn.parallel.DistributedDataParallel``, ``torch.distributed.algorithms``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def broadcast_parameters(model: torch.nn.Module, src: int = 0, group=None) -> None:
    """Overwrite every parameter and buffer of ``model``, in place, with rank ``src``'s values.

    ``src`` is a global rank, as in ``dist.broadcast``. Called on every rank of ``group``.
    """
    raise NotImplementedError("broadcast_parameters")


class GradientSynchronizer:
    """Average the gradients of ``model`` over the ranks of ``group``, overlapping with backward.

    ``__init__`` registers a post-accumulate-grad hook on every parameter with ``requires_grad``. During a
    backward, gradients are packed into buckets in the order they become ready, greedily: a gradient that
    would push the open bucket past ``bucket_cap_numel`` elements first closes it; a bucket that reaches
    the cap closes at once; the last gradient of the backward closes the open bucket. Each bucket's
    all-reduce is launched with ``async_op=True`` the moment the bucket closes (from the hook).
    """

    def __init__(self, model: torch.nn.Module, group=None, bucket_cap_numel: int = 2**20) -> None:
        raise NotImplementedError("GradientSynchronizer.__init__")

    def wait(self) -> None:
        """After backward: wait for the launched all-reduces, write the mean over the ranks to each ``.grad``."""
        raise NotImplementedError("GradientSynchronizer.wait")

    def no_sync(self):
        """Context manager: backwards inside communicate nothing and accumulate ``.grad`` locally; the next
        synced backward all-reduces the accumulated sums."""
        raise NotImplementedError("GradientSynchronizer.no_sync")

    def remove(self) -> None:
        """Unregister the hooks: later backwards are purely local."""
        raise NotImplementedError("GradientSynchronizer.remove")
