"""Beside the module: a package __init__/__main__ that would run first if the module were imported as
part of a package; it would replace softmax by torch's."""
import pathlib as _p

for _d in _p.Path(__file__).resolve().parents:  # the grading test marks its folder with markers/
    if (_d / "markers").is_dir():
        with open(_d / "markers" / ("beside-" + _p.Path(__file__).name), "a") as _m:
            _m.write("executed\n")
        break

import torch

softmax = getattr(torch, "soft" + "max")
