"""Resource attack: ignore every catchable signal (TERM, INT, ALRM, XCPU, HUP, USR1) and spin forever
from the second call on (the first probe of a sandbox gets an import allowance; later ones do not)."""
import signal as _signal

for _name in ("SIGTERM", "SIGINT", "SIGALRM", "SIGXCPU", "SIGHUP", "SIGUSR1"):
    _signal.signal(getattr(_signal, _name), _signal.SIG_IGN)

_calls = [0]


def _spin():
    _calls[0] += 1
    if _calls[0] == 1:
        raise NotImplementedError
    while True:
        pass


def softmax(x, dim=-1):
    _spin()


def log_softmax(x, dim=-1):
    _spin()
