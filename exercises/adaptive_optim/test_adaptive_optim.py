"""Public tests for ``adaptive_optim`` (run them with ``dlkata check adaptive_optim``).

The hidden tests go further: 120-step float64 trajectories against torch for every optimiser, with and
without weight decay, several param groups, lr changes, grads that are None, closures, state_dict resume,
bad hyper-parameters and float32 state.
"""

import torch

from grader.testing import close

G = torch.tensor([0.5, -2.0, 1e-3, 4.0], dtype=torch.float64)  # a constant gradient: loss = (G * p).sum()


# -- probes (they run your code and return plain data) ------------------------------------------------

def constant_gradient_steps(m, name, kwargs, steps):
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = getattr(m, name)([p], **kwargs)
    moves = []
    for _ in range(steps):
        p.grad = None
        (G * p).sum().backward()
        before = p.detach().clone()
        opt.step()
        moves.append(p.detach() - before)
    return moves


def short_run(m, name, kwargs, init, target, steps):
    p = init.clone().requires_grad_(True)
    opt = getattr(m, name)([p], **kwargs)
    for _ in range(steps):
        p.grad = None
        ((p - target) ** 2 + 0.1 * p ** 4).sum().backward()
        opt.step()
    return p.detach()


def closure_and_none_grad(m):
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    untouched = torch.ones(2, dtype=torch.float64, requires_grad=True)  # never gets a gradient
    opt = m.Adam([p, untouched], lr=0.1, weight_decay=0.1, decoupled_weight_decay=True)

    def closure():
        p.grad = None
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    returned = opt.step(closure)
    return float(returned.detach()) if isinstance(returned, torch.Tensor) else returned, untouched.detach()


def build(m, name, kwargs):
    getattr(m, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    return True


# -- tests ------------------------------------------------------------------------------------------

def test_adam_first_step_is_lr_times_sign_of_grad(submission):
    (move,) = submission.run(constant_gradient_steps, "Adam", {"lr": 0.01}, 1)
    # bias correction: m_hat = g and v_hat = g^2 after one step, so the step is lr * g / (|g| + eps)
    close(move, -0.01 * G / (G.abs() + 1e-8), "Adam's first step (it must not depend on |g|: bias correction)")


def test_adagrad_accumulates_squared_gradients(submission):
    moves = submission.run(constant_gradient_steps, "Adagrad", {"lr": 0.1}, 3)
    for t, move in enumerate(moves, start=1):
        # with a constant g the sum after t steps is t * g^2: the step shrinks like 1 / sqrt(t)
        close(move, -0.1 * G / ((t * G * G).sqrt() + 1e-10), f"Adagrad's step {t} under a constant gradient")


def test_all_four_match_torch_for_20_steps(submission):
    init = torch.tensor([[0.3, -1.2, 2.0], [0.7, 0.0, -0.4]], dtype=torch.float64)
    target = torch.tensor([[1.0, 0.5, -1.0], [0.2, -0.3, 0.8]], dtype=torch.float64)
    cases = [("Adagrad", torch.optim.Adagrad, {"lr": 0.1, "weight_decay": 0.1}),
             ("RMSprop", torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9}),
             ("Adadelta", torch.optim.Adadelta, {"rho": 0.95, "eps": 1e-4}),
             ("Adam", torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1})]
    for name, reference, kwargs in cases:
        want = short_run(type("torch_optim", (), {name: reference}), name, kwargs, init, target, 20)
        close(submission.run(short_run, name, kwargs, init, target, 20), want, f"{name}({kwargs}) after 20 steps")


def test_closure_loss_is_returned_and_grad_none_is_skipped(submission):
    returned, untouched = submission.run(closure_and_none_grad)
    assert returned == 3.0, f"step(closure) must return the closure's loss (3.0), got {returned}"
    close(untouched, torch.ones(2, dtype=torch.float64), "a parameter whose grad is None (it must not move)")


def test_negative_lr_raises_value_error(submission):
    for name in ("Adagrad", "RMSprop", "Adadelta", "Adam"):
        submission.raises(ValueError, build, name, {"lr": -0.1}, msg=f"{name}(lr=-0.1) must raise ValueError")
