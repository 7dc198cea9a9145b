"""Gather and greedy deficit: the token losses are computed by hand with ``log_softmax`` + ``gather`` and
a boolean mask (sum / count), the chat is rendered by joining a list of pieces, the mixer is a closure
that takes a domain item whenever the domain count lags behind ``(n + 1) * f`` (falling back to the other
stream when that one is exhausted and the bound allows it), and DPO uses ``-logsigmoid``.
"""

import itertools
import math
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

ROLES = ("system", "user", "assistant")


def _token_logprobs(logits: Tensor, ids: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """(B, T-1) log-probs of the next tokens (0 where ignored) and the (B, T-1) mask of counted targets."""
    targets = ids[:, 1:]
    keep = targets != ignore_index
    safe = torch.where(keep, targets, torch.zeros_like(targets))
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, logp, torch.zeros_like(logp)), keep


def causal_lm_loss(logits: Tensor, input_ids: Tensor, ignore_index: int = -100) -> Tensor:
    logp, keep = _token_logprobs(logits, input_ids, ignore_index)
    return -logp.sum() / keep.sum().to(logits.dtype)


def _checked(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    out = []
    for i, message in enumerate(messages):
        if "role" not in message or "content" not in message:
            raise ValueError(f"message {i} lacks a 'role' or 'content' key")
        if message["role"] not in ROLES:
            raise ValueError(f"message {i} has unknown role {message['role']!r}")
        out.append((message["role"], message["content"]))
    return out


def render_chat(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    pieces = [f"<|{role}|>\n{content}<|end|>\n" for role, content in _checked(messages)]
    if add_generation_prompt:
        pieces.append("<|assistant|>\n")
    return "".join(pieces)


def sft_example(messages: list[dict[str, str]], encode: Callable[[str], list[int]]) -> tuple[list[int], list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    for role, content in _checked(messages):
        header = [int(t) for t in encode(f"<|{role}|>\n")]
        body = [int(t) for t in encode(f"{content}<|end|>\n")]
        input_ids += header + body
        labels += [-100] * len(header)
        labels += body if role == "assistant" else [-100] * len(body)
    return input_ids, labels


def mix_streams(domain: Iterable, general: Iterable, domain_fraction: float) -> Iterator:
    f = float(domain_fraction)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"domain_fraction must be in [0, 1], got {domain_fraction}")
    streams = {True: iter(domain), False: iter(general)}
    done = object()

    def generate() -> Iterator:
        d = 0
        for n in itertools.count(1):
            prefer_domain = d < n * f  # this choice always keeps the bound
            fallback_ok = abs(d + (not prefer_domain) - n * f) < 1.0
            item = next(streams[prefer_domain], done)
            if item is not done:
                d += prefer_domain
                yield item
                continue
            if not fallback_ok:
                return
            item = next(streams[not prefer_domain], done)
            if item is done:
                return
            d += not prefer_domain
            yield item

    return generate()


def sequence_logprob(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    logp, _ = _token_logprobs(logits, labels, ignore_index)
    return logp.sum(dim=-1)


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1) -> tuple[Tensor, Tensor, Tensor]:
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()
