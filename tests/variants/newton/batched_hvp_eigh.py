"""Batched Hessian-vector products, a symmetric eigenvalue condition check, and a float64 solve cast
back to x's dtype.

The whole Hessian comes from one ``autograd.grad(g, x, grad_outputs=I, is_grads_batched=True)`` call
(the n Hessian-vector products H e_i at once) instead of a loop over rows; a gradient with no graph
(linear loss) or an unused input gives a zero Hessian. ``newton_step`` symmetrises H + damping * I, takes
``eigvalsh`` (for a symmetric matrix the 2-norm condition number is max|lambda| / min|lambda|), and
solves with ``torch.linalg.solve`` in float64. ``newton_minimize`` is a ``for`` loop that calls
``newton_step`` after its own gradient check.
"""

import torch
from torch import Tensor


class SingularHessianError(ValueError):
    """Raised by ``newton_step`` when H + damping * I is singular or too ill-conditioned (keep this class)."""


def hessian_bytes(num_params: int, bytes_per_element: int = 4) -> int:
    if num_params < 0 or bytes_per_element < 1:
        raise ValueError("need num_params >= 0 and bytes_per_element >= 1")
    return num_params * num_params * bytes_per_element


def _grad_with_graph(loss_fn, x: Tensor):
    leaf = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(leaf)
        (g,) = torch.autograd.grad(loss, leaf, create_graph=True)
    return leaf, g


def gradient_and_hessian(loss_fn, x: Tensor) -> tuple[Tensor, Tensor]:
    leaf, g = _grad_with_graph(loss_fn, x)
    n = leaf.shape[0]
    H = None
    if g.requires_grad and n > 0:
        eye = torch.eye(n, dtype=leaf.dtype, device=leaf.device)
        with torch.enable_grad():
            (H,) = torch.autograd.grad(g, leaf, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
    if H is None:
        H = leaf.new_zeros((n, n))
    return g.detach(), H.detach()


def newton_step(loss_fn, x: Tensor, damping: float = 0.0) -> Tensor:
    g, H = gradient_and_hessian(loss_fn, x)
    M = H.double() + damping * torch.eye(H.shape[0], dtype=torch.float64, device=H.device)
    lam = torch.linalg.eigvalsh(0.5 * (M + M.mT)).abs()
    big, small = lam.max().item(), lam.min().item()
    if small == 0.0 or not big / small <= 1e12:
        raise SingularHessianError(
            f"cannot take a Newton step: H + damping*I has condition {big / small if small else float('inf'):.3g}"
            " (singular or above 1e12); increase damping")
    p = torch.linalg.solve(M, g.double())
    return (x.detach().double() - p).to(x.dtype)


def newton_minimize(loss_fn, x0: Tensor, damping: float = 0.0, tol: float = 1e-10,
                    max_steps: int = 100) -> tuple[Tensor, int]:
    x = x0.detach().clone()
    for k in range(max_steps):
        _, g = _grad_with_graph(loss_fn, x)
        if g.detach().norm() <= tol:
            return x, k
        x = newton_step(loss_fn, x, damping)
    return x, max_steps
