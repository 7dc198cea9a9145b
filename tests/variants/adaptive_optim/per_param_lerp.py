"""Per-parameter, out-of-place: every update is a fresh tensor copied back into the parameter, moving
averages use ``torch.lerp``, Adam folds the bias corrections into the step size and the denominator
(PyTorch's own arrangement), Adadelta takes one square root of a ratio, and Adam's step count is a
0-d int64 tensor.

Each class loops over the parameters of a group one at a time; the decayed gradient is ``grad + wd * p``
as a new tensor, state is created lazily with ``torch.zeros_like``, and the result is written with
``p.copy_``. ``s = alpha * s + (1 - alpha) * g^2`` is written ``s.lerp(g * g, 1 - alpha)``.
Hyper-parameters are checked against a table of allowed ranges.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import Tensor

_NON_NEGATIVE = ("lr", "eps", "weight_decay")


def _check(**values) -> None:
    for name, value in values.items():
        if name in _NON_NEGATIVE and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        if name == "rho" and not (0 <= value < 1):
            raise ValueError(f"rho must be in [0, 1), got {value}")
        if name == "betas" and not all(0 <= b < 1 for b in value):
            raise ValueError(f"betas must lie in [0, 1), got {value}")


def _run_closure(closure):
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def _decayed(p: Tensor, wd: float) -> Tensor:
    return p.grad + wd * p if wd else p.grad


def _zeros(state: dict, p: Tensor, *names: str) -> None:
    for name in names:
        state.setdefault(name, torch.zeros_like(p))


class Adagrad(torch.optim.Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = _run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                _zeros(state, p, "sum_sq")
                g = _decayed(p, group["weight_decay"])
                state["sum_sq"] = state["sum_sq"] + g * g
                p.copy_(p - group["lr"] * g / (torch.sqrt(state["sum_sq"]) + group["eps"]))
        return loss


class RMSprop(torch.optim.Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = _run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                _zeros(state, p, "ms")
                g = _decayed(p, group["weight_decay"])
                state["ms"] = torch.lerp(state["ms"], g * g, 1 - group["alpha"])
                p.copy_(p - group["lr"] * g / (state["ms"].sqrt() + group["eps"]))
        return loss


class Adadelta(torch.optim.Optimizer):
    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        _check(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = _run_closure(closure)
        for group in self.param_groups:
            rho, eps = group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                _zeros(state, p, "eg2", "edx2")
                g = _decayed(p, group["weight_decay"])
                state["eg2"] = torch.lerp(state["eg2"], g * g, 1 - rho)
                dx = torch.sqrt((state["edx2"] + eps) / (state["eg2"] + eps)) * g
                state["edx2"] = torch.lerp(state["edx2"], dx * dx, 1 - rho)
                p.copy_(p - group["lr"] * dx)
        return loss


class Adam(torch.optim.Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        _check(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = _run_closure(closure)
        for group in self.param_groups:
            (beta1, beta2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "count" not in state:
                    state["count"] = torch.tensor(0, dtype=torch.int64)
                    _zeros(state, p, "first", "second")
                state["count"] = state["count"] + 1
                t = int(state["count"])
                if decoupled:
                    g, x = p.grad, p * (1 - lr * wd)
                else:
                    g, x = _decayed(p, wd), p
                state["first"] = torch.lerp(state["first"], g, 1 - beta1)
                state["second"] = torch.lerp(state["second"], g * g, 1 - beta2)
                step_size = lr / (1 - beta1 ** t)
                denom = state["second"].sqrt() / math.sqrt(1 - beta2 ** t) + eps
                p.copy_(x - step_size * state["first"] / denom)
        return loss
