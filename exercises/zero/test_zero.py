"""Public tests for ``zero``: quick checks to run while you work (``dlkata check zero``).

The ZeroAdam test starts a real 2-rank gloo world (``grader.distributed.run_world``, see
docs/DISTRIBUTED.md) and compares it with torch.optim.Adam on the averaged gradient in this process.
The hidden tests add other hyperparameters, float32, 3 and 4 ranks, padding, a rank that owns only
padding, process groups, and zero_grad; see README.md.
"""

import math

import pytest
import torch

from grader.distributed import run_world
from grader.testing import close, seeded_tensor

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit, imported by the guard

SHAPES = [(3, 2), (3,)]  # 9 elements: on 2 ranks, shards of 5 and one element of padding


def losses(params, rank):
    """A different loss on each rank (its "data")."""
    return sum(((rank + 1.0) * torch.sin(p) + 0.5 * p * p).sum() for p in params)


def rank_fn(rank, world_size, m, init, steps):
    params = [torch.nn.Parameter(w.clone()) for w in init]
    opt = m.ZeroAdam(params, lr=0.1)
    for _ in range(steps):
        losses(params, rank).backward()
        opt.step()
        opt.zero_grad()
    return {"params": [p.detach().clone() for p in params], "shard_numel": opt.shard_numel(),
            "exp_avg_shape": tuple(opt.exp_avg.shape)}


def train(m, init, steps):
    return run_world(rank_fn, 2, m, init, steps, timeout_s=20)


def memory(m, stage):
    return m.zero_memory_bytes(7_500_000_000, 64, stage)


def test_memory_of_each_stage(submission):
    for stage, gigabytes in enumerate((120.0, 31.4, 16.6, 1.9)):
        got = submission.run(memory, stage)
        assert math.isclose(got / 1e9, gigabytes, abs_tol=0.05), (
            f"7.5B parameters on 64 GPUs, stage {stage}: {got / 1e9:.2f} GB, the ZeRO paper says {gigabytes} GB")


def test_two_ranks_match_adam_on_the_mean_gradient(submission):
    init = [seeded_tensor(s, torch.float64, seed=i) for i, s in enumerate(SHAPES)]
    ranks = submission.run(train, init, 3)
    params = [w.clone().requires_grad_(True) for w in init]
    opt = torch.optim.Adam(params, lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((losses(params, 0) + losses(params, 1)) / 2).backward()
        opt.step()
    for rank, result in enumerate(ranks):
        for i, (got, want) in enumerate(zip(result["params"], params)):
            close(got, want.detach(), f"rank {rank}, parameter {i} after 3 steps (vs torch.optim.Adam)")


def test_state_is_one_shard(submission):
    init = [seeded_tensor(s, torch.float64, seed=i) for i, s in enumerate(SHAPES)]
    for rank, result in enumerate(submission.run(train, init, 1)):
        assert result["shard_numel"] == 5, f"rank {rank}: 9 elements on 2 ranks give shards of 5"
        assert result["exp_avg_shape"] == (5,), f"rank {rank}: exp_avg must be 1-D with 5 elements"
