"""What may cross from a sandbox back to the grader: plain data only.

The sandbox encodes a probe's return value with ``torch.save`` after checking every node is plain
(``None``, bool, int, float, complex, str, bytes, exact ``torch.Tensor``, ``torch.Size``, ``torch.dtype``,
``torch.device``, and list/tuple/dict of those; numpy arrays and scalars are converted to tensors and
Python numbers). The grader decodes with ``torch.load(weights_only=True)``, which executes no code from
the payload, and checks the types again, because the submission ran in the process that encoded it.
"""

from __future__ import annotations

import io
from typing import Any

import torch

MAX_RESULT_BYTES = 256 * 2**20
UNSUPPORTED = "probe returned an unsupported object"

_SCALARS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)


class Unsupported(TypeError):
    pass


def _to_plain(value: Any, depth: int = 0) -> Any:
    if depth > 64:
        raise Unsupported(f"{UNSUPPORTED}: nesting deeper than 64 levels")
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is torch.Tensor:
        return value.detach().cpu().clone()
    if kind in (list, tuple):
        return kind(_to_plain(v, depth + 1) for v in value)
    if kind is dict:
        return {_to_plain(k, depth + 1): _to_plain(v, depth + 1) for k, v in value.items()}
    numpy = _numpy()
    if numpy is not None:
        if kind is numpy.ndarray and value.dtype.kind in "biufc":
            return torch.from_numpy(numpy.array(value, copy=True))
        if isinstance(value, numpy.generic) and kind.__module__ == "numpy":
            return value.item()
    raise Unsupported(f"{UNSUPPORTED}: {kind.__module__}.{kind.__qualname__}")


def _numpy():
    import sys

    return sys.modules.get("numpy")


def encode(envelope: dict) -> bytes:
    """Sandbox side: plain-check and serialise (raises ``Unsupported``)."""
    buffer = io.BytesIO()
    torch.save(_to_plain(envelope), buffer)
    return buffer.getvalue()


def _check_plain(value: Any, depth: int = 0) -> None:
    kind = type(value)
    if depth > 64:
        raise Unsupported(f"{UNSUPPORTED}: nesting deeper than 64 levels")
    if kind in _SCALARS or kind is torch.Tensor:
        return
    if kind in (list, tuple):
        for v in value:
            _check_plain(v, depth + 1)
        return
    if kind is dict:
        for k, v in value.items():
            _check_plain(k, depth + 1)
            _check_plain(v, depth + 1)
        return
    raise Unsupported(f"{UNSUPPORTED}: {kind.__module__}.{kind.__qualname__}")


def decode(payload: bytes) -> dict:
    """Grader side: deserialise without executing code, then check every node is plain."""
    try:
        envelope = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:  # a crafted payload: never trust it, never run it
        raise Unsupported(f"{UNSUPPORTED} (it could not be read safely: {type(exc).__name__})") from None
    _check_plain(envelope)
    if type(envelope) is not dict or "ok" not in envelope:
        raise Unsupported(f"{UNSUPPORTED}: malformed reply from the sandbox")
    return envelope
