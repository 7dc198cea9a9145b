"""Hidden tests for ``newton``. Probes run in the sandbox and return raw outputs; every verdict is here.

Loss functions cannot cross the process boundary, so a test sends a loss *name* and its parameters
(tensors) and ``make_loss`` builds the same function on both sides.
"""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import close, data_seed, points, seeded_tensor

F64 = torch.float64
EXACT = dict(rtol=1e-11, atol=1e-11)  # autograd agrees with itself to ~1e-15; finite differences do not


# -- loss functions (built the same way in the sandbox and here) -------------------------------------

def make_loss(kind, p):
    if kind == "quadratic":  # 0.5 x^T A x - b^T x: gradient A x - b, Hessian A
        A, b = p
        return lambda x: 0.5 * x @ (A.to(x.dtype) @ x) - b.to(x.dtype) @ x
    if kind == "smooth":  # strictly convex, dense Hessian, large higher derivatives
        a, W = p
        return lambda x: (torch.exp(a.to(x.dtype) * x).sum() + torch.nn.functional.softplus(W.to(x.dtype) @ x).sum()
                          + 0.5 * (x * x).sum())
    if kind == "rosenbrock":
        return lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    if kind == "cycle":  # f'(x) = x^3 - 2x + 2: Newton from 0 cycles 0 -> 1 -> 0 -> ... exactly
        return lambda x: (x ** 4 / 4 - x ** 2 + 2 * x).sum()
    if kind == "linear":  # Hessian exactly zero
        (c,) = p
        return lambda x: c.to(x.dtype) @ x + 1.0
    if kind == "diagonal":  # 0.5 sum d_i x_i^2 - sum x_i: Hessian diag(d), minimiser 1 / d
        (d,) = p
        return lambda x: 0.5 * (d.to(x.dtype) * x * x).sum() - x.sum()
    if kind == "saddle":  # x0^2 - x1^2: stationary point 0 is a saddle
        return lambda x: x[0] ** 2 - x[1] ** 2
    raise KeyError(kind)


def spd_quadratic(n, seed):
    """A (n, n) symmetric positive definite with eigenvalues in about [1, 5], b (n,)."""
    M = seeded_tensor((n, n), F64, seed)
    return M @ M.T / n + torch.eye(n, dtype=F64), seeded_tensor((n,), F64, seed + 100)


def smooth_params(n, seed):
    g = torch.Generator().manual_seed(data_seed(seed))
    a = 2.0 + 2.0 * torch.rand(n, generator=g, dtype=F64)
    return a, torch.randn(3, n, generator=g, dtype=F64)


def exact_derivatives(kind, p, x):
    f = make_loss(kind, p)
    xr = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xr), xr)
    return g, torch.autograd.functional.hessian(f, x.detach())


def vec(*values):
    return torch.tensor(values, dtype=F64)


# -- probes (executed against the submission, return plain data) ---------------------------------------

def grad_hess(m, kind, p, x):
    return m.gradient_and_hessian(make_loss(kind, p), x)


def step(m, kind, p, x, damping=0.0):
    return m.newton_step(make_loss(kind, p), x, damping)


def minimize(m, kind, p, x0, **kwargs):
    return m.newton_minimize(make_loss(kind, p), x0, **kwargs)


def nbytes(m, *args):
    value = m.hessian_bytes(*args)
    return value, type(value).__name__


def exception_class(m):
    cls = m.SingularHessianError
    return cls.__name__, [c.__name__ for c in cls.__mro__]


def side_effects(m, kind, p, x, requires_grad):
    """Facts about inputs and outputs: flags, grads and values after each call."""
    f = make_loss(kind, p)
    x = x.detach().clone().requires_grad_(requires_grad)
    before = x.detach().clone()
    g, H = m.gradient_and_hessian(f, x)
    after_gh = (x.detach().clone(), x.requires_grad, x.grad is None)
    s = m.newton_step(f, x)
    after_step = (x.detach().clone(), x.requires_grad, x.grad is None)
    xm, k = m.newton_minimize(f, x)
    after_min = (x.detach().clone(), x.requires_grad, x.grad is None)
    outputs = {name: (t.requires_grad, t.grad_fn is None) for name, t in
               (("gradient", g), ("Hessian", H), ("newton_step", s), ("newton_minimize", xm))}
    return before, {"gradient_and_hessian": after_gh, "newton_step": after_step,
                    "newton_minimize": after_min}, outputs


def dtypes(m, kind, p, x):
    f = make_loss(kind, p)
    g, H = m.gradient_and_hessian(f, x)
    s = m.newton_step(f, x, 0.5)
    xm, k = m.newton_minimize(f, x, tol=1e-4)
    return g, H, s, xm, k


# -- tests ------------------------------------------------------------------------------------------------

@points(3)
@settings(max_examples=15)
@given(n=st.integers(1, 6), seed=st.integers(0, 1000))
def test_gradient_and_hessian_are_exact(submission, n, seed):
    p = smooth_params(n, seed)
    x = 0.5 * seeded_tensor((n,), F64, seed + 1)
    g, H = submission.run(grad_hess, "smooth", p, x)
    g_ref, H_ref = exact_derivatives("smooth", p, x)
    close(g, g_ref, f"the gradient (n={n}) in float64", **EXACT)
    close(H, H_ref, f"the Hessian (n={n}) in float64 (autograd is exact to ~1e-15; finite differences "
                    "are not)", **EXACT)


def test_hessian_of_quadratic_and_linear_losses(submission):
    A, b = spd_quadratic(4, seed=3)
    x = seeded_tensor((4,), F64, 4)
    g, H = submission.run(grad_hess, "quadratic", (A, b), x)
    close(g, A @ x - b, "the gradient of 0.5 x^T A x - b^T x (it is A x - b)", **EXACT)
    close(H, A, "the Hessian of 0.5 x^T A x - b^T x (it is A)", **EXACT)
    c = vec(1.0, -2.0, 3.0)
    g, H = submission.run(grad_hess, "linear", (c,), torch.zeros(3, dtype=F64))
    close(g, c, "the gradient of the linear loss c^T x + 1")
    close(H, torch.zeros(3, 3, dtype=F64), "the Hessian of a linear loss (all zeros; the gradient does not "
                                           "depend on x, so handle a gradient that has no graph)")


@points(2)
@settings(max_examples=15)
@given(n=st.integers(1, 6), seed=st.integers(0, 1000), damping=st.sampled_from([0.0, 0.1, 2.0]),
       dtype=st.sampled_from([torch.float32, F64]))
def test_newton_step_is_x_minus_damped_solve(submission, n, seed, damping, dtype):
    A, b = spd_quadratic(n, seed)
    x = seeded_tensor((n,), F64, seed + 7)
    expected = x - torch.linalg.solve(A + damping * torch.eye(n, dtype=F64), A @ x - b)
    tol = EXACT if dtype == F64 else dict(rtol=1e-4, atol=1e-4)
    close(submission.run(step, "quadratic", (A, b), x.to(dtype), damping), expected.to(dtype),
          f"newton_step with damping={damping} (n={n}, {dtype}): x - (H + damping*I)^-1 g", **tol)


@points(2)
def test_quadratic_is_solved_in_one_step(submission):
    A, b = spd_quadratic(5, seed=11)
    x_star = torch.linalg.solve(A, b)
    x0 = seeded_tensor((5,), F64, 12) * 3
    close(submission.run(step, "quadratic", (A, b), x0), x_star,
          "one undamped newton_step on a quadratic (it must land on the minimiser A^-1 b)", **EXACT)
    x, k = submission.run(minimize, "quadratic", (A, b), x0)
    close(x, x_star, "newton_minimize on a quadratic", **EXACT)
    assert k == 1, (f"newton_minimize needs exactly 1 step on a quadratic, it reported {k} "
                    "(count steps taken, check ||g|| <= tol before each step)")
    x, k = submission.run(minimize, "quadratic", (A, b), x_star)
    assert k == 0, f"starting at the minimiser (||g|| about 1e-15 <= tol) takes 0 steps, not {k}"
    close(x, x_star, "newton_minimize started at the minimiser (it must return x0's value)")


@points(2)
def test_rosenbrock_steps_and_tolerance(submission):
    # Pure Newton from (-1.2, 1): ||g|| after steps 4, 5, 6, 7 is about 25, 9e-6, 8e-9, <1e-13.
    x0 = vec(-1.2, 1.0)
    x, k = submission.run(minimize, "rosenbrock", (), x0)
    close(x, vec(1.0, 1.0), "newton_minimize on the Rosenbrock function from (-1.2, 1)", rtol=1e-9, atol=1e-9)
    assert k == 7, f"undamped Newton on Rosenbrock from (-1.2, 1) stops after 7 steps with tol=1e-10, not {k}"
    x, k = submission.run(minimize, "rosenbrock", (), x0, tol=1e-3)
    assert k == 5, (f"with tol=1e-3 it must stop after 5 steps (||g|| is about 9e-6 there, 25 one step "
                    f"before), not {k}")
    g, _ = exact_derivatives("rosenbrock", (), x)
    assert g.norm() <= 1e-3, f"the returned x must satisfy ||g|| <= tol; ||g|| = {g.norm():.3g}"


@points(2)
def test_max_steps_returns_the_last_iterate(submission):
    x0 = torch.zeros(1, dtype=F64)
    for max_steps, at in ((7, 1.0), (8, 0.0), (0, 0.0)):
        x, k = submission.run(minimize, "cycle", (), x0, max_steps=max_steps)
        assert k == max_steps, (f"Newton on x^4/4 - x^2 + 2x cycles 0 -> 1 -> 0 forever; with "
                                f"max_steps={max_steps} it must return (x, {max_steps}), got steps={k}")
        close(x, torch.tensor([at], dtype=F64), f"x after {max_steps} steps of the 0 <-> 1 Newton cycle")
    x, k = submission.run(minimize, "rosenbrock", (), vec(-1.2, 1.0), max_steps=3)
    assert k == 3, f"max_steps=3 on Rosenbrock must report 3 steps, got {k}"
    close(x, vec(0.7634296788839405, 0.5828247754969436), "x after 3 Newton steps on Rosenbrock", rtol=1e-9,
          atol=1e-9)


@points(3)
def test_singular_or_ill_conditioned_raises(submission):
    name, mro = submission.run(exception_class)  # the stub defines the class too: run a real call first
    cases = [
        ("diagonal", (vec(1.0, 0.0),), "a singular Hessian diag(1, 0)"),
        ("linear", (vec(1.0, -2.0),), "the all-zero Hessian of a linear loss (its condition number is nan)"),
        ("diagonal", (vec(1.0, 1e-14),), "an ill-conditioned Hessian diag(1, 1e-14) (condition number 1e14)"),
    ]
    for kind, p, what in cases:
        err = submission.raises("SingularHessianError", step, kind, p, vec(0.5, 0.5),
                                msg=f"newton_step must raise SingularHessianError for {what}")
        assert err.is_a("ValueError"), "SingularHessianError must be a subclass of ValueError"
        assert "damping" in err.text.lower(), (
            f"the SingularHessianError message must mention damping (the fix), got: {err.text!r}")
    assert name == "SingularHessianError" and "ValueError" in mro, (
        f"SingularHessianError must be a ValueError subclass, its MRO is {mro}")
    submission.raises("SingularHessianError", minimize, "linear", (vec(1.0, -2.0),), vec(0.5, 0.5),
                      msg="newton_minimize must let SingularHessianError propagate (linear loss, no damping)")


def test_well_conditioned_enough_does_not_raise(submission):
    d = vec(1.0, 1e-10)  # condition number 1e10 <= 1e12
    close(submission.run(step, "diagonal", (d,), vec(0.5, 0.5)), 1 / d,
          "newton_step on diag(1, 1e-10) (condition number 1e10 is allowed): the minimiser 1/d", rtol=1e-8,
          atol=1e-8)


@points(3)
def test_damping_regularises_the_step(submission):
    x = vec(0.5, 0.5)
    d = vec(1.0, 0.0)
    g = d * x - 1
    for damping in (1e-3, 1.0, 1e6):
        close(submission.run(step, "diagonal", (d,), x, damping), x - g / (d + damping),
              f"newton_step on the singular diag(1, 0) with damping={damping:g} (H + damping*I is invertible)",
              **EXACT)
    err = submission.raises("SingularHessianError", step, "diagonal", (vec(2.0, -1.0),), x, 1.0,
                            msg="H = diag(2, -1) with damping=1 makes H + damping*I = diag(3, 0) singular: "
                                "newton_step must raise SingularHessianError (check H + damping*I, not H)")
    assert "damping" in err.text.lower(), f"the message must mention damping, got: {err.text!r}"


def test_damped_minimize_still_converges(submission):
    A, b = spd_quadratic(3, seed=21)
    x, k = submission.run(minimize, "quadratic", (A, b), torch.zeros(3, dtype=F64), damping=1.0)
    close(x, torch.linalg.solve(A, b), "newton_minimize with damping=1 on a quadratic", rtol=1e-9, atol=1e-9)
    assert 1 < k < 100, (f"with damping=1 a quadratic is no longer solved in one step (each step shrinks the "
                         f"error by a factor damping/(lambda + damping)); newton_minimize reported {k} steps: "
                         "pass the damping on to every step")


def test_newton_heads_for_the_saddle_point(submission):
    close(submission.run(step, "saddle", (), vec(0.3, -0.7)), vec(0.0, 0.0),
          "newton_step on x0^2 - x1^2 (indefinite but invertible H: Newton jumps to the saddle at 0; "
          "do not require a positive definite H)", **EXACT)


def test_float32_stays_float32(submission):
    A, b = spd_quadratic(3, seed=5)
    x = seeded_tensor((3,), torch.float32, 6)
    g, H, s, xm, k = submission.run(dtypes, "quadratic", (A, b), x)
    x64 = x.double()
    loose = dict(rtol=1e-4, atol=1e-4)
    close(g, (A @ x64 - b).float(), "the float32 gradient", **loose)
    close(H, A.float(), "the float32 Hessian", **loose)
    close(s, (x64 - torch.linalg.solve(A + 0.5 * torch.eye(3, dtype=F64), A @ x64 - b)).float(),
          "newton_step with damping=0.5 on a float32 x", **loose)
    close(xm, torch.linalg.solve(A, b).float(), "newton_minimize on a float32 x0", **loose)


@points(2)
def test_results_detached_and_x_untouched(submission):
    A, b = spd_quadratic(3, seed=8)
    for requires_grad in (False, True):
        before, after, outputs = submission.run(side_effects, "quadratic", (A, b), seeded_tensor((3,), F64, 9),
                                                requires_grad)
        for fn, (value, flag, no_grad) in after.items():
            close(value, before, f"x after {fn}(loss_fn, x) (x must not be modified)")
            assert flag == requires_grad, (f"{fn} changed x.requires_grad from {requires_grad} to {flag}: "
                                           "work on a detached copy of x")
            assert no_grad, f"{fn} left a .grad on the caller's x: use a copy (and torch.autograd.grad)"
        for what, (req, no_fn) in outputs.items():
            assert not req and no_fn, (f"the {what} must be detached (requires_grad=False, no grad_fn) when x "
                                       f"{'requires' if requires_grad else 'does not require'} grad")


@points(2)
def test_hessian_bytes(submission):
    n7b = 7_000_000_000
    value, kind = submission.run(nbytes, n7b)
    assert kind == "int", f"hessian_bytes must return an int, got {kind}"
    assert value == n7b * n7b * 4, (f"a dense float32 Hessian of a 7B-parameter model needs n^2 * 4 = "
                                    f"{n7b * n7b * 4} bytes (196 EB), got {value}")
    assert submission.run(nbytes, n7b, 2)[0] == n7b * n7b * 2, "hessian_bytes(7e9, 2): bf16 halves it"
    odd = 7_241_732_097  # n^2 is not exactly representable as a float
    assert submission.run(nbytes, odd, 4)[0] == odd * odd * 4, (
        "hessian_bytes must be exact for large n: compute with Python ints, not floats")
    assert submission.run(nbytes, 1000, 8)[0] == 8_000_000, "hessian_bytes(1000, 8) must be 8_000_000"
    assert submission.run(nbytes, 0)[0] == 0, "hessian_bytes(0) must be 0"
    for args in ((-1,), (10, 0)):
        submission.raises(ValueError, nbytes, *args, msg=f"hessian_bytes{args} must raise ValueError")
