"""expect: error -- an exception in the learner's code, reported with their file and line."""


def softmax(x, dim=-1):
    scale = 0
    return x / (1 // scale)
