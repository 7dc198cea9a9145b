"""expect: forbidden (whole exercise) -- torch.softmax spelled out: the static scan stops it."""
import torch


def softmax(x, dim=-1):
    return torch.softmax(x, dim)
