"""The Ada family by hand: Adagrad, RMSprop, Adadelta and Adam (with AdamW's decoupled weight decay).

Read README.md first (``dlkata show adaptive_optim``). Replace each ``raise NotImplementedError`` with your
code; check with ``dlkata check adaptive_optim``. Each class subclasses ``torch.optim.Optimizer`` and must
follow torch's optimiser of the same name. Forbidden: every torch optimiser class, ``torch.optim._functional``
and the per-optimiser functional helpers (``torch.optim.adam.adam``, ...), and the fused kernels
(``torch._fused_*``). ``torch._foreach_*`` ops are allowed.

Common contract of every class below:

* ``step(closure=None)``: one update of every parameter whose ``.grad`` is not None; a parameter whose
  ``.grad`` is None is left alone (its value and its state do not change). If ``closure`` is given, call it
  once (with autograd enabled: it re-computes the loss and calls ``backward``) before updating, and return
  what it returned; without a closure return None.
* Hyper-parameters live in the param groups (``self.param_groups[i]["lr"]``, ...) under the constructor's
  argument names: a group may override any of them, and changing ``group["lr"]`` between steps (what a
  learning-rate scheduler does) takes effect at the next step.
* All state lives in ``self.state[p]`` (key names are up to you), buffers in the parameter's dtype, so the
  inherited ``state_dict()`` / ``load_state_dict()`` resume the exact same trajectory.
* Negative ``lr``, ``eps`` or ``weight_decay``, and ``rho`` or either beta outside [0, 1), raise ValueError.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor


class Adagrad(torch.optim.Optimizer):
    """Like ``torch.optim.Adagrad`` (lr_decay=0, initial_accumulator_value=0)::

        g = grad + weight_decay * p
        s = s + g * g                      # s starts at 0
        p = p - lr * g / (sqrt(s) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        raise NotImplementedError("Adagrad.__init__")

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Adagrad update; returns ``closure()`` when a closure is given, else None."""
        raise NotImplementedError("Adagrad.step")


class RMSprop(torch.optim.Optimizer):
    """Like ``torch.optim.RMSprop`` (momentum=0, centered=False)::

        g = grad + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        p = p - lr * g / (sqrt(s) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        raise NotImplementedError("RMSprop.__init__")

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One RMSprop update; returns ``closure()`` when a closure is given, else None."""
        raise NotImplementedError("RMSprop.step")


class Adadelta(torch.optim.Optimizer):
    """Like ``torch.optim.Adadelta``::

        g  = grad + weight_decay * p
        s  = rho * s + (1 - rho) * g * g
        dx = sqrt(u + eps) / sqrt(s + eps) * g      # eps inside both roots here
        u  = rho * u + (1 - rho) * dx * dx
        p  = p - lr * dx
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        raise NotImplementedError("Adadelta.__init__")

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Adadelta update; returns ``closure()`` when a closure is given, else None."""
        raise NotImplementedError("Adadelta.step")


class Adam(torch.optim.Optimizer):
    """Like ``torch.optim.Adam``; with ``decoupled_weight_decay=True`` like ``torch.optim.AdamW``::

        t = t + 1                                  # per parameter
        L2 (default):   g = grad + weight_decay * p
        decoupled:      g = grad;  p = p * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        raise NotImplementedError("Adam.__init__")

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Adam (or AdamW) update; returns ``closure()`` when a closure is given, else None."""
        raise NotImplementedError("Adam.step")
