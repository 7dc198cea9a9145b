"""Wire trick: on the second probe of a test, write a reply header announcing 1 MiB on the sandbox's own
pipe and never send the rest; the grader's poll() says "ready" and recv_bytes() then waits with no timeout."""
import os as _os
import struct as _struct
import sys as _sys
import time as _time
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_calls = [0]


def _pipe():
    frame = _sys._getframe(1)
    while frame is not None:
        conn = frame.f_locals.get("conn")
        if conn is not None and hasattr(conn, "send_bytes"):
            return conn
        frame = frame.f_back
    return None


def softmax(x, dim=-1):
    _calls[0] += 1
    if _calls[0] >= 2:
        try:  # once per grade: the first test that probes twice
            _os.close(_os.open(_HERE / "stall.lock", _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY))
        except FileExistsError:
            raise NotImplementedError
        conn = _pipe()
        if conn is not None:
            _os.write(conn.fileno(), _struct.pack("!i", 1 << 20) + b"\0" * 64)
            _time.sleep(6.0)  # the probe timeout is 2 s: a grader that enforced it has killed us by now
            with open(_HERE / "markers" / "output__partial_reply_stalls_grader", "a") as mark:
                mark.write("the grader waited 6 s on a half-sent reply (probe timeout 2 s) and never killed "
                           "the sandbox; never finishing the reply stalls it until pytest-timeout\n")
            _os._exit(0)
    raise NotImplementedError
