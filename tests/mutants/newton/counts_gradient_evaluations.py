"""newton_minimize reports gradient evaluations (steps + 1) instead of steps taken."""


import torch
from torch import Tensor

MAX_CONDITION = 1e12


class SingularHessianError(ValueError):
    """H + damping * I is singular or too ill-conditioned for a Newton step."""


def hessian_bytes(num_params: int, bytes_per_element: int = 4) -> int:
    """Bytes of a dense num_params x num_params Hessian: n^2 * bytes (exact Python int)."""
    if num_params < 0 or bytes_per_element < 1:
        raise ValueError("num_params must be >= 0 and bytes_per_element >= 1")
    return num_params * num_params * bytes_per_element


def gradient_and_hessian(loss_fn, x: Tensor) -> tuple[Tensor, Tensor]:
    """Exact gradient (n,) and Hessian (n, n) of the scalar loss_fn at the 1-D x, by autograd, detached."""
    x = x.detach().clone().requires_grad_(True)  # our own leaf: the caller's x is left alone
    loss = loss_fn(x)  # ()
    (g,) = torch.autograd.grad(loss, x, create_graph=True)  # (n,), still part of the graph
    rows = []
    for i in range(x.numel()):
        if g.requires_grad:  # g is constant (linear loss): its rows are zero
            (row,) = torch.autograd.grad(g[i], x, retain_graph=True, allow_unused=True)
        else:
            row = None
        rows.append(torch.zeros_like(x) if row is None else row)  # (n,) each
    H = torch.stack(rows) if rows else x.new_zeros(0, 0)  # (n, n)
    return g.detach(), H.detach()


def _damped(H: Tensor, damping: float) -> Tensor:
    return H + damping * torch.eye(H.shape[0], dtype=H.dtype)  # (n, n)


def _update(x: Tensor, g: Tensor, H: Tensor, damping: float) -> Tensor:
    A = _damped(H, damping)  # (n, n)
    cond = torch.linalg.cond(A.double())  # sigma_max / sigma_min: inf if singular, nan if A == 0
    if not cond <= MAX_CONDITION:  # written this way round so that nan refuses too
        raise SingularHessianError(
            f"H + damping*I is singular or ill-conditioned (condition number {cond.item():.3g} > "
            f"{MAX_CONDITION:g} with damping={damping:g}); increase the damping")
    return x.detach() - torch.linalg.solve(A, g)  # (n,): solve the system, never invert


def newton_step(loss_fn, x: Tensor, damping: float = 0.0) -> Tensor:
    """One Newton step x - (H + damping I)^{-1} g; SingularHessianError if that system is (nearly) singular."""
    g, H = gradient_and_hessian(loss_fn, x)  # (n,), (n, n)
    return _update(x, g, H, damping)


def newton_minimize(loss_fn, x0: Tensor, damping: float = 0.0, tol: float = 1e-10,
                    max_steps: int = 100) -> tuple[Tensor, int]:
    """Newton steps from x0 until ||g||_2 <= tol; returns (x, steps taken), at most max_steps steps."""
    x = x0.detach().clone()
    for steps in range(max_steps):
        g, H = gradient_and_hessian(loss_fn, x)
        if torch.linalg.vector_norm(g) <= tol:
            return x, steps + 1
        x = _update(x, g, H, damping)
    return x, max_steps
