"""Multi-tensor: each step gathers a group's parameters that have a gradient into lists and updates them
with ``torch._foreach_*`` ops, with a shared base class, a plain Python int as Adam's step count and the
bias corrections applied to m and v literally as written in the statement.

Validation and the closure call live in a small base class; the per-optimiser ``_update`` receives
the lists (params, grads, state dicts) of one group. L2 decay builds new gradient tensors with
``_foreach_add(grads, params, alpha=wd)`` so ``.grad`` is never modified. State keys are ``acc``,
``avg_sq``, ``avg_dx``, ``m``, ``v`` and ``t``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor


class _Base(torch.optim.Optimizer):
    def __init__(self, params, defaults: dict) -> None:
        for key in ("lr", "eps", "weight_decay"):
            if key in defaults and not defaults[key] >= 0.0:
                raise ValueError(f"invalid {key}: {defaults[key]}")
        for key in ("rho",):
            if key in defaults and not 0.0 <= defaults[key] < 1.0:
                raise ValueError(f"invalid {key}: {defaults[key]}")
        if "betas" in defaults:
            for i, b in enumerate(defaults["betas"]):
                if not 0.0 <= b < 1.0:
                    raise ValueError(f"invalid beta{i + 1}: {b}")
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list, grads: list, states: list) -> None:
        raise NotImplementedError

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not params:
                    continue
                grads = [p.grad for p in params]
                if group["weight_decay"] != 0 and not group.get("decoupled_weight_decay", False):
                    grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
                states = [self.state[p] for p in params]
                self._update(group, params, grads, states)
        return loss


def _buffers(states: list, params: list, *names: str) -> list[list[Tensor]]:
    for st, p in zip(states, params):
        for name in names:
            if name not in st:
                st[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return [[st[name] for st in states] for name in names]


class Adagrad(_Base):
    def __init__(self, params: Iterable, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    def _update(self, group, params, grads, states):
        (acc,) = _buffers(states, params, "acc")
        torch._foreach_addcmul_(acc, grads, grads)
        denom = torch._foreach_sqrt(acc)
        torch._foreach_add_(denom, group["eps"])
        torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])


class RMSprop(_Base):
    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay))

    def _update(self, group, params, grads, states):
        (avg,) = _buffers(states, params, "avg_sq")
        alpha = group["alpha"]
        torch._foreach_mul_(avg, alpha)
        torch._foreach_addcmul_(avg, grads, grads, value=1 - alpha)
        denom = torch._foreach_sqrt(avg)
        torch._foreach_add_(denom, group["eps"])
        torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])


class Adadelta(_Base):
    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, group, params, grads, states):
        avg_sq, avg_dx = _buffers(states, params, "avg_sq", "avg_dx")
        rho, eps = group["rho"], group["eps"]
        torch._foreach_mul_(avg_sq, rho)
        torch._foreach_addcmul_(avg_sq, grads, grads, value=1 - rho)
        num = torch._foreach_sqrt(torch._foreach_add(avg_dx, eps))
        den = torch._foreach_sqrt(torch._foreach_add(avg_sq, eps))
        dx = torch._foreach_mul(torch._foreach_div(num, den), grads)
        torch._foreach_mul_(avg_dx, rho)
        torch._foreach_addcmul_(avg_dx, dx, dx, value=1 - rho)
        torch._foreach_add_(params, dx, alpha=-group["lr"])


class Adam(_Base):
    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, group, params, grads, states):
        m, v = _buffers(states, params, "m", "v")
        b1, b2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        if group["decoupled_weight_decay"] and wd != 0:
            torch._foreach_mul_(params, 1 - lr * wd)
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, grads, alpha=1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        for st, p, mi, vi in zip(states, params, m, v):  # the step count is per parameter
            st["t"] = st.get("t", 0) + 1
            t = st["t"]
            m_hat = mi / (1 - b1 ** t)
            v_hat = vi / (1 - b2 ** t)
            p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
