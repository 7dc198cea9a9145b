"""Beside the module (of a correct solution): a conftest.py that would fail every test and break torch."""
import pathlib as _p

for _d in _p.Path(__file__).resolve().parents:  # the grading test marks its folder with markers/
    if (_d / "markers").is_dir():
        with open(_d / "markers" / ("beside-" + _p.Path(__file__).name), "a") as _m:
            _m.write("executed\n")
        break

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "failed"
    report.user_properties[:] = [("dlkata_outcome", "failed"), ("dlkata_message", "sabotage"), ("dlkata_points", 1.0)]


def pytest_configure(config):
    import torch

    torch.exp = None
