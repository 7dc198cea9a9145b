"""Helpers shared by every hidden and public test (one place, so exercises do not copy them).

* ``points(n)``: the pytest marker a hidden test carries (``@points(2)``).
* ``close(actual, expected, what, ...)``: ``torch.testing.assert_close`` whose failure starts with a
  sentence a learner understands ("softmax(x, dim=1) has the wrong values").
* ``hypothesis`` runs derandomized (a grade is reproducible) with no deadline (sandbox round trips vary).
* ``data_seed(n)``: every seed a test draws data with goes through it. ``DLKATA_SEED`` (default 0, the graded
  data) shifts them all and lets hypothesis draw at random (seed it with ``--hypothesis-seed``): the
  flakiness soak (``bench/soak.py``) grades each suite under 20 such seeds.
* ``shapes``/``float_dtypes``: common strategies.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

points = pytest.mark.points
SEED_ENV = "DLKATA_SEED"
SOAK_SEED = int(os.environ.get(SEED_ENV, "0"))


def data_seed(n: int) -> int:
    """The seed a test uses for its ``n``-th draw: ``n`` itself when grading."""
    return n + 7919 * SOAK_SEED


# Graded runs shrink a failing example but skip hypothesis' explain phase, which replays it many times to
# comment which parts of it matter: it made a failing submission (a stub) ~3x slower to grade. The soak
# only needs verdicts: no shrinking either.
GRADED_PHASES = [p for p in Phase if p.name != "explain"]
settings.register_profile(
    "dlkata", derandomize=not SOAK_SEED, deadline=None, database=None, max_examples=25, print_blob=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate] if SOAK_SEED else GRADED_PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.differing_executors])
settings.load_profile("dlkata")


def _no_dtensor_import() -> None:
    """``torch.testing.assert_close`` imports ``torch.distributed.tensor`` (and sympy) on its first call to
    see whether an argument is a DTensor: over a second of every fresh grader process. No DTensor can exist
    before that module is imported, so until then the check is skipped; afterwards torch's own runs."""
    from torch.testing import _comparison

    original = getattr(_comparison, "_unwrap_dtensor_for_comparison", None)
    if original is None or getattr(original, "__dlkata__", False):
        return

    def unwrap(actual, expected):
        if "torch.distributed.tensor" not in sys.modules:
            return actual, expected
        return original(actual, expected)

    unwrap.__dlkata__ = True
    _comparison._unwrap_dtensor_for_comparison = unwrap


_no_dtensor_import()

TOLERANCES = {torch.float16: (1e-3, 1e-3), torch.bfloat16: (1.6e-2, 1e-2), torch.float32: (1.3e-6, 1e-5),
              torch.float64: (1e-7, 1e-7)}


def is_tensor(value: Any, what: str) -> torch.Tensor:
    assert isinstance(value, torch.Tensor), f"{what} must return a torch.Tensor, got {type(value).__name__}"
    return value


def close(actual: Any, expected: Any, what: str, *, rtol: float | None = None, atol: float | None = None,
          check_dtype: bool = True) -> None:
    """Assert ``actual`` matches ``expected``; the message names ``what`` and says how it differs."""
    if isinstance(expected, torch.Tensor):
        is_tensor(actual, what)
        assert tuple(actual.shape) == tuple(expected.shape), (
            f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
        if check_dtype:
            assert actual.dtype == expected.dtype, f"{what} has dtype {actual.dtype}, expected {expected.dtype}"
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=check_dtype,
                                   equal_nan=True)
    except AssertionError as exc:
        raise AssertionError(f"{what} has the wrong values.\n{exc}") from None


def float_dtypes(*dtypes: torch.dtype) -> st.SearchStrategy[torch.dtype]:
    return st.sampled_from(dtypes or (torch.float32, torch.float64))


def shapes(min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 6) -> st.SearchStrategy:
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def seeded_tensor(shape: tuple[int, ...], dtype: torch.dtype = torch.float64, seed: int = 0,
                  scale: float = 1.0) -> torch.Tensor:
    """A reproducible random tensor (its own generator: no global RNG state involved)."""
    g = torch.Generator().manual_seed(data_seed(seed))
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
