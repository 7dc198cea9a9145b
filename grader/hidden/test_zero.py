"""Hidden tests for ``zero``. Three gloo worlds (2, 3 and 4 ranks) train several small models with
ZeroAdam; each rank returns its raw parameters after every step, its Adam state and shard size, and the
test compares them with ``torch.optim.Adam`` on the averaged gradient in its own process. A world runs
once per graded submission and its result is shared by the tests that read it (every verdict is still in
the test functions)."""

import hashlib
import math

import torch
import torch.distributed as dist
from hypothesis import given
from hypothesis import strategies as st

from grader.distributed import run_world
from grader.testing import close, points, seeded_tensor

WORLD_TIMEOUT_S = 15
D64 = torch.float64
ADAM_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)  # the API's defaults


# -- the training problem (shared by the ranks and the reference) ------------------------------------------

def loss_of(params, coeffs):
    """sum_i sum(a_i * tanh(p_i) + b_i * p_i^2 / 2): every parameter gets a gradient, a different one per rank."""
    return sum((a * torch.tanh(p) + 0.5 * b * p * p).sum() for p, (a, b) in zip(params, coeffs))


def make_case(shapes, dtype, steps, ranks, hp, seed):
    """Initial weights and, per step and rank, the loss coefficients (the rank's "data")."""
    init = [seeded_tensor(s, dtype, seed=seed + i) for i, s in enumerate(shapes)]
    data = [[[(seeded_tensor(s, dtype, seed=1000 * seed + 100 * t + 10 * r + i),
               seeded_tensor(s, dtype, seed=2000 * seed + 100 * t + 10 * r + i).abs())
              for i, s in enumerate(shapes)] for r in range(ranks)] for t in range(steps)]
    return {"init": init, "data": data, "hp": hp}


# -- inside the ranks (submission code runs here) ------------------------------------------------------------

def train(m, rank, case, group=None):
    """Train one case on this rank; raw parameters after every step, grads after zero_grad, Adam state."""
    params = [torch.nn.Parameter(w.clone()) for w in case["init"]]
    hp = case["hp"]
    opt = m.ZeroAdam(iter(params), **hp, group=group)  # hp == {}: the constructor's defaults
    after, grads_cleared = [], []
    for coeffs in case["data"]:
        loss_of(params, coeffs[rank]).backward()
        opt.step()
        after.append([p.detach().clone() for p in params])
        opt.zero_grad()
        grads_cleared.append([None if p.grad is None else p.grad.clone() for p in params])
    state = {name: getattr(opt, name, "missing") for name in ("exp_avg", "exp_avg_sq")}
    state = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v if v == "missing" else repr(type(v))
             for k, v in state.items()}
    return {"after": after, "grads": grads_cleared, "state": state, "shard_numel": opt.shard_numel()}


def world_rank(rank, world_size, m, cases, grouped):
    """Every case on the default group; then, if ``grouped``, each half of the world as its own group."""
    out = {name: train(m, rank, case) for name, case in cases.items()}
    if grouped:
        halves = [dist.new_group(list(range(world_size // 2))), dist.new_group(list(range(world_size // 2, world_size)))]
        half = rank // (world_size // 2)
        for name, case in grouped.items():
            out[name] = train(m, rank % (world_size // 2), case[half], group=halves[half])
    return out


def in_world(m, world_size, cases, grouped):
    return run_world(world_rank, world_size, m, cases, grouped, timeout_s=WORLD_TIMEOUT_S)


def memory(m, *args):
    return m.zero_memory_bytes(*args)


def memory_raising(m, *args):
    try:
        return ("returned", m.zero_memory_bytes(*args))
    except NotImplementedError:
        raise
    except Exception as exc:
        return ("raised", [c.__name__ for c in type(exc).__mro__], str(exc)[:200])


# -- the worlds, each run once per submission --------------------------------------------------------------

SHAPES_23 = [(4, 3), (3,), (3, 2), (2,)]  # 23 elements: padding for 2, 3 and 4 ranks
TUNED = dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1)

WORLDS = {
    2: ({"defaults": make_case(SHAPES_23, D64, 4, 2, {}, seed=1),
         "tuned": make_case([(5,), (2, 2)], D64, 5, 2, TUNED, seed=2),
         "float32": make_case([(6, 5)], torch.float32, 3, 2, dict(lr=0.01), seed=3),
         "one element": make_case([(1,)], D64, 2, 2, dict(lr=0.1), seed=4)}, {}),
    3: ({"tuned": make_case(SHAPES_23, D64, 4, 3, TUNED, seed=5),
         "two elements": make_case([(2,)], D64, 3, 3, dict(lr=0.1, weight_decay=0.01), seed=6)}, {}),
    4: ({"tuned": make_case(SHAPES_23, D64, 3, 4, dict(TUNED, lr=0.02), seed=7)},
        {"groups of 2": [make_case(SHAPES_23, D64, 3, 2, TUNED, seed=8 + h) for h in range(2)]}),
}

_RESULTS: dict = {}


def world_results(submission, world_size):
    """The ranks' results of world ``world_size``. The first test that needs a world runs all three, one
    probe each, in its own sandbox; each outcome (results, or the failure a probe raised) is kept for the
    tests that read that world, so a failure is reported by each of them."""
    source = hashlib.sha256(submission.source().encode()).hexdigest()
    if (str(submission.path), source, world_size) not in _RESULTS:
        for n, (cases, grouped) in WORLDS.items():
            try:
                outcome = ("ok", submission.run(in_world, n, cases, grouped))
            except AssertionError as exc:  # a ProbeFailure: not implemented, raised, timeout, crashed, forbidden
                outcome = ("failed", exc)
            _RESULTS[(str(submission.path), source, n)] = outcome
    status, value = _RESULTS[(str(submission.path), source, world_size)]
    if status == "failed":
        raise value
    return value


# -- references (the test process's own torch) ---------------------------------------------------------------

def reference(case, world_size):
    """torch.optim.Adam on the mean of the ranks' gradients: the weights after each step and the final state."""
    params = [w.clone().requires_grad_(True) for w in case["init"]]
    opt = torch.optim.Adam(params, **{**ADAM_DEFAULTS, **case["hp"]})
    after = []
    for coeffs in case["data"]:
        opt.zero_grad()
        (sum(loss_of(params, coeffs[r]) for r in range(world_size)) / world_size).backward()
        opt.step()
        after.append([p.detach().clone() for p in params])
    flat = {name: torch.cat([opt.state[p][name].reshape(-1) for p in params]) for name in ("exp_avg", "exp_avg_sq")}
    return after, flat


def describe(name, case, world_size):
    shapes = [tuple(w.shape) for w in case["init"]]
    hp = {**ADAM_DEFAULTS, **case["hp"]}
    return (f"case {name!r} ({world_size} ranks, parameter shapes {shapes}, {case['init'][0].dtype}, lr={hp['lr']}, "
            f"betas={hp['betas']}, eps={hp['eps']}, weight_decay={hp['weight_decay']})")


def cases_of(world_size):
    """(name, case, group size, [(rank in the world, rank in its group)]) for every case of the world."""
    cases, grouped = WORLDS[world_size]
    out = [(name, case, world_size, [(r, r) for r in range(world_size)]) for name, case in cases.items()]
    half = world_size // 2
    for name, pair in grouped.items():
        for h, case in enumerate(pair):
            out.append((f"{name}, group {h}", case, half, [(h * half + r, r) for r in range(half)]))
    return out


def result_of(results, name, world_rank):
    return results[world_rank][name.split(", group")[0]]


TOL = {D64: dict(rtol=1e-7, atol=1e-9), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def check_matches_adam(results, world_size, names=None):
    for name, case, n, ranks in cases_of(world_size):
        if names is not None and name not in names:
            continue
        want, _ = reference(case, n)
        what = describe(name, case, n)
        for world_r, r in ranks[:1]:
            got = result_of(results, name, world_r)["after"]
            for t, (g_step, w_step) in enumerate(zip(got, want)):
                for i, (g, w) in enumerate(zip(g_step, w_step)):
                    close(g, w, f"{what}: parameter {i} after step {t + 1}, against torch.optim.Adam on the "
                                f"mean of the ranks' gradients", **TOL[w.dtype])


def check_state(results, world_size):
    for name, case, n, ranks in cases_of(world_size):
        _, flat = reference(case, n)
        numel = flat["exp_avg"].numel()
        shard = math.ceil(numel / n)
        what = describe(name, case, n)
        for world_r, r in ranks:
            res = result_of(results, name, world_r)
            assert res["shard_numel"] == shard, (
                f"{what}: rank {r}'s shard_numel() is {res['shard_numel']}; {numel} elements padded to a "
                f"multiple of {n} ranks give shards of ceil({numel} / {n}) = {shard}")
            for key in ("exp_avg", "exp_avg_sq"):
                got = res["state"][key]
                assert isinstance(got, torch.Tensor), f"ZeroAdam must have a tensor attribute {key}, got {got}"
                assert got.dim() == 1 and got.numel() == shard, (
                    f"{what}: rank {r}'s {key} has shape {tuple(got.shape)}; it must be 1-D with this rank's "
                    f"{shard} elements only (1/{n} of the padded {n * shard}), not state for every parameter")
                lo, hi = r * shard, min((r + 1) * shard, numel)
                if hi > lo:
                    close(got[:hi - lo], flat[key][lo:hi].to(got.dtype),
                          f"{what}: rank {r}'s {key} (elements [{lo}, {hi}) of the flattened parameters), against "
                          f"torch.optim.Adam's state", **TOL[flat[key].dtype])


def check_identical(results, world_size):
    for name, case, n, ranks in cases_of(world_size):
        first_rank = ranks[0][0]
        first = result_of(results, name, first_rank)["after"]
        for world_r, r in ranks[1:]:
            other = result_of(results, name, world_r)["after"]
            for t, (a_step, b_step) in enumerate(zip(first, other)):
                for i, (a, b) in enumerate(zip(a_step, b_step)):
                    assert isinstance(b, torch.Tensor) and torch.equal(a, b), (
                        f"{describe(name, case, n)}: after step {t + 1}, parameter {i} differs between rank "
                        f"{ranks[0][1]} and rank {r}; after the all-gather every rank must hold identical parameters")


# -- memory ------------------------------------------------------------------------------------------------------

def expected_memory(psi, n, stage, p, g, k):
    return [(p + g + k) * psi, (p + g) * psi + k * psi / n, p * psi + (g + k) * psi / n, (p + g + k) * psi / n][stage]


@points(2)
def test_memory_matches_the_paper(submission):
    psi = 7_500_000_000
    for stage, want in enumerate((120e9, 31.40625e9, 16.640625e9, 1.875e9)):
        got = submission.run(memory, psi, 64, stage)
        assert isinstance(got, (int, float)), f"zero_memory_bytes must return a number, got {type(got).__name__}"
        assert math.isclose(got, want, rel_tol=1e-9), (
            f"zero_memory_bytes(7.5e9 parameters, 64 GPUs, stage {stage}) = {got:.6g} bytes; the ZeRO paper's "
            f"Figure 1 gives {want:.6g} (fp16 weights and gradients, K = 12 bytes of Adam state)")
    for args in ((1000, 4, 4), (1000, 4, -1), (1000, 0, 1)):
        record = submission.run(memory_raising, *args)
        assert record[0] == "raised" and "ValueError" in record[1], (
            f"zero_memory_bytes{args} must raise ValueError (stage must be 0-3, world_size >= 1); got {record}")


@given(psi=st.integers(1, 10**12), n=st.integers(1, 1024), stage=st.integers(0, 3),
       sizes=st.tuples(st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]), st.sampled_from([4, 8, 12, 16])))
def test_memory_formula_for_any_setting(submission, psi, n, stage, sizes):
    got = submission.run(memory, psi, n, stage, *sizes)
    want = expected_memory(psi, n, stage, *sizes)
    assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9), (
        f"zero_memory_bytes({psi}, world_size={n}, stage={stage}, param_bytes={sizes[0]}, grad_bytes={sizes[1]}, "
        f"optimizer_bytes={sizes[2]}) = {got}, expected {want}: stage 1 partitions the optimizer state, stage 2 "
        f"also the gradients, stage 3 also the parameters")


# -- ZeroAdam on real worlds -------------------------------------------------------------------------------------

@points(3)
def test_matches_adam_on_the_averaged_gradient(submission):
    check_matches_adam(world_results(submission, 2), 2, names=("tuned", "float32", "one element"))


def test_default_hyperparameters_are_adams(submission):
    check_matches_adam(world_results(submission, 2), 2, names=("defaults",))


@points(2)
def test_parameters_identical_on_every_rank(submission):
    check_identical(world_results(submission, 2), 2)


@points(3)
def test_adam_state_is_this_ranks_shard(submission):
    check_state(world_results(submission, 2), 2)


@points(2)
def test_three_ranks_with_padding(submission):
    results = world_results(submission, 3)
    check_matches_adam(results, 3)
    check_identical(results, 3)
    check_state(results, 3)


@points(2)
def test_four_ranks_and_process_groups(submission):
    results = world_results(submission, 4)
    check_matches_adam(results, 4)
    check_identical(results, 4)
    check_state(results, 4)


def test_zero_grad_clears_gradients(submission):
    results = world_results(submission, 2)
    for rank in range(2):
        for name, res in results[rank].items():
            for t, grads in enumerate(res["grads"]):
                for i, g in enumerate(grads):
                    assert g is None or (isinstance(g, torch.Tensor) and not g.any()), (
                        f"case {name!r}, rank {rank}: after zero_grad() at step {t + 1} parameter {i} still has "
                        f"a nonzero gradient (zero_grad must set every gradient to None or to zero)")
