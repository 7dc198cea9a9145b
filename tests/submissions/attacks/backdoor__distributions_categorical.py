"""Forbidden API by the back door: torch.distributions.Categorical(logits=...).probs normalises the logits
with a log-sum-exp inside torch, not in the submission's source."""
import torch as _torch


def softmax(x, dim=-1):
    return _torch.distributions.Categorical(logits=x.movedim(dim, -1)).probs.movedim(-1, dim)


def log_softmax(x, dim=-1):
    return _torch.distributions.Categorical(logits=x.movedim(dim, -1)).logits.movedim(-1, dim)
