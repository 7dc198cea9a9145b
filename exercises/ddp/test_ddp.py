"""Public tests for ``ddp``: quick checks on a real 2-rank gloo world. Run ``dlkata check ddp``.

Each probe starts a world with ``run_world`` (docs/DISTRIBUTED.md); every rank returns its gradients and the
collectives it launched, and the test compares them with single-process training here. The hidden tests go
further (the exact bucket sizes for many caps, when each all-reduce is launched, no_sync, remove,
training steps, process subgroups, 4 ranks).
"""

import torch
import torch.nn.functional as F

from grader.distributed import CollectiveLog, run_world
from grader.testing import close, seeded_tensor


def model_from(state):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    model.load_state_dict(state)
    return model


def initial_state(seed):
    shapes = {"0.weight": (4, 3), "0.bias": (4,), "2.weight": (2, 4), "2.bias": (2,)}
    return {k: seeded_tensor(s, torch.float64, seed + i) for i, (k, s) in enumerate(shapes.items())}


def train_rank(rank, world_size, m, state, x, y, cap, use_no_sync):
    model = model_from(state)
    sync = m.GradientSynchronizer(model, bucket_cap_numel=cap)
    half = x.shape[0] // world_size
    xs, ys = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
    with CollectiveLog() as log:
        if use_no_sync:
            with sync.no_sync():
                F.mse_loss(model(xs), ys).backward()
        else:
            F.mse_loss(model(xs), ys).backward()
            sync.wait()
    return [p.grad.clone() for p in model.parameters()], log.count("all_reduce")


def broadcast_rank(rank, world_size, m, states):
    model = model_from(states[rank])
    m.broadcast_parameters(model)
    return [p.detach().clone() for p in model.parameters()]


def train_probe(m, *args):
    return run_world(train_rank, 2, m, *args, timeout_s=10)


def broadcast_probe(m, states):
    return run_world(broadcast_rank, 2, m, states, timeout_s=10)


def full_batch_grads(state, x, y):
    model = model_from(state)
    F.mse_loss(model(x), y).backward()
    return [p.grad for p in model.parameters()]


def test_gradients_equal_the_full_batch_gradient(submission):
    state, x, y = initial_state(1), seeded_tensor((6, 3), seed=10), seeded_tensor((6, 2), seed=11)
    expected = full_batch_grads(state, x, y)
    for rank, (grads, _count) in enumerate(submission.run(train_probe, state, x, y, 2**20, False)):
        for i, (g, e) in enumerate(zip(grads, expected)):
            close(g, e, f"rank {rank}'s gradient of parameter {i} (the mean over ranks = the full batch's gradient)")


def test_one_bucket_per_parameter_with_a_cap_of_one(submission):
    state, x, y = initial_state(2), seeded_tensor((4, 3), seed=12), seeded_tensor((4, 2), seed=13)
    for rank, (_grads, count) in enumerate(submission.run(train_probe, state, x, y, 1, False)):
        assert count == 4, f"bucket_cap_numel=1 puts each of the 4 parameters in its own bucket; rank {rank}: {count}"
    for rank, (_grads, count) in enumerate(submission.run(train_probe, state, x, y, 2**20, False)):
        assert count == 1, f"the default cap holds this whole model in one bucket: one all-reduce; rank {rank}: {count}"


def test_no_sync_does_not_communicate(submission):
    state, x, y = initial_state(3), seeded_tensor((4, 3), seed=14), seeded_tensor((4, 2), seed=15)
    for rank, (grads, count) in enumerate(submission.run(train_probe, state, x, y, 2**20, True)):
        assert count == 0, f"a backward inside no_sync() must launch no all-reduce; rank {rank} launched {count}"
        local = full_batch_grads(state, x[2 * rank:2 * rank + 2], y[2 * rank:2 * rank + 2])
        close(grads[0], local[0], f"rank {rank}'s own (local) gradient after a backward in no_sync()")


def test_broadcast_parameters_from_rank_0(submission):
    states = [initial_state(4), initial_state(40)]
    for rank, params in enumerate(submission.run(broadcast_probe, states)):
        for i, (p, name) in enumerate(zip(params, states[0])):
            close(p, states[0][name], f"rank {rank}'s parameter {name} after broadcast_parameters(model)")
