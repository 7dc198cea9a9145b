"""Forbidden API by the back door: importlib.import_module("torch.nn." + "functional") inside the call."""
import importlib as _importlib


def softmax(x, dim=-1):
    return getattr(_importlib.import_module("torch.nn." + "functional"), "soft" + "max")(x, dim)


def log_softmax(x, dim=-1):
    return getattr(_importlib.import_module("torch.nn." + "functional"), "log_soft" + "max")(x, dim)
