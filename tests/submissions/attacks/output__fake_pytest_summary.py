"""Output trick: print a fake pytest summary ("12 passed") on stdout, stderr, raw fds 1 and 2 and the tty."""
import os as _os
import sys as _sys

_FAKE = ("DLKATA-FAKE\n" + "".join(f"grader/hidden/test_softmax.py::test_{i} PASSED\n" for i in range(12))
         + "============================== 12 passed in 0.42s ==============================\n")


def _shout():
    print(_FAKE, flush=True)
    print(_FAKE, file=_sys.stderr, flush=True)
    for fd in (1, 2):
        try:
            _os.write(fd, _FAKE.encode())
        except OSError:
            pass
    try:
        with open("/dev/tty", "w") as tty:
            tty.write(_FAKE)
    except OSError:
        pass


_shout()


def softmax(x, dim=-1):
    _shout()
    return torch.zeros(x.numel() + 1)  # wrong, whatever the summary says


def log_softmax(x, dim=-1):
    _shout()
    return torch.zeros(x.numel() + 1)
