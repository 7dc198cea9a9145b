"""torch.func derivatives and an SVD solve: grad/hessian instead of autograd.grad, singular values for the
condition check, and a minimiser that reuses each iteration's gradient and Hessian for its step.

The gradient is ``torch.func.grad(loss_fn)`` and the Hessian ``torch.func.hessian(loss_fn)`` (forward
over reverse mode: the sandbox must be able to load forward-mode AD), which gives the all-zero Hessian
of a linear loss with no special case. ``newton_step`` takes the SVD of
``H + damping * I``, refuses it when the smallest singular value is 0 or sigma_max/sigma_min is not
<= 1e12 (this also catches NaN), and applies the pseudo-inverse ``V diag(1/s) U^T`` to g.
``hessian_bytes`` squares with ``**``.
"""

import torch
from torch import Tensor


class SingularHessianError(ValueError):
    """Raised by ``newton_step`` when H + damping * I is singular or too ill-conditioned (keep this class)."""


def hessian_bytes(num_params: int, bytes_per_element: int = 4) -> int:
    if num_params < 0:
        raise ValueError(f"num_params must be >= 0, got {num_params}")
    if bytes_per_element < 1:
        raise ValueError(f"bytes_per_element must be >= 1, got {bytes_per_element}")
    return int(num_params) ** 2 * int(bytes_per_element)


def gradient_and_hessian(loss_fn, x: Tensor) -> tuple[Tensor, Tensor]:
    point = x.detach().clone()
    g = torch.func.grad(loss_fn)(point)
    H = torch.func.hessian(loss_fn)(point)
    return g.detach(), H.detach()


def _solve_checked(H: Tensor, g: Tensor, damping: float) -> Tensor:
    n = g.shape[0]
    M = H + damping * torch.eye(n, dtype=H.dtype, device=H.device)
    U, s, Vh = torch.linalg.svd(M)
    smax, smin = s.max(), s.min()
    if smin == 0 or not bool(smax / smin <= 1e12):
        raise SingularHessianError(
            f"H + damping*I is singular or ill-conditioned (sigma_max={smax.item():.3g}, "
            f"sigma_min={smin.item():.3g}); use a larger damping")
    return Vh.mT @ ((U.mT @ g) / s)


def newton_step(loss_fn, x: Tensor, damping: float = 0.0) -> Tensor:
    g, H = gradient_and_hessian(loss_fn, x)
    return x.detach() - _solve_checked(H, g, damping)


def newton_minimize(loss_fn, x0: Tensor, damping: float = 0.0, tol: float = 1e-10,
                    max_steps: int = 100) -> tuple[Tensor, int]:
    x = x0.detach().clone()
    taken = 0
    while taken < max_steps:
        g, H = gradient_and_hessian(loss_fn, x)
        if torch.linalg.vector_norm(g) <= tol:
            break
        x = x - _solve_checked(H, g, damping)
        taken += 1
    return x, taken
