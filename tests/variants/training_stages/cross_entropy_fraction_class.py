"""Cross-entropy per token and an exact lazy mixer: the token losses come from
``F.cross_entropy(reduction="none")`` on the (B, V, T-1) layout summed and divided by the count, the
sequence log-probs are ``logit[target] - logsumexp`` by hand, the chat is built with ``io.StringIO``,
the mixer is an iterator class that checks the bound in exact ``fractions.Fraction`` arithmetic and
takes a general item whenever the bound allows (domain only when it must), and DPO writes
-log sigmoid(m) as ``torch.logaddexp(0, -m)``.
"""

import io
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor

_ROLES = frozenset({"system", "user", "assistant"})


def _next_token_nll(logits: Tensor, ids: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """(B, T-1) negative log-likelihoods (0 at ignored targets) and the count of counted targets."""
    targets = ids[:, 1:]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=ignore_index, reduction="none")
    return nll, (targets != ignore_index).sum()


def causal_lm_loss(logits: Tensor, input_ids: Tensor, ignore_index: int = -100) -> Tensor:
    nll, count = _next_token_nll(logits, input_ids, ignore_index)
    return nll.sum() / count


def _validate(index: int, message: dict) -> tuple[str, str]:
    try:
        role, content = message["role"], message["content"]
    except KeyError as missing:
        raise ValueError(f"message {index}: missing key {missing}") from None
    if role not in _ROLES:
        raise ValueError(f"message {index}: role {role!r} is not system, user or assistant")
    return role, content


def render_chat(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    buf = io.StringIO()
    for index, message in enumerate(messages):
        role, content = _validate(index, message)
        buf.write("<|" + role + "|>\n")
        buf.write(content + "<|end|>\n")
    if add_generation_prompt:
        buf.write("<|assistant|>\n")
    return buf.getvalue()


def sft_example(messages: list[dict[str, str]], encode: Callable[[str], list[int]]) -> tuple[list[int], list[int]]:
    parts = [_validate(i, m) for i, m in enumerate(messages)]
    input_ids: list[int] = []
    labels: list[int] = []
    for role, content in parts:
        for text, trained in (("<|" + role + "|>\n", False), (content + "<|end|>\n", role == "assistant")):
            ids = list(map(int, encode(text)))
            input_ids.extend(ids)
            labels.extend(ids if trained else [-100] * len(ids))
    return input_ids, labels


class _Mixer:
    """Takes a general item whenever |#domain - n f| < 1 still holds after it, else a domain item."""

    _END = object()

    def __init__(self, domain: Iterable, general: Iterable, fraction: Fraction) -> None:
        self.domain, self.general = iter(domain), iter(general)
        self.fraction = fraction
        self.n = 0
        self.n_domain = 0

    def __iter__(self) -> "_Mixer":
        return self

    def _ok(self, n_domain: int) -> bool:
        return abs(n_domain - (self.n + 1) * self.fraction) < 1

    def __next__(self):
        order = []
        if self._ok(self.n_domain):
            order.append((self.general, 0))
        if self._ok(self.n_domain + 1):
            order.append((self.domain, 1))
        for stream, is_domain in order:
            item = next(stream, self._END)
            if item is not self._END:
                self.n += 1
                self.n_domain += is_domain
                return item
        raise StopIteration


def mix_streams(domain: Iterable, general: Iterable, domain_fraction: float) -> Iterator:
    if domain_fraction != domain_fraction or domain_fraction < 0 or domain_fraction > 1:
        raise ValueError(f"domain_fraction {domain_fraction} is not in [0, 1]")
    return _Mixer(domain, general, Fraction(domain_fraction))


def sequence_logprob(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    z, y = logits[:, :-1], labels[:, 1:]
    counted = y != ignore_index
    picked = z.gather(2, y.clamp(0, z.shape[-1] - 1).unsqueeze(2)).squeeze(2)  # any in-range id when ignored
    logp = picked - torch.logsumexp(z, dim=2)
    return (logp * counted).sum(dim=1)


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1) -> tuple[Tensor, Tensor, Tensor]:
    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    margin = chosen_rewards - rejected_rewards
    losses = torch.logaddexp(torch.zeros_like(margin), -margin)  # log(1 + exp(-m)) = -log sigmoid(m)
    return losses.mean(), chosen_rewards.detach(), rejected_rewards.detach()
