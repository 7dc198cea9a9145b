"""Adam counts steps per param group, not per parameter: a parameter that skipped steps gets the wrong bias correction.

Mutant of the reference solution (one deliberate mistake). The Ada family by hand: Adagrad, RMSprop, Adadelta and Adam/AdamW as ``torch.optim.Optimizer`` subclasses.

All four scale each coordinate's step by a running measure of that coordinate's squared gradients. For one
parameter ``p`` with gradient ``g`` (after L2 decay: ``g = g + weight_decay * p``), elementwise:

    Adagrad    s  = s + g^2                                  (the sum of every g^2 so far)
               p  = p - lr * g / (sqrt(s) + eps)

    RMSprop    s  = alpha * s + (1 - alpha) * g^2            (an exponential moving average instead)
               p  = p - lr * g / (sqrt(s) + eps)

    Adadelta   s  = rho * s + (1 - rho) * g^2
               dx = sqrt(u + eps) / sqrt(s + eps) * g        (units of p: RMS of past updates / RMS of g)
               u  = rho * u + (1 - rho) * dx^2               (the moving average of squared updates)
               p  = p - lr * dx

    Adam       t  = t + 1
               m  = beta1 * m + (1 - beta1) * g              (first moment)
               v  = beta2 * v + (1 - beta2) * g^2            (second moment)
               m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)        (bias correction: m, v start at 0)
               p  = p - lr * m_hat / (sqrt(v_hat) + eps)

AdamW (``decoupled_weight_decay=True``) does not add ``weight_decay * p`` to ``g``; it shrinks the weights
directly, ``p = p * (1 - lr * weight_decay)``, before the Adam update, so the decay is not rescaled by
``1 / sqrt(v_hat)``.

Every buffer (s, u, m, v) has the parameter's shape and dtype; the step count ``t`` is per parameter and
lives in ``self.state[p]`` like the buffers, so ``state_dict()`` / ``load_state_dict()`` (inherited) carry it.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor


def _check_nonnegative(name: str, value: float) -> None:
    if not value >= 0.0:  # `not >=` also rejects NaN
        raise ValueError(f"Invalid {name}: {value} (must be >= 0)")


def _check_unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}: {value} (must be in [0, 1))")


class _ElementwiseOptimizer(torch.optim.Optimizer):
    """The loop every optimiser here shares; subclasses write ``_init_state`` and ``_update`` for one tensor."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter that has a gradient; returns ``closure()`` (None without one)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure runs forward and backward: it needs autograd
                loss = closure()
        for group in self.param_groups:
            group["t"] = group.get("t", 0) + 1
            for p in group["params"]:
                if p.grad is None:  # no gradient this step: leave the value and the state alone
                    continue
                state = self.state[p]
                if not state:
                    self._init_state(state, p)
                grad = p.grad
                if group["weight_decay"] != 0 and not group.get("decoupled_weight_decay", False):
                    grad = grad.add(p, alpha=group["weight_decay"])  # L2: a new tensor, p.grad stays intact
                self._update(p, grad, state, group)
        return loss


class Adagrad(_ElementwiseOptimizer):
    """Adagrad: divide by the root of the *sum* of all squared gradients (matches ``torch.optim.Adagrad``)."""

    def __init__(self, params: Iterable, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        _check_nonnegative("learning rate", lr)
        _check_nonnegative("eps", eps)
        _check_nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    def _init_state(self, state: dict, p: Tensor) -> None:
        state["sum"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # like p

    def _update(self, p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        s = state["sum"]
        s.addcmul_(grad, grad)                                   # s += g^2
        p.addcdiv_(grad, s.sqrt().add_(group["eps"]), value=-group["lr"])


class RMSprop(_ElementwiseOptimizer):
    """RMSprop: divide by the root of a moving average of squared gradients (``torch.optim.RMSprop``)."""

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        _check_nonnegative("learning rate", lr)
        _check_nonnegative("alpha", alpha)
        _check_nonnegative("eps", eps)
        _check_nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay))

    def _init_state(self, state: dict, p: Tensor) -> None:
        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        s, alpha = state["square_avg"], group["alpha"]
        s.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)     # s = alpha s + (1 - alpha) g^2
        p.addcdiv_(grad, s.sqrt().add_(group["eps"]), value=-group["lr"])


class Adadelta(_ElementwiseOptimizer):
    """Adadelta: RMS of past updates over RMS of gradients, so no unit mismatch (``torch.optim.Adadelta``)."""

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        _check_nonnegative("learning rate", lr)
        _check_unit_interval("rho", rho)
        _check_nonnegative("eps", eps)
        _check_nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _init_state(self, state: dict, p: Tensor) -> None:
        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # E[g^2]
        state["acc_delta"] = torch.zeros_like(p, memory_format=torch.preserve_format)   # E[dx^2]

    def _update(self, p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        s, u, rho, eps = state["square_avg"], state["acc_delta"], group["rho"], group["eps"]
        s.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        delta = (u + eps).sqrt_().div_((s + eps).sqrt_()).mul_(grad)   # dx, shaped like p
        u.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-group["lr"])


class Adam(_ElementwiseOptimizer):
    """Adam with bias correction; ``decoupled_weight_decay=True`` is AdamW (``torch.optim.Adam`` / ``AdamW``)."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        _check_nonnegative("learning rate", lr)
        _check_nonnegative("eps", eps)
        _check_unit_interval("beta1 (betas[0])", betas[0])
        _check_unit_interval("beta2 (betas[1])", betas[1])
        _check_nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=bool(decoupled_weight_decay)))

    def _init_state(self, state: dict, p: Tensor) -> None:
        state["step"] = 0                                                   # per parameter, saved with the state
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)     # m
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # v

    def _update(self, p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if group["decoupled_weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])                          # AdamW: shrink p itself
        state["step"] += 1
        t, m, v = group["t"], state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)                                            # m = b1 m + (1 - b1) g
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)                 # v = b2 v + (1 - b2) g^2
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        denom = (v / bias2).sqrt_().add_(eps)                               # sqrt(v_hat) + eps
        p.addcdiv_(m, denom, value=-lr / bias1)                             # p -= lr m_hat / denom
