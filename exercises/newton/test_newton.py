"""Public tests for newton: run them with `dlkata check newton` (or `pytest exercises/newton`)."""

import torch

from grader.testing import close

F64 = torch.float64
A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=F64)
B = torch.tensor([1.0, -1.0], dtype=F64)


def make_loss(kind):
    if kind == "quadratic":  # 0.5 x^T A x - b^T x: gradient A x - b, Hessian A, minimiser A^-1 b
        return lambda x: 0.5 * x @ (A.to(x.dtype) @ x) - B.to(x.dtype) @ x
    if kind == "singular":  # Hessian diag(1, 0)
        return lambda x: 0.5 * x[0] ** 2 + x[1]
    raise KeyError(kind)


def grad_hess(m, kind, x):
    return m.gradient_and_hessian(make_loss(kind), x)


def step(m, kind, x, damping=0.0):
    return m.newton_step(make_loss(kind), x, damping)


def minimize(m, kind, x0):
    return m.newton_minimize(make_loss(kind), x0)


def nbytes(m, n, b=4):
    return m.hessian_bytes(n, b)


def test_gradient_and_hessian_of_a_quadratic(submission):
    x = torch.tensor([0.5, -2.0], dtype=F64)
    g, H = submission.run(grad_hess, "quadratic", x)
    close(g, A @ x - B, "the gradient of 0.5 x^T A x - b^T x", rtol=1e-12, atol=1e-12)
    close(H, A, "the Hessian of 0.5 x^T A x - b^T x", rtol=1e-12, atol=1e-12)


def test_quadratic_in_one_step(submission):
    x0 = torch.tensor([4.0, 4.0], dtype=F64)
    close(submission.run(step, "quadratic", x0), torch.linalg.solve(A, B), "one Newton step on a quadratic")
    x, steps = submission.run(minimize, "quadratic", x0)
    assert steps == 1, f"newton_minimize should need exactly 1 step on a quadratic, it reported {steps}"


def test_singular_hessian_raises_unless_damped(submission):
    x = torch.tensor([1.0, 1.0], dtype=F64)
    close(submission.run(step, "singular", x, 0.5), torch.tensor([1 - 1 / 1.5, 1 - 1 / 0.5], dtype=F64),
          "newton_step with damping=0.5 on a singular Hessian diag(1, 0)")
    err = submission.raises("SingularHessianError", step, "singular", x,
                            msg="newton_step must raise SingularHessianError for the singular Hessian diag(1, 0)")
    assert "damping" in err.text.lower(), f"the message should mention damping, got {err.text!r}"


def test_hessian_bytes_of_a_7b_model(submission):
    value = submission.run(nbytes, 7_000_000_000)
    assert value == 196 * 10 ** 18, f"a float32 Hessian of 7e9 parameters needs 1.96e20 bytes, got {value}"
