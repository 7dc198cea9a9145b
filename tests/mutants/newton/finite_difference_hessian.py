"""The Hessian by central finite differences of the gradient (h = 1e-5), not by autograd."""


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
    def grad(z):
        z = z.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(z), z)
        return g

    x = x.detach()
    h = 1e-5
    rows = []
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = h
        rows.append((grad(x + e) - grad(x - e)) / (2 * h))  # (n,) each
    return grad(x), torch.stack(rows)


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
            return x, steps
        x = _update(x, g, H, damping)
    return x, max_steps
