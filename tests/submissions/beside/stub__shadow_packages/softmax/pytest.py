"""Beside the module: pytest.py, which would shadow the real package if the folder were on sys.path."""
import pathlib as _p

for _d in _p.Path(__file__).resolve().parents:  # the grading test marks its folder with markers/
    if (_d / "markers").is_dir():
        with open(_d / "markers" / ("beside-" + _p.Path(__file__).name), "a") as _m:
            _m.write("executed\n")
        break


def softmax(x, dim=-1):
    return x


def assert_close(*args, **kwargs):
    return None
