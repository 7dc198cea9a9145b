"""BatchNorm vs LayerNorm: write both modules, and a batch norm that ignores padding.

Read README.md first (``dlkata show normalization``). Replace each ``raise NotImplementedError`` with your
code; check with ``dlkata check normalization``. Forbidden: every torch function, module and aten op that
normalises for you (batch, layer, group, instance, RMS and local-response norms).
"""

import torch
from torch import Tensor


class BatchNorm1d(torch.nn.Module):
    """Behaves exactly like ``torch.nn.BatchNorm1d`` with the same arguments.

    * input (N, C) or (N, C, L); statistics per channel over N (or N and L); other ranks raise ValueError.
    * training mode: normalise with the batch mean and *biased* variance; if ``track_running_stats``,
      add 1 to ``num_batches_tracked`` and move ``running_mean`` / ``running_var`` towards the batch mean
      and the *unbiased* batch variance with factor ``momentum`` (``momentum=None``: 1 / num_batches_tracked,
      a cumulative average). Batch statistics from a single value per channel raise ValueError.
    * eval mode: normalise with the running statistics (batch statistics if there are none).
    * ``weight`` (ones) and ``bias`` (zeros) parameters of shape (C,) if ``affine``, else registered as
      None; buffers ``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked`` (0, long, shape
      ()) if ``track_running_stats``, else registered as None. ``load_state_dict`` works both ways with torch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        raise NotImplementedError("BatchNorm1d.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("BatchNorm1d.forward")


class LayerNorm(torch.nn.Module):
    """Behaves exactly like ``torch.nn.LayerNorm`` with the same arguments.

    Normalises each sample over its last ``len(normalized_shape)`` dims (an int means one dim), biased
    variance, ``eps`` inside the square root; the same in train and eval mode, no buffers. ``weight``
    (ones) and ``bias`` (zeros) of shape ``normalized_shape`` if ``elementwise_affine`` (``bias=False``:
    weight only), else both registered as None. ``load_state_dict`` works both ways with torch.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        raise NotImplementedError("LayerNorm.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("LayerNorm.forward")


def masked_batch_norm(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Batch norm of padded sequences: x (B, T, C), lengths (B,) of int64 with 0 <= lengths[b] <= T.

    Per-channel mean and biased variance over the valid positions (b, t) with t < lengths[b] only (at
    least one exists), no affine; returns (B, T, C) with padded positions exactly 0, whatever finite
    values the padding held. Differentiable with respect to x.
    """
    raise NotImplementedError("masked_batch_norm")
