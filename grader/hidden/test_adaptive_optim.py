"""Hidden tests for ``adaptive_optim``. Probes run the optimisation loops in the sandbox and return the
trajectories (losses and final parameters); the torch reference runs here, in the test process.

Every comparison is in float64 with a tolerance, so no test depends on torch's order of operations.
Adaptive methods can turn chaotic near a minimum (once sqrt(v) is small, lr / eps acts like a huge SGD step),
where two correct implementations drift apart from their last-bit differences. So every configuration here
was checked by adding relative noise of 1e-13 (about 500 times float64 rounding) to the parameters after
every step of torch's own optimiser: each trajectory stays within 1/100 of the tolerance. That is why the
learning rates are moderate (lr <= 1e-2 in the property test) and RMSprop/Adadelta keep long memories in
the long runs. Re-check with such a noisy run before changing any hyper-parameter, shape or step count.
"""

from __future__ import annotations

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import close, data_seed, points, seeded_tensor, shapes


RTOL, ATOL = 1e-6, 1e-8  # float64 trajectories: correct implementations agree to ~1e-13
OPTIMIZERS = ("Adagrad", "RMSprop", "Adadelta", "Adam")


# -- the oracle: torch's optimisers behind the exercise's constructors ---------------------------------

class TorchOptim:
    """``torch.optim`` with the exercise's signatures (``Adam(decoupled_weight_decay=True)`` is AdamW)."""

    Adagrad = torch.optim.Adagrad
    RMSprop = torch.optim.RMSprop
    Adadelta = torch.optim.Adadelta

    @staticmethod
    def Adam(params, decoupled_weight_decay=False, **kwargs):
        kwargs.setdefault("weight_decay", 0.0)  # AdamW's own default is 1e-2; the exercise's is 0
        return (torch.optim.AdamW if decoupled_weight_decay else torch.optim.Adam)(params, **kwargs)


# -- the problem: a smooth objective over a list of parameters of any shapes ---------------------------

def make_problem(param_shapes, seed=0, dtype=torch.float64):
    """Start values, targets and per-coordinate curvatures spanning 1e-2..10 (so eps matters)."""
    init, target, scale = [], [], []
    for i, shape in enumerate(param_shapes):
        init.append(seeded_tensor(shape, dtype, seed=100 * seed + 3 * i))
        target.append(seeded_tensor(shape, dtype, seed=100 * seed + 3 * i + 1))
        u = torch.rand(shape, generator=torch.Generator().manual_seed(data_seed(100 * seed + 3 * i + 2)), dtype=torch.float64)
        scale.append((10 ** (3 * u - 2)).to(dtype))
    return {"init": init, "target": target, "scale": scale}


def objective(params, problem, active):
    """sum_i sum(scale_i * (p_i - target_i)^2 + 0.1 * p_i^4) over the parameters that take part."""
    terms = [(a * (p - c) ** 2 + 0.1 * p ** 4).sum()
             for p, c, a, on in zip(params, problem["target"], problem["scale"], active) if on]
    return torch.stack(terms).sum()


def is_active(period, t):
    """period 1: every step; 2: even steps only; 0: never (the parameter never gets a gradient)."""
    return period != 0 and t % period == 0


def build(cls, params, kwargs, groups):
    if groups is None:
        return cls(params, **kwargs)
    return cls([{"params": [params[i] for i in idx], **hp} for idx, hp in groups], **kwargs)


def train(ns, name, kwargs, problem, steps, groups=None, schedule=None, periods=None, closure=False):
    """Run ``steps`` updates of ``ns.<name>`` from the problem's start; return the losses, final params and,
    with ``closure=True``, what ``step(closure)`` returned and how often the closure ran per step."""
    params = [t.clone().requires_grad_(True) for t in problem["init"]]
    periods = periods or [1] * len(params)
    opt = build(getattr(ns, name), params, kwargs, groups)
    losses, returned, calls = [], [], []
    for t in range(steps):
        for gi, key, value in (schedule or {}).get(t, ()):
            opt.param_groups[gi][key] = value
        active = [is_active(k, t) for k in periods]
        if closure:
            count = [0]

            def closure_fn():
                count[0] += 1
                for p in params:
                    p.grad = None
                loss = objective(params, problem, active)
                loss.backward()
                return loss

            out = opt.step(closure_fn)
            returned.append(None if out is None else float(out.detach() if isinstance(out, torch.Tensor) else out))
            calls.append(count[0])
        else:
            for p in params:
                p.grad = None
            loss = objective(params, problem, active)
            loss.backward()
            out = opt.step()
            returned.append(out is None)
            losses.append(loss.item())
    losses = losses or [float("nan") if r is None else r for r in returned]
    result = {"losses": torch.tensor(losses, dtype=torch.float64), "params": [p.detach() for p in params]}
    if closure:
        result.update(returned=returned, calls=calls)
    else:
        result["none_returned"] = all(returned)
    return result


# -- probes (executed against the submission, return plain data) ---------------------------------------

def trajectory(m, name, kwargs, problem, steps, groups=None, schedule=None, periods=None, closure=False):
    return train(m, name, kwargs, problem, steps, groups, schedule, periods, closure)


def resume(m, name, kwargs, problem, first, second):
    """An uninterrupted run of first + second steps, and one that saves after ``first``, rebuilds params
    and optimiser from scratch, loads the saved state and continues."""
    whole = train(m, name, kwargs, problem, first + second)
    head = [t.clone().requires_grad_(True) for t in problem["init"]]
    opt = getattr(m, name)(head, **kwargs)
    losses = []
    for _ in range(first):
        for p in head:
            p.grad = None
        loss = objective(head, problem, [True] * len(head))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    saved = copy.deepcopy(opt.state_dict())
    values = [p.detach().clone() for p in head]
    del opt, head
    tail = [v.clone().requires_grad_(True) for v in values]
    opt = getattr(m, name)(tail, **kwargs)
    opt.load_state_dict(saved)
    for _ in range(second):
        for p in tail:
            p.grad = None
        loss = objective(tail, problem, [True] * len(tail))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"whole": whole, "losses": torch.tensor(losses, dtype=torch.float64),
            "params": [p.detach() for p in tail]}


def construct(m, name, kwargs):
    opt = getattr(m, name)([torch.zeros(3, requires_grad=True)], **kwargs)
    return isinstance(opt, torch.optim.Optimizer)


def dtype_run(m, name, kwargs, problem32, problem64, steps):
    """A float32 trajectory, and the dtypes of the state tensors after one step on float32 and float64 params."""
    out = train(m, name, kwargs, problem32, steps)
    dtypes = []
    for problem in (problem32, problem64):
        params = [t.clone().requires_grad_(True) for t in problem["init"]]
        opt = getattr(m, name)(params, **kwargs)
        objective(params, problem, [True] * len(params)).backward()
        opt.step()
        dtypes.append([[v.dtype for v in opt.state[p].values()
                        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() >= p.numel()]
                       for p in params])
    return out, [p.dtype for p in out["params"]], dtypes, isinstance(opt, torch.optim.Optimizer)


# -- helpers for the checks ---------------------------------------------------------------------------

def describe(name, kwargs):
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}({args})" if args else f"{name}() with its default hyper-parameters"


def same_trajectory(got, want, what, rtol=RTOL, atol=ATOL):
    for t, (a, b) in enumerate(zip(got["losses"].tolist(), want["losses"].tolist())):
        if not abs(a - b) <= atol + rtol * abs(b):
            raise AssertionError(f"{what}: the trajectory leaves torch's at step {t + 1}: "
                                 f"loss {a!r} where torch has {b!r}")
    assert len(got["params"]) == len(want["params"]), f"{what}: wrong number of parameters returned"
    for i, (a, b) in enumerate(zip(got["params"], want["params"])):
        close(a, b, f"{what}: parameter {i} after {len(want['losses'])} steps", rtol=rtol, atol=atol)


def check_against_torch(submission, name, cases, param_shapes=((4, 3), ()), steps=120, seed=0):
    problem = make_problem(param_shapes, seed=seed)
    for kwargs in cases:
        want = train(TorchOptim, name, dict(kwargs), problem, steps)
        got = submission.run(trajectory, name, kwargs, problem, steps)
        same_trajectory(got, want, describe(name, kwargs))
        assert got["none_returned"], f"{describe(name, kwargs)}.step() without a closure must return None"


# -- tests --------------------------------------------------------------------------------------------

@points(2)
def test_adagrad_matches_torch(submission):
    check_against_torch(submission, "Adagrad", [{}, dict(lr=0.1, eps=1e-3, weight_decay=0.1)])


@points(2)
def test_rmsprop_matches_torch(submission):
    check_against_torch(submission, "RMSprop", [{}, dict(lr=0.01, alpha=0.99, eps=1e-3, weight_decay=0.1)])


@points(2)
def test_adadelta_matches_torch(submission):
    check_against_torch(submission, "Adadelta", [{}, dict(lr=0.5, rho=0.95, eps=1e-4, weight_decay=0.1)])


@points(2)
def test_adam_matches_torch_with_l2_decay(submission):
    check_against_torch(submission, "Adam", [{}, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)])


@points(2)
def test_adam_decoupled_weight_decay_matches_adamw(submission):
    check_against_torch(submission, "Adam", [dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
                                             dict(lr=0.01, betas=(0.5, 0.95), eps=1e-2, weight_decay=0.5,
                                                  decoupled_weight_decay=True)])


HYPER = {
    "Adagrad": {},
    "RMSprop": {"alpha": st.sampled_from([0.0, 0.5, 0.9, 0.99])},
    "Adadelta": {"rho": st.sampled_from([0.0, 0.5, 0.9, 0.95])},
    "Adam": {"betas": st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.9, 0.99, 0.999])),
             "decoupled_weight_decay": st.booleans()},
}


@points(2)
@settings(max_examples=8)
@given(name=st.sampled_from(OPTIMIZERS), param_shapes=st.lists(shapes(0, 3, 1, 4), min_size=1, max_size=3),
       data=st.data())
def test_random_hyperparameters_and_shapes(submission, name, param_shapes, data):
    kwargs = {"lr": data.draw(st.sampled_from([1e-3, 1e-2] if name != "Adadelta" else [0.1, 1.0]), label="lr"),
              "eps": data.draw(st.sampled_from([1e-8, 1e-4, 1e-2]), label="eps"),
              "weight_decay": data.draw(st.sampled_from([0.0, 0.05]), label="weight_decay")}
    for key, strategy in HYPER[name].items():
        kwargs[key] = data.draw(strategy, label=key)
    problem = make_problem(param_shapes, seed=len(param_shapes))
    want = train(TorchOptim, name, dict(kwargs), problem, 50)
    got = submission.run(trajectory, name, kwargs, problem, 50)
    same_trajectory(got, want, f"{describe(name, kwargs)} on parameters of shapes {param_shapes}")


GROUPS = {  # per-group hyper-parameters differ from the constructor's (which the second group inherits)
    "Adagrad": ({"lr": 0.02}, {"lr": 0.2, "eps": 1e-2, "weight_decay": 0.2}),
    "RMSprop": ({"lr": 0.003, "alpha": 0.9}, {"lr": 0.03, "alpha": 0.5, "eps": 1e-2, "weight_decay": 0.2}),
    "Adadelta": ({"lr": 0.5, "rho": 0.9}, {"lr": 0.3, "rho": 0.5, "eps": 1e-3, "weight_decay": 0.2}),
    "Adam": ({"lr": 0.005, "weight_decay": 0.01},
             {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-2, "weight_decay": 0.2}),
}


@points(2)
def test_param_groups_use_their_own_hyperparameters(submission):
    problem = make_problem([(4, 3), (6,), ()], seed=3)
    for name in OPTIMIZERS:
        base, special = GROUPS[name]
        groups = [([0, 2], {}), ([1], special)]
        schedule = {30: [(0, "lr", base["lr"] / 2)], 60: [(1, "lr", special["lr"] / 4)]}
        what = (f"{name}({', '.join(f'{k}={v}' for k, v in base.items())}) with a second param group "
                f"{special} whose lr is then changed through optimizer.param_groups")
        want = train(TorchOptim, name, dict(base), problem, 80, groups, schedule)
        got = submission.run(trajectory, name, base, problem, 80, groups, schedule)
        same_trajectory(got, want, what)


@points(2)
def test_params_without_grad_are_skipped(submission):
    problem = make_problem([(3, 3), (4,), (5,)], seed=5)
    periods = [1, 2, 0]  # param 1 gets a grad on even steps only, param 2 never
    for name in OPTIMIZERS:
        kwargs = {"weight_decay": 0.1, "lr": 0.1 if name != "Adadelta" else 1.0}
        if name == "Adam":
            kwargs["decoupled_weight_decay"] = True
        what = f"{describe(name, kwargs)} where parameter 1 has grad None every other step"
        want = train(TorchOptim, name, dict(kwargs), problem, 60, periods=periods)
        got = submission.run(trajectory, name, kwargs, problem, 60, periods=periods)
        assert torch.equal(got["params"][2], problem["init"][2]), (
            f"{describe(name, kwargs)}: a parameter whose .grad is None must not change at all "
            "(no weight decay, no momentum step), but it moved")
        same_trajectory(got, want, what)


def test_step_returns_the_closure_loss(submission):
    problem = make_problem([(3, 2), (4,)], seed=7)
    for name in OPTIMIZERS:
        kwargs = {"lr": 0.05 if name != "Adadelta" else 1.0}
        want = train(TorchOptim, name, dict(kwargs), problem, 20, closure=True)
        got = submission.run(trajectory, name, kwargs, problem, 20, closure=True)
        assert all(r is not None for r in got["returned"]), f"{name}.step(closure) must return the closure's loss, got None"
        assert got["calls"] == [1] * 20, (
            f"{name}.step(closure) must call the closure exactly once per step; calls per step: {got['calls'][:5]}...")
        close(torch.tensor(got["returned"], dtype=torch.float64), torch.tensor(want["returned"], dtype=torch.float64),
              f"the losses {name}.step(closure) returned", rtol=RTOL, atol=ATOL)
        same_trajectory(got, want, f"{name}(lr={kwargs['lr']}) stepped with a closure")


@points(2)
def test_state_dict_resumes_the_same_trajectory(submission):
    problem = make_problem([(3, 4), ()], seed=9)
    cases = [("Adagrad", {"lr": 0.1, "weight_decay": 0.05}), ("RMSprop", {"lr": 0.003, "alpha": 0.9}),
             ("Adadelta", {"rho": 0.95, "eps": 1e-4}),
             ("Adam", {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1, "decoupled_weight_decay": True})]
    for name, kwargs in cases:
        out = submission.run(resume, name, kwargs, problem, 40, 30)
        whole = out["whole"]
        what = (f"{describe(name, kwargs)} saved with state_dict() after 40 steps and loaded into a new "
                "optimiser with load_state_dict()")
        for t, (a, b) in enumerate(zip(out["losses"].tolist(), whole["losses"].tolist())):
            assert abs(a - b) <= ATOL + RTOL * abs(b), (
                f"{what}: step {t + 1} differs from the uninterrupted run (loss {a!r} vs {b!r}); everything the "
                "update needs (buffers and the step count) must live in self.state so state_dict() carries it")
        for i, (a, b) in enumerate(zip(out["params"], whole["params"])):
            close(a, b, f"{what}: parameter {i} after 70 steps, against the uninterrupted run", rtol=RTOL, atol=ATOL)


BAD = [
    ("Adagrad", {"lr": -1e-3}), ("Adagrad", {"eps": -1e-10}), ("Adagrad", {"weight_decay": -0.1}),
    ("RMSprop", {"lr": -1e-3}), ("RMSprop", {"eps": -1e-8}), ("RMSprop", {"weight_decay": -0.1}),
    ("Adadelta", {"lr": -1.0}), ("Adadelta", {"eps": -1e-6}), ("Adadelta", {"weight_decay": -0.1}),
    ("Adadelta", {"rho": -0.1}), ("Adadelta", {"rho": 1.0}),
    ("Adam", {"lr": -1e-3}), ("Adam", {"eps": -1e-8}), ("Adam", {"weight_decay": -0.1}),
    ("Adam", {"weight_decay": -0.1, "decoupled_weight_decay": True}),
    ("Adam", {"betas": (1.0, 0.999)}), ("Adam", {"betas": (-0.1, 0.999)}),
    ("Adam", {"betas": (0.9, 1.0)}), ("Adam", {"betas": (0.9, -0.5)}),
]


def test_invalid_hyperparameters_raise_value_error(submission):
    for name, kwargs in BAD:
        submission.raises(ValueError, construct, name, kwargs,
                          msg=f"{describe(name, kwargs)} must raise ValueError")


def test_boundary_hyperparameters_are_accepted(submission):
    good = [("Adagrad", {"lr": 0.0, "eps": 0.0, "weight_decay": 0.0}),
            ("RMSprop", {"lr": 0.0, "eps": 0.0, "weight_decay": 0.0}),
            ("Adadelta", {"lr": 0.0, "rho": 0.0, "eps": 0.0}), ("Adadelta", {"rho": 0.999}),
            ("Adam", {"lr": 0.0, "betas": (0.0, 0.0), "eps": 0.0, "weight_decay": 0.0}),
            ("Adam", {"betas": (0.999, 0.9999), "decoupled_weight_decay": True})]
    for name, kwargs in good:
        assert submission.run(construct, name, kwargs), (
            f"{describe(name, kwargs)} must build a torch.optim.Optimizer subclass")


def test_state_follows_the_parameter_dtype(submission):
    shapes_ = [(4, 3), (5,)]
    problem32, problem64 = make_problem(shapes_, seed=11, dtype=torch.float32), make_problem(shapes_, seed=11)
    for name in OPTIMIZERS:
        kwargs = {"lr": 1e-3 if name != "Adadelta" else 1.0}
        out, param_dtypes, state_dtypes, is_optimizer = submission.run(dtype_run, name, kwargs, problem32, problem64, 20)
        assert is_optimizer, f"{name} must subclass torch.optim.Optimizer"
        assert param_dtypes == [torch.float32] * 2, f"{name} changed the float32 parameters' dtype to {param_dtypes}"
        for dtype, per_param in zip((torch.float32, torch.float64), state_dtypes):
            for i, dtypes in enumerate(per_param):
                assert all(d == dtype for d in dtypes), (
                    f"{name}: the state buffers of {dtype} parameter {i} are {dtypes}; create them like the "
                    "parameter (torch.zeros_like(p)) so they share its dtype and device")
        same_trajectory(out, train(TorchOptim, name, dict(kwargs), problem32, 20),
                        f"{name}(lr={kwargs['lr']}) on float32 parameters", rtol=1e-4, atol=1e-5)
