"""Resource attack: endless output on stdout and stderr (print and raw writes), at import and then forever
from the second call on."""
import os as _os
import sys as _sys

for _ in range(20000):
    print("DLKATA-FAKE all tests passed " * 4)
    _sys.stderr.write("DLKATA-FAKE all tests passed\n")
_calls = [0]


def softmax(x, dim=-1):
    _calls[0] += 1
    if _calls[0] == 1:
        raise NotImplementedError
    while True:
        print("DLKATA-FAKE all tests passed " * 64)
        _os.write(2, b"DLKATA-FAKE all tests passed\n" * 64)


log_softmax = softmax
