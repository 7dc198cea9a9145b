"""LayerNorm uses torch.var's default unbiased estimate (divides by K - 1)."""


import torch
from torch import Tensor


def _per_channel(v: Tensor, ndim: int) -> Tensor:
    """(C,) statistics broadcastable against (N, C) or (N, C, L)."""
    return v if ndim == 2 else v[:, None]  # (C,) or (C, 1)


class BatchNorm1d(torch.nn.Module):
    """``torch.nn.BatchNorm1d``: same arguments, parameters, buffers, train/eval behaviour."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = torch.nn.Parameter(torch.ones(num_features))  # (C,)
            self.bias = torch.nn.Parameter(torch.zeros(num_features))  # (C,)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))  # (C,)
            self.register_buffer("running_var", torch.ones(num_features))  # (C,)
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))  # ()
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def _update_running_stats(self, mean: Tensor, var: Tensor, count: int) -> None:
        with torch.no_grad():  # buffers are not part of the autograd graph
            self.num_batches_tracked += 1
            f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - f).add_(f * mean)
            self.running_var.mul_(1 - f).add_(f * var * count / (count - 1))  # unbiased

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")
        use_batch_stats = self.training or self.running_mean is None
        if use_batch_stats:
            dims = (0,) if x.dim() == 2 else (0, 2)
            count = x.numel() // x.shape[1]  # M values per channel
            if count <= 1:
                raise ValueError(f"Expected more than 1 value per channel when training, got {tuple(x.shape)}")
            mean = x.mean(dim=dims)  # (C,)
            var = (x - _per_channel(mean, x.dim())).square().mean(dim=dims)  # (C,) biased
            if self.training and self.running_mean is not None:
                self._update_running_stats(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - _per_channel(mean, x.dim())) * _per_channel(torch.rsqrt(var + self.eps), x.dim())
        if self.affine:
            y = y * _per_channel(self.weight, x.dim()) + _per_channel(self.bias, x.dim())
        return y


class LayerNorm(torch.nn.Module):
    """``torch.nn.LayerNorm``: normalise over the trailing ``normalized_shape`` dims of each sample."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = torch.nn.Parameter(torch.ones(self.normalized_shape))
            if bias:
                self.bias = torch.nn.Parameter(torch.zeros(self.normalized_shape))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        dims = tuple(range(-len(self.normalized_shape), 0))  # the trailing K-value block
        mean = x.mean(dim=dims, keepdim=True)  # (..., 1, ..., 1)
        var = x.var(dim=dims, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y


def masked_batch_norm(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-channel batch norm of padded ``x`` (B, T, C) over the valid positions t < lengths[b] only."""
    B, T, C = x.shape
    valid = (torch.arange(T, device=x.device)[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    count = valid.sum()  # number of valid positions
    mean = torch.where(valid, x, zero).sum(dim=(0, 1)) / count  # (C,)
    centred = torch.where(valid, x - mean, zero)  # (B, T, C), padding -> 0
    var = centred.square().sum(dim=(0, 1)) / count  # (C,) biased
    return centred * torch.rsqrt(var + eps)  # padded positions stay 0
