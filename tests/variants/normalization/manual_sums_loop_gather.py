"""Explicit sums and loops: statistics as sums divided by counts (deviations squared by hand),
normalisation with ``rsqrt``, the 2-D input viewed as (N, C, 1), running statistics recomputed out of
place and written back with ``copy_``; LayerNorm flattens the normalised dims into one; the masked batch
norm gathers each sequence's valid prefix in a Python loop, normalises the concatenation and pads each
sequence back with zeros.
"""

import math

import torch
from torch import Tensor


class BatchNorm1d(torch.nn.Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = torch.nn.Parameter(torch.ones(num_features))
            self.bias = torch.nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected a 2-D or 3-D input, got {x.dim()}-D")
        x3 = x.unsqueeze(-1) if x.dim() == 2 else x
        use_batch = self.training or self.running_mean is None
        if use_batch:
            count = x3.shape[0] * x3.shape[2]
            if count == 1:
                raise ValueError("expected more than 1 value per channel when training")
            mean = x3.sum(dim=(0, 2)) / count
            dev = x3 - mean.view(1, -1, 1)
            sq_sum = (dev * dev).sum(dim=(0, 2))
            var = sq_sum / count
            if self.training and self.running_mean is not None:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    if self.momentum is None:
                        f = 1.0 / float(self.num_batches_tracked.item())
                    else:
                        f = self.momentum
                    new_mean = (1.0 - f) * self.running_mean + f * mean.detach()
                    new_var = (1.0 - f) * self.running_var + f * (sq_sum.detach() / (count - 1))
                    self.running_mean.copy_(new_mean)
                    self.running_var.copy_(new_var)
        else:
            mean = self.running_mean
            var = self.running_var
            dev = x3 - mean.view(1, -1, 1)
        y = dev * torch.rsqrt(var + self.eps).view(1, -1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1) + self.bias.view(1, -1, 1)
        return y.squeeze(-1) if x.dim() == 2 else y


class LayerNorm(torch.nn.Module):
    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
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
        k = len(self.normalized_shape)
        size = math.prod(self.normalized_shape)
        flat = x.reshape(*x.shape[: x.dim() - k], size)
        mean = flat.sum(dim=-1, keepdim=True) / size
        dev = flat - mean
        var = (dev * dev).sum(dim=-1, keepdim=True) / size
        y = (dev * torch.rsqrt(var + self.eps)).reshape(x.shape)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y


def masked_batch_norm(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    B, T, C = x.shape
    sizes = [int(n) for n in lengths.tolist()]
    valid = torch.cat([x[b, : sizes[b]] for b in range(B)], dim=0)  # (V, C)
    count = valid.shape[0]
    mean = valid.sum(dim=0) / count
    dev = valid - mean
    var = (dev * dev).sum(dim=0) / count
    normed = dev * torch.rsqrt(var + eps)
    pieces = torch.split(normed, sizes, dim=0)
    padded = [torch.cat([p, x.new_zeros(T - sizes[b], C)], dim=0) for b, p in enumerate(pieces)]
    return torch.stack(padded, dim=0)
