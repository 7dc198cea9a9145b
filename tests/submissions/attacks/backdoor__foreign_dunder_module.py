"""Forbidden API by the back door: ordinary defs calling getattr(F, "soft" + "max"), with __module__
reassigned so that they no longer look like the submission's own functions."""
import torch.nn.functional as _F


def softmax(x, dim=-1):
    return getattr(_F, "soft" + "max")(x, dim)


def log_softmax(x, dim=-1):
    return getattr(_F, "log_" + "soft" + "max")(x, dim)


softmax.__module__ = log_softmax.__module__ = "torch.nn.functional"
