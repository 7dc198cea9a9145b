"""Newton's method with exact autograd derivatives, and the memory a dense Hessian would need.

Read README.md first (``dlkata show newton``). Replace each ``raise NotImplementedError`` with your code;
check with ``dlkata check newton``. Forbidden: ``torch.optim`` (all of it).
"""

import torch
from torch import Tensor


class SingularHessianError(ValueError):
    """Raised by ``newton_step`` when H + damping * I is singular or too ill-conditioned (keep this class)."""


def hessian_bytes(num_params: int, bytes_per_element: int = 4) -> int:
    """Bytes needed to store a dense ``num_params x num_params`` Hessian, as an exact Python ``int``.

    ValueError if ``num_params < 0`` or ``bytes_per_element < 1``.
    """
    raise NotImplementedError("hessian_bytes")


def gradient_and_hessian(loss_fn, x: Tensor) -> tuple[Tensor, Tensor]:
    """Exact gradient ``(n,)`` and Hessian ``(n, n)`` of the scalar ``loss_fn`` at the 1-D tensor ``x``.

    Computed with autograd (no finite differences); both results have x's dtype and are detached.
    ``x`` itself is not modified (not even its ``requires_grad`` flag or ``.grad``). A linear loss has an
    all-zero Hessian.
    """
    raise NotImplementedError("gradient_and_hessian")


def newton_step(loss_fn, x: Tensor, damping: float = 0.0) -> Tensor:
    """``x - (H + damping * I)^{-1} g`` at x: a new detached tensor of x's dtype; x is not modified.

    Raises ``SingularHessianError`` (its message mentions damping) when H + damping * I is singular or its
    2-norm condition number exceeds 1e12.
    """
    raise NotImplementedError("newton_step")


def newton_minimize(loss_fn, x0: Tensor, damping: float = 0.0, tol: float = 1e-10,
                    max_steps: int = 100) -> tuple[Tensor, int]:
    """Newton steps from ``x0`` until ``||g||_2 <= tol``; returns ``(x, steps_taken)``.

    Checks the gradient before each step, so an ``x0`` that already satisfies the tolerance gives
    ``(x0's value, 0)``. After ``max_steps`` steps it returns ``(x, max_steps)`` whatever the gradient.
    ``x`` is detached with x0's dtype; ``x0`` is not modified; ``SingularHessianError`` propagates.
    """
    raise NotImplementedError("newton_minimize")
