"""Public tests for ``megatron``: quick checks on a real 2-rank gloo world. Run ``dlkata check megatron``.

Each probe starts a world with ``run_world`` (docs/DISTRIBUTED.md); every rank returns what it computed and
the test compares it with a serial ``nn.Linear`` here. The hidden tests go further (every gradient, 4 ranks,
process subgroups, the MLP's collectives, the schedule simulated for many p and m).
"""

import torch
import torch.nn.functional as F

from grader.distributed import run_world
from grader.testing import close, seeded_tensor


def linear(weight, bias):
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def column_rank(rank, world_size, m, weight, bias, x):
    layer = m.ColumnParallelLinear.from_full(linear(weight, bias), gather_output=True)
    xr = x.clone().requires_grad_(True)
    y = layer(xr)
    y.sum().backward()
    return y.detach(), xr.grad


def row_rank(rank, world_size, m, weight, bias, x):
    return m.RowParallelLinear.from_full(linear(weight, bias), input_is_parallel=False)(x).detach()


def column_probe(m, weight, bias, x):
    return run_world(column_rank, 2, m, weight, bias, x, timeout_s=10)


def row_probe(m, weight, bias, x):
    return run_world(row_rank, 2, m, weight, bias, x, timeout_s=10)


def call(m, name, *args):
    return getattr(m, name)(*args)


def test_column_parallel_output_and_input_gradient(submission):
    weight, bias, x = seeded_tensor((6, 4), seed=1), seeded_tensor((6,), seed=2), seeded_tensor((3, 4), seed=3)
    xr = x.clone().requires_grad_(True)
    expected = F.linear(xr, weight, bias)
    expected.sum().backward()
    for rank, (y, x_grad) in enumerate(submission.run(column_probe, weight, bias, x)):
        close(y, expected.detach(), f"rank {rank}'s gathered ColumnParallelLinear output")
        close(x_grad, xr.grad, f"rank {rank}'s input gradient (all-reduced over the ranks)")


def test_row_parallel_adds_the_bias_once(submission):
    weight, bias, x = seeded_tensor((3, 8), seed=4), seeded_tensor((3,), seed=5), seeded_tensor((2, 8), seed=6)
    for rank, y in enumerate(submission.run(row_probe, weight, bias, x)):
        close(y, F.linear(x, weight, bias), f"rank {rank}'s RowParallelLinear output")


def test_ring_allreduce_bytes(submission):
    assert submission.run(call, "ring_allreduce_bytes", 10, 4, 2) == 2 * 3 * 3 * 2, "10 elements on 4 ranks, fp16"
    assert submission.run(call, "ring_allreduce_bytes", 1000, 1) == 0, "one rank sends nothing"


def test_pipeline_bubble_fraction(submission):
    assert abs(submission.run(call, "pipeline_bubble_fraction", 4, 4) - 3 / 7) < 1e-12


def test_one_f_one_b_schedule_three_stages(submission):
    F_, B_ = "F", "B"
    expected = [[(F_, 0), (F_, 1), (F_, 2), (B_, 0), (F_, 3), (B_, 1), (B_, 2), (B_, 3)],
                [(F_, 0), (F_, 1), (B_, 0), (F_, 2), (B_, 1), (F_, 3), (B_, 2), (B_, 3)],
                [(F_, 0), (B_, 0), (F_, 1), (B_, 1), (F_, 2), (B_, 2), (F_, 3), (B_, 3)]]
    got = submission.run(call, "one_f_one_b_schedule", 3, 4)
    assert [[tuple(op) for op in stage] for stage in got] == expected, f"1F1B for 3 stages, 4 micro-batches: {got}"
