"""Hidden tests for ``megatron``. Each world test runs one gloo world in the sandbox; the ranks return raw
outputs, gradients and the collectives they launched; every verdict is here, against serial torch layers."""

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.distributed import CollectiveLog, run_world
from grader.testing import close, points, seeded_tensor

WORLD_TIMEOUT_S = 10
D64 = torch.float64


# -- inside the ranks (submission code runs here) --------------------------------------------------------------

def _linear(weight, bias):
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def _grad(param):
    if param is None:
        return "no parameter"
    return None if param.grad is None else param.grad.clone()


def _kinds(log):
    return sorted(call["kind"] for call in log.calls)


def _forward_backward(layer, x, upstream_fn):
    """Forward and backward of (layer(x) * upstream).sum(); the upstream gradient is replicated on every rank."""
    x = x.clone().requires_grad_(True)
    with CollectiveLog() as fwd:
        y = layer(x)
    out = {"y": y.detach().clone(), "fwd": _kinds(fwd), "bwd": None, "x_grad": None}
    upstream = upstream_fn(y)
    if isinstance(y, torch.Tensor) and upstream is not None and y.shape == upstream.shape:
        with CollectiveLog() as bwd:
            (y * upstream).sum().backward()
        out.update(bwd=_kinds(bwd), x_grad=None if x.grad is None else x.grad.clone())
    return out


def _slice(t, rank, parts):
    size = t.shape[-1] // parts
    return t[..., rank * size:(rank + 1) * size]


def column_rank(rank, world_size, m, weight, bias, x, gy, gather_output):
    layer = m.ColumnParallelLinear.from_full(_linear(weight, bias), gather_output=gather_output)
    upstream = gy if gather_output else _slice(gy, rank, world_size)
    out = _forward_backward(layer, x, lambda y: upstream)
    out.update(weight=layer.weight.detach().clone(), w_grad=_grad(layer.weight), b_grad=_grad(layer.bias),
               bias_is_none=layer.bias is None)
    return out


def row_rank(rank, world_size, m, weight, bias, x, gy, input_is_parallel):
    layer = m.RowParallelLinear.from_full(_linear(weight, bias), input_is_parallel=input_is_parallel)
    x_in = _slice(x, rank, world_size) if input_is_parallel else x
    out = _forward_backward(layer, x_in, lambda y: gy)
    out.update(weight=layer.weight.detach().clone(), w_grad=_grad(layer.weight), b_grad=_grad(layer.bias),
               bias_is_none=layer.bias is None)
    return out


def mlp_rank(rank, world_size, m, w1, b1, w2, b2, x, gy):
    mlp = m.ParallelMLP.from_full(_linear(w1, b1), _linear(w2, b2))
    out = _forward_backward(mlp, x, lambda y: gy)
    out.update({name: _grad(getattr(getattr(mlp, layer, None), attr, None))
                for name, layer, attr in (("w1_grad", "fc1", "weight"), ("b1_grad", "fc1", "bias"),
                                          ("w2_grad", "fc2", "weight"), ("b2_grad", "fc2", "bias"))})
    return out


def all_layers_rank(rank, world_size, m, cases):
    """Several layers in one world (world size 4, float32 and a layer without bias)."""
    results = {}
    for name, (kind, weight, bias, x, gy, flag) in cases.items():
        rank_fn = column_rank if kind == "column" else row_rank
        results[name] = rank_fn(rank, world_size, m, weight, bias, x, gy, flag)
    return results


def grouped_rank(rank, world_size, m, weight, bias, xs, gy):
    """World of 4 as two tensor-parallel groups {0, 1} and {2, 3}, each on its own input."""
    groups = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    group, x, local = groups[rank // 2], xs[rank // 2], rank % 2
    col = m.ColumnParallelLinear.from_full(_linear(weight, bias), gather_output=True, group=group)
    row = m.RowParallelLinear.from_full(_linear(weight.T.contiguous(), bias[:weight.shape[1]]),
                                        input_is_parallel=False, group=group)
    return {"column": _forward_backward(col, x, lambda y: gy),
            "row": _forward_backward(row, x @ weight.T, lambda y: x),
            "local": local}


def bad_split_rank(rank, world_size, m, in_f, out_f):
    outcomes = {}
    for kind in ("ColumnParallelLinear", "RowParallelLinear"):
        try:
            getattr(m, kind).from_full(torch.nn.Linear(in_f, out_f))
            outcomes[kind] = "returned"
        except ValueError as exc:
            outcomes[kind] = f"ValueError: {exc}"
    return outcomes


def in_world(m, rank_fn, world_size, *args):
    """Probe: run the rank function named ``rank_fn`` (a name: functions do not cross to the sandbox)."""
    return run_world(globals()[rank_fn], world_size, m, *args, timeout_s=WORLD_TIMEOUT_S)


def call(m, name, *args):
    return getattr(m, name)(*args)


# -- serial references (the test process's own torch) ------------------------------------------------------

def serial(weight, bias, x, gy):
    """Forward and gradients of (x @ W^T + b) * gy summed, in float64 on one process."""
    w = weight.clone().requires_grad_(True)
    b = bias.clone().requires_grad_(True) if bias is not None else None
    xr = x.clone().requires_grad_(True)
    y = F.linear(xr, w, b)
    (y * gy).sum().backward()
    return {"y": y.detach(), "x_grad": xr.grad, "w_grad": w.grad, "b_grad": None if b is None else b.grad}


def case(in_f, out_f, seed, dtype=D64, bias=True, batch=(3, 2)):
    weight = seeded_tensor((out_f, in_f), dtype, seed)
    b = seeded_tensor((out_f,), dtype, seed + 1) if bias else None
    x = seeded_tensor((*batch, in_f), dtype, seed + 2)
    gy = seeded_tensor((*batch, out_f), dtype, seed + 3)
    return weight, b, x, gy


def cat_ranks(results, key, dim):
    grads = [r[key] for r in results]
    for rank, g in enumerate(grads):
        assert isinstance(g, torch.Tensor), f"rank {rank}: {key.replace('_', ' ')} is {g!r} after backward"
    return torch.cat(grads, dim)


def check_column(results, ref, world_size, gather_output, what, **tol):
    for rank, r in enumerate(results):
        expected_y = ref["y"] if gather_output else torch.chunk(ref["y"], world_size, -1)[rank]
        close(r["y"], expected_y, f"{what}: rank {rank}'s output", **tol)
        assert r["x_grad"] is not None, f"{what}: rank {rank}'s input has no gradient after backward"
        close(r["x_grad"], ref["x_grad"], f"{what}: rank {rank}'s input gradient (the sum over all ranks' "
              "partial input gradients: the column-parallel layer must all-reduce it in backward)", **tol)
    close(cat_ranks(results, "w_grad", 0), ref["w_grad"], f"{what}: the weight gradient, ranks' rows stacked", **tol)
    if ref["b_grad"] is not None:
        close(cat_ranks(results, "b_grad", 0), ref["b_grad"], f"{what}: the bias gradient, ranks' slices joined",
              **tol)


def check_row(results, ref, bias, world_size, input_is_parallel, what, **tol):
    for rank, r in enumerate(results):
        if bias is not None and isinstance(r["y"], torch.Tensor) and r["y"].shape == ref["y"].shape:
            assert not torch.allclose(r["y"] - ref["y"], (world_size - 1) * bias.expand_as(r["y"]), atol=1e-6), (
                f"{what}: rank {rank}'s output counts the bias {world_size} times: add it once, after the all-reduce")
        close(r["y"], ref["y"], f"{what}: rank {rank}'s output (the all-reduced sum of partial products, plus the "
              "bias once)", **tol)
        expected_gx = torch.chunk(ref["x_grad"], world_size, -1)[rank] if input_is_parallel else ref["x_grad"]
        assert r["x_grad"] is not None, f"{what}: rank {rank}'s input has no gradient after backward"
        close(r["x_grad"], expected_gx, f"{what}: rank {rank}'s input gradient", **tol)
        if bias is not None:
            assert isinstance(r["b_grad"], torch.Tensor), f"{what}: rank {rank}'s bias has no gradient"
            close(r["b_grad"], ref["b_grad"], f"{what}: rank {rank}'s bias gradient (every rank holds the full bias)",
                  **tol)
    close(cat_ranks(results, "w_grad", 1), ref["w_grad"], f"{what}: the weight gradient, ranks' columns joined",
          **tol)


# -- tensor-parallel layers -----------------------------------------------------------------------------------

@points(2)
def test_column_parallel_forward_and_weight_shards(submission):
    weight, bias, x, gy = case(6, 8, seed=1)
    for gather in (True, False):
        results = submission.run(in_world, "column_rank", 2, weight, bias, x, gy, gather)
        ref = serial(weight, bias, x, gy)
        for rank, r in enumerate(results):
            close(r["weight"], weight[4 * rank:4 * rank + 4], f"rank {rank}'s weight (rows {4 * rank}..{4 * rank + 3} "
                  "of the full weight: this rank's slice of the output features)")
            expected = ref["y"] if gather else ref["y"][..., 4 * rank:4 * rank + 4]
            close(r["y"], expected, f"ColumnParallelLinear(gather_output={gather}): rank {rank}'s output")


@points(3)
def test_column_parallel_gradients_and_all_reduced_input_gradient(submission):
    weight, bias, x, gy = case(6, 8, seed=2)
    ref = serial(weight, bias, x, gy)
    for gather in (False, True):
        results = submission.run(in_world, "column_rank", 2, weight, bias, x, gy, gather)
        check_column(results, ref, 2, gather, f"ColumnParallelLinear(gather_output={gather}) on 2 ranks")


@points(3)
def test_row_parallel_matches_serial_and_adds_the_bias_once(submission):
    weight, bias, x, gy = case(8, 5, seed=3)
    ref = serial(weight, bias, x, gy)
    for parallel in (False, True):
        results = submission.run(in_world, "row_rank", 2, weight, bias, x, gy, parallel)
        for rank, r in enumerate(results):
            close(r["weight"], weight[:, 4 * rank:4 * rank + 4], f"rank {rank}'s weight (columns {4 * rank}.."
                  f"{4 * rank + 3} of the full weight: this rank's slice of the input features)")
        check_row(results, ref, bias, 2, parallel, f"RowParallelLinear(input_is_parallel={parallel}) on 2 ranks")


@points(2)
def test_parallel_mlp_matches_serial(submission):
    d, h = 4, 8
    w1, b1, x, _ = case(d, h, seed=4)
    w2, b2, _, gy = case(h, d, seed=5)
    results = submission.run(in_world, "mlp_rank", 2, w1, b1, w2, b2, x, gy)
    w1r, b1r, w2r, b2r, xr = (t.clone().requires_grad_(True) for t in (w1, b1, w2, b2, x))
    y = F.linear(F.gelu(F.linear(xr, w1r, b1r)), w2r, b2r)
    (y * gy).sum().backward()
    for rank, r in enumerate(results):
        close(r["y"], y.detach(), f"ParallelMLP: rank {rank}'s output")
        assert r["x_grad"] is not None, f"ParallelMLP: rank {rank}'s input has no gradient after backward"
        close(r["x_grad"], xr.grad, f"ParallelMLP: rank {rank}'s input gradient")
        close(r["b2_grad"], b2r.grad, f"ParallelMLP: rank {rank}'s fc2.bias gradient")
    close(cat_ranks(results, "w1_grad", 0), w1r.grad, "ParallelMLP: fc1.weight's gradient, ranks' rows stacked")
    close(cat_ranks(results, "b1_grad", 0), b1r.grad, "ParallelMLP: fc1.bias's gradient, ranks' slices joined")
    close(cat_ranks(results, "w2_grad", 1), w2r.grad, "ParallelMLP: fc2.weight's gradient, ranks' columns joined")


@points(3)
def test_parallel_mlp_communicates_one_all_reduce_each_way(submission):
    w1, b1, x, _ = case(4, 8, seed=6)
    w2, b2, _, gy = case(8, 4, seed=7)
    results = submission.run(in_world, "mlp_rank", 2, w1, b1, w2, b2, x, gy)
    for rank, r in enumerate(results):
        assert r["fwd"] == ["all_reduce"], (
            f"ParallelMLP's forward must launch exactly one collective, one all-reduce (after fc2); rank {rank} "
            f"launched {r['fwd'] or 'none'} (fc1 must not gather its output: gelu works on the slice)")
        assert r["bwd"] == ["all_reduce"], (
            f"ParallelMLP's backward must launch exactly one collective, the all-reduce of fc1's input gradient; "
            f"rank {rank} launched {r['bwd'] or 'none'}")


@points(2)
def test_four_ranks_float32_and_no_bias(submission):
    cases = {"column": ("column", *case(5, 8, seed=8, dtype=torch.float32), True),
             "column_no_bias": ("column", *case(3, 4, seed=9, bias=False), False),
             "row": ("row", *case(8, 3, seed=10, dtype=torch.float32), False),
             "row_no_bias": ("row", *case(4, 2, seed=11, bias=False), True)}
    results = submission.run(in_world, "all_layers_rank", 4, cases)
    tol = {"rtol": 1e-5, "atol": 1e-5}
    for name, (kind, weight, bias, x, gy, flag) in cases.items():
        per_rank = [r[name] for r in results]
        ref = serial(weight.double(), None if bias is None else bias.double(), x.double(), gy.double())
        ref = {k: None if v is None else v.to(weight.dtype) for k, v in ref.items()}
        if bias is None:
            assert all(r["bias_is_none"] for r in per_rank), f"{name}: from_full of a Linear without bias must " \
                "give a layer whose bias is None"
        if kind == "column":
            check_column(per_rank, ref, 4, flag, f"ColumnParallelLinear on 4 ranks ({name})", **tol)
        else:
            check_row(per_rank, ref, bias, 4, flag, f"RowParallelLinear on 4 ranks ({name})", **tol)


@points(2)
def test_layers_communicate_only_within_their_group(submission):
    weight, bias, _, gy = case(4, 6, seed=12, batch=(3,))
    xs = [seeded_tensor((3, 4), D64, 13), seeded_tensor((3, 4), D64, 14) * 10]
    results = submission.run(in_world, "grouped_rank", 4, weight, bias, xs, gy)
    for rank, r in enumerate(results):
        x = xs[rank // 2]
        col = serial(weight, bias, x, gy)
        what = f"in a world of 4 split into tensor-parallel groups {{0, 1}} and {{2, 3}}, rank {rank}'s"
        close(r["column"]["y"], col["y"], f"{what} ColumnParallelLinear output (use the group you are given, "
              "not the whole world)")
        close(r["column"]["x_grad"], col["x_grad"], f"{what} ColumnParallelLinear input gradient")
        row = serial(weight.T.contiguous(), bias[:4], x @ weight.T, x)
        close(r["row"]["y"], row["y"], f"{what} RowParallelLinear output (all-reduce over the group only)")
        close(r["row"]["x_grad"], row["x_grad"], f"{what} RowParallelLinear input gradient")


def test_split_dimension_not_divisible_raises_value_error(submission):
    outcomes = submission.run(in_world, "bad_split_rank", 4, 6, 6)
    for rank, got in enumerate(outcomes):
        for kind, dim in (("ColumnParallelLinear", "out_features"), ("RowParallelLinear", "in_features")):
            assert got[kind].startswith("ValueError"), (
                f"{kind}.from_full of Linear(6, 6) on 4 ranks must raise ValueError ({dim}=6 is not divisible "
                f"by 4); rank {rank}: it {got[kind]}")
    outcomes = submission.run(in_world, "bad_split_rank", 2, 4, 6)
    assert all(o == {"ColumnParallelLinear": "returned", "RowParallelLinear": "returned"} for o in outcomes), (
        f"Linear(4, 6) on 2 ranks splits evenly and must not raise: {outcomes}")


# -- data parallel and pipeline arithmetic -------------------------------------------------------------------

@points(2)
@given(n=st.integers(0, 10**7), p=st.integers(1, 64), bpe=st.sampled_from([1, 2, 4, 8]))
def test_ring_allreduce_bytes(submission, n, p, bpe):
    got = submission.run(call, "ring_allreduce_bytes", n, p, bpe)
    expected = 2 * (p - 1) * -(-n // p) * bpe
    assert isinstance(got, int) and not isinstance(got, bool), f"ring_allreduce_bytes must return an int, got {got!r}"
    assert got == expected, (f"ring_allreduce_bytes({n}, {p}, {bpe}) = {got}, expected {expected}: 2 (p - 1) steps "
                             f"(reduce-scatter then all-gather), each sending one chunk of ceil(n / p) elements")
    if bpe == 4:
        assert submission.run(call, "ring_allreduce_bytes", n, p) == expected, (
            "ring_allreduce_bytes's bytes_per_element defaults to 4 (float32)")


def test_pipeline_bubble_fraction(submission):
    for p, m in ((1, 1), (1, 8), (2, 1), (4, 4), (4, 12), (8, 3), (16, 64)):
        got = submission.run(call, "pipeline_bubble_fraction", p, m)
        assert isinstance(got, float), f"pipeline_bubble_fraction must return a float, got {got!r}"
        assert math.isclose(got, (p - 1) / (m + p - 1), rel_tol=1e-12, abs_tol=1e-15), (
            f"pipeline_bubble_fraction({p}, {m}) = {got}, expected (p - 1) / (m + p - 1) = {(p - 1) / (m + p - 1)}")


def simulate(schedule, p, m):
    """Run the schedule, one time unit per op, each stage in its order, each op once its inputs exist.

    Returns (finish time, peak activations in flight per stage) or raises AssertionError naming the problem.
    """
    assert isinstance(schedule, list) and len(schedule) == p, (
        f"one_f_one_b_schedule({p}, {m}) must return a list of {p} stages, got {type(schedule).__name__} "
        f"of length {len(schedule) if hasattr(schedule, '__len__') else '?'}")
    for s, ops in enumerate(schedule):
        ops = [tuple(op) for op in ops]
        expected = sorted([("F", i) for i in range(m)] + [("B", i) for i in range(m)])
        assert sorted(ops) == expected, (
            f"stage {s} must run each micro-batch's forward ('F', i) and backward ('B', i) exactly once, "
            f"for i in 0..{m - 1}; it runs {ops}")
        schedule[s] = ops
    done = {}                                             # (stage, op) -> finish time
    position, clock, in_flight, peak = [0] * p, [0] * p, [0] * p, [0] * p
    progress = True
    while progress:
        progress = False
        for s in range(p):
            if position[s] == 2 * m:
                continue
            kind, mb = schedule[s][position[s]]
            if kind == "F":
                needs = [(s - 1, ("F", mb))] if s > 0 else []
            else:
                needs = [(s, ("F", mb))] + ([(s + 1, ("B", mb))] if s < p - 1 else [])
            if all(n in done for n in needs):
                start = max([clock[s]] + [done[n] for n in needs])
                done[(s, (kind, mb))] = clock[s] = start + 1
                in_flight[s] += 1 if kind == "F" else -1
                peak[s] = max(peak[s], in_flight[s])
                position[s] += 1
                progress = True
    stuck = {s: schedule[s][position[s]] for s in range(p) if position[s] < 2 * m}
    assert not stuck, (f"one_f_one_b_schedule({p}, {m}) deadlocks: stages wait forever at {stuck} (a backward "
                       f"needs the next stage's backward of that micro-batch, a forward the previous stage's forward)")
    return max(clock), peak


@points(3)
@settings(max_examples=30)
@given(p=st.integers(1, 6), m=st.integers(1, 10))
def test_one_f_one_b_schedule_simulates(submission, p, m):
    schedule = submission.run(call, "one_f_one_b_schedule", p, m)
    finish, peak = simulate(schedule, p, m)
    for s in range(p):
        bound = min(p - s, m)
        assert peak[s] <= bound, (f"one_f_one_b_schedule({p}, {m}): stage {s} holds {peak[s]} activations at once; "
                                  f"1F1B holds at most p - s = {p - s} (warm up with p - s - 1 forwards)")
    assert finish == 2 * (m + p - 1), (
        f"one_f_one_b_schedule({p}, {m}) takes {finish} time units with unit-time forwards and backwards; 1F1B "
        f"takes 2 (m + p - 1) = {2 * (m + p - 1)} (bubble (p - 1) / (m + p - 1)): too few warm-up forwards?")
    for s, ops in enumerate(schedule):
        warmup = min(p - s - 1, m)
        expected = ([("F", i) for i in range(warmup)]
                    + [op for i in range(m - warmup) for op in (("F", warmup + i), ("B", i))]
                    + [("B", i) for i in range(m - warmup, m)])
        assert ops == expected, (f"one_f_one_b_schedule({p}, {m}): stage {s} must run {warmup} warm-up forwards, "
                                 f"then one forward and one backward in turn, then the remaining backwards, "
                                 f"micro-batches in order: expected {expected}, got {ops}")
