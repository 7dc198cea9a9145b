"""expect: crashed -- os._exit in the middle of a call."""
import os


def softmax(x, dim=-1):
    os._exit(0)
