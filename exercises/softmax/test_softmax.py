"""Public tests for softmax: run them with `dlkata check softmax` (or `pytest exercises/softmax`)."""

import torch

from grader.testing import close


def forward(m, name, x, dim):
    return getattr(m, name)(x, dim)


def module_and_grad(m, x):
    x = x.clone().requires_grad_(True)
    y = m.Softmax(dim=-1)(x)
    y[..., 0].sum().backward()
    return y, x.grad, y.grad_fn is not None


def test_softmax_of_a_small_row(submission):
    x = torch.tensor([[1.0, 2.0, 3.0]])
    close(submission.run(forward, "softmax", x, -1), torch.softmax(x, -1), "softmax([[1., 2., 3.]])")


def test_large_logits_do_not_overflow(submission):
    x = torch.tensor([1000.0, 1000.0])
    y = submission.run(forward, "softmax", x, -1)
    assert torch.isfinite(y).all(), f"softmax([1000., 1000.]) must be [0.5, 0.5], got {y} (subtract the max)"


def test_log_softmax_matches_torch(submission):
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    close(submission.run(forward, "log_softmax", x, 0), torch.log_softmax(x, 0), "log_softmax(x, dim=0)")


def test_module_builds_the_graph(submission):
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, grad, has_grad_fn = submission.run(module_and_grad, x)
    assert has_grad_fn, "Softmax()(x) must have a grad_fn when x requires grad"
    xr = x.clone().requires_grad_(True)
    torch.softmax(xr, -1)[..., 0].sum().backward()
    close(grad, xr.grad, "the gradient through Softmax()")
