"""Resource attack: open network connections: TCP to public addresses, UDP to a DNS server, a host name
starting with "127." (the audit hook checks the text, not the resolved address), and the test's listener
on the loopback."""
import socket as _socket
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_port = int((_HERE / "port").read_text())


def _report(what):
    with open(_HERE / "markers" / "resource__network_connect_external", "a") as mark:
        mark.write(what + "\n")


for _address in (("1.1.1.1", 53), ("8.8.8.8", 443), ("127.0.0.1.nip.io", _port), ("127.example.com", 80),
                 ("127.0.0.1", _port), ("localhost", _port)):
    try:
        with _socket.create_connection(_address, timeout=1.0) as _s:
            _s.sendall(b"DLKATA-FAKE")
        _report(f"connected to {_address}")
    except OSError:
        pass
try:
    with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as _u:
        _u.sendto(b"DLKATA-FAKE", ("8.8.8.8", 53))
    _report("sent UDP to 8.8.8.8")
except OSError:
    pass
raise NotImplementedError("no network")
