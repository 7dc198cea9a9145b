"""mix_streams falls back to the other stream when the one it needs is exhausted, even out of the bound

Pre-training, continual pre-training, SFT and preference tuning: the objective and the data of each.

Pre-training and continual pre-training (CPT) share one objective, next-token prediction on raw text::

    L = -(1 / N) * sum_{b, t : y[b, t+1] != ignore} log softmax(z[b, t])[y[b, t+1]],   N = #counted targets

(z: logits (B, T, V); the mean is over *tokens of the whole batch*, so a long sequence weighs more than
a short one). CPT differs in its data: new-domain text mixed with a replay of general text so the model
does not forget, here at a fixed fraction f, keeping |#domain(n) - n * f| < 1 after every n items.

SFT keeps the same loss on chat-formatted text but only trains on what the model should *say*: labels
are -100 (ignored) on every header and on system/user bodies; assistant bodies, including their
``<|end|>`` stop marker, keep their ids.

Post-training with DPO (Rafailov et al., 2023) needs no reward model. With sequence log-probs
log pi(y | x) = sum_t log p(y_t | ...) of a chosen (w) and a rejected (l) answer::

    r_w = beta * (log pi(y_w) - log pi_ref(y_w)),   r_l = beta * (log pi(y_l) - log pi_ref(y_l))
    L   = -mean(log sigmoid(r_w - r_l)),   log sigmoid(m) = -softplus(-m)   (finite for any m)
"""

from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")


# -- pre-training / CPT ---------------------------------------------------------------------------------

def _shifted(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Position t predicts token t + 1: drop the last prediction and the first target."""
    return logits[:, :-1], targets[:, 1:]                       # (B, T-1, V), (B, T-1)


def causal_lm_loss(logits: Tensor, input_ids: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean next-token cross-entropy over every counted target of the batch (NaN if there are none).

    Args:
        logits: (B, T, V) float.
        input_ids: (B, T) int64; entries equal to ``ignore_index`` are not targets.
        ignore_index: the target id that is skipped (default -100).
    """
    z, y = _shifted(logits, input_ids)
    V = z.shape[-1]
    return F.cross_entropy(z.reshape(-1, V), y.reshape(-1), ignore_index=ignore_index)   # ()


def mix_streams(domain: Iterable, general: Iterable, domain_fraction: float) -> Iterator:
    """Interleave ``domain`` and ``general`` so that item n + 1 comes from ``domain`` exactly when
    #domain + 1 <= (n + 1) * f, i.e. #domain(n) = floor(n * f) after every prefix of n items.

    Validates now and returns a generator (a generator function would only validate on first ``next``).
    """
    if not 0.0 <= domain_fraction <= 1.0:                        # also rejects NaN
        raise ValueError(f"domain_fraction must be in [0, 1], got {domain_fraction}")
    return _mixed(iter(domain), iter(general), domain_fraction)


def _mixed(domain: Iterator, general: Iterator, f: float) -> Iterator:
    n = n_domain = 0
    while True:
        take_domain = n_domain + 1 <= (n + 1) * f
        try:
            item = next(domain if take_domain else general)
        except StopIteration:                                   # switch to the other stream
            take_domain = not take_domain
            try:
                item = next(domain if take_domain else general)
            except StopIteration:
                return
        n += 1
        n_domain += take_domain
        yield item


# -- SFT ------------------------------------------------------------------------------------------------

def _checked(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(role, content) of each message; ValueError naming the index of the first bad one."""
    pairs = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError(f"message {i} must be a dict with 'role' and 'content' keys, got {message!r}")
        if message["role"] not in ROLES:
            raise ValueError(f"message {i} has unknown role {message['role']!r}; expected one of {ROLES}")
        pairs.append((message["role"], message["content"]))
    return pairs


def _header(role: str) -> str:
    return f"<|{role}|>\n"


def _body(content: str) -> str:
    return f"{content}<|end|>\n"


def render_chat(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The chat template: header + body per message, then an open assistant header if asked."""
    text = "".join(_header(role) + _body(content) for role, content in _checked(messages))
    return text + (_header("assistant") if add_generation_prompt else "")


def sft_example(messages: list[dict[str, str]], encode: Callable[[str], list[int]]) -> tuple[list[int], list[int]]:
    """(input_ids, labels): labels keep only the assistant bodies' ids (end marker included)."""
    input_ids, labels = [], []
    for role, content in _checked(messages):
        header, body = list(encode(_header(role))), list(encode(_body(content)))
        input_ids += header + body
        labels += [IGNORE_INDEX] * len(header)
        labels += body if role == "assistant" else [IGNORE_INDEX] * len(body)
    return input_ids, labels


# -- post-training (DPO) --------------------------------------------------------------------------------

def sequence_logprob(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """sum_t log p(labels[:, t+1] | logits[:, t]) over counted targets, per sequence: (B,)."""
    z, y = _shifted(logits, labels)                             # (B, T-1, V), (B, T-1)
    nll = F.cross_entropy(z.transpose(1, 2), y, ignore_index=ignore_index, reduction="none")  # (B, T-1)
    return -nll.sum(dim=-1)                                     # (B,); ignored targets contribute 0


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1) -> tuple[Tensor, Tensor, Tensor]:
    """DPO loss on (B,) sequence log-probs; returns (mean loss, chosen_rewards, rejected_rewards).

    Args:
        policy_chosen, policy_rejected: (B,) log pi(y | x) of the trained policy (carry gradients).
        ref_chosen, ref_rejected: (B,) log pi_ref(y | x) of the frozen reference.
        beta: strength of the implicit KL penalty (default 0.1).
    """
    chosen = beta * (policy_chosen - ref_chosen)                # (B,)
    rejected = beta * (policy_rejected - ref_rejected)          # (B,)
    loss = -F.logsigmoid(chosen - rejected).mean()              # log(sigmoid(m)) would be log(0) for m << 0
    return loss, chosen.detach(), rejected.detach()             # rewards are for logging, not for backward
