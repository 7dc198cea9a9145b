"""expect: forbidden -- the forbidden call's error is caught and a correct value returned anyway."""
import torch


def softmax(x, dim=-1):
    try:
        getattr(torch, "soft" + "max")(x, dim)
    except BaseException:
        pass
    e = torch.exp(x - x.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)
