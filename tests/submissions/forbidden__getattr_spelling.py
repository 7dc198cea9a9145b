"""expect: forbidden -- F.softmax reached through getattr, which no static scan sees."""
import torch.nn.functional as F


def softmax(x, dim=-1):
    return getattr(F, "soft" + "max")(x, dim)
