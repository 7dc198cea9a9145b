"""``torch.var_mean`` on a channels-first view: BatchNorm reshapes the input to (C, M) and takes
``var_mean(correction=0)`` per row, rescales the biased variance by M / (M - 1) for the running estimate
and updates the buffers with ``lerp_``; LayerNorm uses ``var_mean`` over the trailing dims and a division
by ``sqrt``; the masked batch norm selects the valid positions by boolean indexing and writes them back
into a zero tensor with ``index_put``.
"""

import torch
from torch import Tensor


class BatchNorm1d(torch.nn.Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        c = num_features
        self.register_parameter("weight", torch.nn.Parameter(torch.ones(c)) if affine else None)
        self.register_parameter("bias", torch.nn.Parameter(torch.zeros(c)) if affine else None)
        track = track_running_stats
        self.register_buffer("running_mean", torch.zeros(c) if track else None)
        self.register_buffer("running_var", torch.ones(c) if track else None)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long) if track else None)

    def _shape(self, v: Tensor, ndim: int) -> Tensor:
        return v.view(1, -1) if ndim == 2 else v.view(1, -1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 and x.ndim != 3:
            raise ValueError("BatchNorm1d takes (N, C) or (N, C, L)")
        if self.training or self.running_mean is None:
            per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, M)
            m = per_channel.shape[1]
            if m < 2:
                raise ValueError("need more than one value per channel for batch statistics")
            var, mean = torch.var_mean(per_channel, dim=1, correction=0)
            if self.training and self.running_mean is not None:
                with torch.no_grad():
                    self.num_batches_tracked += 1
                    f = self.momentum if self.momentum is not None else 1.0 / int(self.num_batches_tracked)
                    self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), f)
                    unbiased = var.detach() * (m / (m - 1))
                    self.running_var.lerp_(unbiased.to(self.running_var.dtype), f)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - self._shape(mean, x.ndim)) / torch.sqrt(self._shape(var, x.ndim) + self.eps)
        if self.weight is not None:
            y = self._shape(self.weight, x.ndim) * y + self._shape(self.bias, x.ndim)
        return y


class LayerNorm(torch.nn.Module):
    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.register_parameter("weight", torch.nn.Parameter(torch.ones(shape)) if elementwise_affine else None)
        self.register_parameter("bias", torch.nn.Parameter(torch.zeros(shape)) if elementwise_affine and bias else None)

    def forward(self, x: Tensor) -> Tensor:
        dims = tuple(range(-len(self.normalized_shape), 0))
        var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            y = self.weight * y
        if self.bias is not None:
            y = y + self.bias
        return y


def masked_batch_norm(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    T = x.shape[1]
    keep = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (B, T)
    values = x[keep]  # (V, C)
    var, mean = torch.var_mean(values, dim=0, correction=0)
    normed = (values - mean) / torch.sqrt(var + eps)
    return torch.zeros_like(x).index_put((keep,), normed)
