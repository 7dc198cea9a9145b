"""Hidden tests for ``softmax``. Probes run in the sandbox and return raw outputs; every verdict is here."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.testing import close, float_dtypes, points, seeded_tensor, shapes

FUNCTIONS = ("softmax", "log_softmax")


# -- probes (executed against the submission, return plain data) ---------------------------------------

def call(m, name, x, dim):
    return getattr(m, name)(x, dim)


def module_forward(m, x, dim):
    layer = m.Softmax(dim)
    y = layer(x)
    return y, len(list(layer.parameters())), isinstance(layer, torch.nn.Module)


def function_forward(m, x, dim):
    return m.SoftmaxFunction.apply(x, dim)


def grad_fn_present(m, x, dim):
    x = x.clone().requires_grad_(True)
    return m.softmax(x, dim).grad_fn is not None, m.Softmax(dim)(x).grad_fn is not None


def gradient(m, how, x, dim, weights):
    x = x.clone().requires_grad_(True)
    if how == "function":
        y = m.SoftmaxFunction.apply(x, dim)
    else:
        y = getattr(m, how)(x, dim)
    (y * weights).sum().backward()
    return x.grad


def autograd_function_is_custom(m, x, dim):
    x = x.clone().requires_grad_(True)
    y = m.SoftmaxFunction.apply(x, dim)
    return type(y.grad_fn).__name__


# -- reference (the test process's own torch) ------------------------------------------------------------

def expected(name, x, dim):
    return getattr(torch, name)(x, dim)


# -- tests ------------------------------------------------------------------------------------------------

@points(2)
@given(shape=shapes(1, 4, 1, 5), data=st.data(), dtype=float_dtypes())
def test_values_any_shape_dim_dtype(submission, shape, data, dtype):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = seeded_tensor(shape, dtype, seed=len(shape) + dim, scale=3.0)
    for name in FUNCTIONS:
        close(submission.run(call, name, x, dim), expected(name, x, dim), f"{name}(x, dim={dim}) for shape {shape}")


def test_default_dim_is_last(submission):
    x = seeded_tensor((3, 4, 5), torch.float32)
    close(submission.run(call, "softmax", x, -1), torch.softmax(x, -1), "softmax(x) with the default dim")


@points(2)
def test_extreme_logits_stay_finite(submission):
    x = torch.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4 + 1, -1e4 + 2], [5e3, 5e3, 5e3]])
    for name in FUNCTIONS:
        y = submission.run(call, name, x, -1)
        assert torch.isfinite(y).all(), (
            f"{name} must stay finite for logits of +-1e4 (subtract the maximum before exp); got {y}")
        close(y, expected(name, x, -1), f"{name} of logits of +-1e4")


def test_log_softmax_does_not_take_log_of_underflow(submission):
    x = torch.tensor([0.0, -1000.0])
    y = submission.run(call, "log_softmax", x, -1)
    close(y, torch.tensor([0.0, -1000.0]), "log_softmax([0., -1000.]) (log of an underflowed 0 is -inf)")


def test_rows_sum_to_one_along_dim(submission):
    x = seeded_tensor((4, 6, 3), torch.float64)
    y = submission.run(call, "softmax", x, 1)
    close(y.sum(1), torch.ones(4, 3, dtype=torch.float64), "softmax(x, dim=1) summed over dim 1")


def test_empty_reduction_dim_gives_empty_result(submission):
    x = torch.empty(3, 0)
    for name in FUNCTIONS:
        y = submission.run(call, name, x, 1)
        assert tuple(y.shape) == (3, 0), f"{name} of an empty dim must be empty of shape (3, 0), got {tuple(y.shape)}"


@points(2)
def test_module_matches_function_and_has_no_parameters(submission):
    x = seeded_tensor((2, 3, 4), torch.float32)
    for dim in (0, -1, 1):
        y, n_params, is_module = submission.run(module_forward, x, dim)
        assert is_module, "Softmax must be a torch.nn.Module"
        assert n_params == 0, f"Softmax has {n_params} parameters; like nn.Softmax it must have none"
        close(y, torch.softmax(x, dim), f"Softmax({dim})(x)")


def test_outputs_carry_grad_fn(submission):
    fn_has, module_has = submission.run(grad_fn_present, seeded_tensor((2, 5)), -1)
    assert fn_has, "softmax(x) of an x that requires grad must be part of the graph (it has no grad_fn)"
    assert module_has, "Softmax()(x) of an x that requires grad must be part of the graph (it has no grad_fn)"


@points(2)
@given(shape=shapes(1, 3, 1, 5), data=st.data())
def test_gradients_match_autograd_in_float64(submission, shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = seeded_tensor(shape, torch.float64, seed=1, scale=2.0)
    w = seeded_tensor(shape, torch.float64, seed=2)
    for how, ref in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax), ("function", torch.softmax)):
        xr = x.clone().requires_grad_(True)
        (ref(xr, dim) * w).sum().backward()
        what = "SoftmaxFunction.backward" if how == "function" else f"the gradient of {how}"
        close(submission.run(gradient, how, x, dim, w), xr.grad, f"{what} (dim={dim}, shape {shape})")


def test_function_forward_values(submission):
    x = seeded_tensor((3, 7), torch.float32, scale=5.0)
    for dim in (0, 1, -1):
        close(submission.run(function_forward, x, dim), torch.softmax(x, dim), f"SoftmaxFunction.apply(x, {dim})")


def test_function_uses_its_own_backward(submission):
    node = submission.run(autograd_function_is_custom, seeded_tensor((2, 3)), -1)
    assert "Backward" in node and "SoftmaxFunction" in node, (
        f"SoftmaxFunction.apply must record its own backward node in the graph, found {node}")


def test_half_precision_keeps_dtype(submission):
    x = seeded_tensor((4, 8), torch.bfloat16, scale=4.0)
    for name in FUNCTIONS:
        y = submission.run(call, name, x, -1)
        close(y, expected(name, x.double(), -1).to(torch.bfloat16), f"{name} in bfloat16", rtol=2e-2, atol=2e-2)
