"""expect: crashed -- a segmentation fault in the middle of a call (SIGSEGV, as a bad native access would)."""
import os
import signal


def softmax(x, dim=-1):
    os.kill(os.getpid(), signal.SIGSEGV)
