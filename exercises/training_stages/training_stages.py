"""Pre-training, continual pre-training, SFT and preference tuning: the objective and the data of each.

Read README.md first (``dlkata show training_stages``). Replace each ``raise NotImplementedError`` with
your code; check with ``dlkata check training_stages``. ``torch.nn.functional.cross_entropy``,
``log_softmax`` and ``logsigmoid`` are allowed.
"""

from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


def causal_lm_loss(logits: Tensor, input_ids: Tensor, ignore_index: int = -100) -> Tensor:
    """Next-token cross-entropy: ``logits[:, t]`` (B, T, V) predicts ``input_ids[:, t + 1]`` (B, T) int64.

    The mean over every target of the batch that is not ``ignore_index`` (one mean over tokens, not a
    mean of per-sequence means); a 0-dim tensor of the logits' dtype; NaN when every target is ignored.
    """
    raise NotImplementedError("causal_lm_loss")


def render_chat(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """Each message -> ``"<|{role}|>\\n{content}<|end|>\\n"``, concatenated; then ``"<|assistant|>\\n"``
    if ``add_generation_prompt``. Roles: system, user, assistant. An unknown role or a missing
    ``role``/``content`` key -> ValueError whose message contains that message's (0-based) index."""
    raise NotImplementedError("render_chat")


def sft_example(messages: list[dict[str, str]], encode: Callable[[str], list[int]]) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` for supervised fine-tuning, two lists of ints of the same length.

    Each message's header ``"<|{role}|>\\n"`` and body ``"{content}<|end|>\\n"`` are encoded separately
    (``encode(header)``, ``encode(body)``) and concatenated in order. ``labels`` is -100 everywhere except
    on assistant bodies, which keep their ids (not shifted: the loss shifts). Same ValueError as render_chat.
    """
    raise NotImplementedError("sft_example")


def mix_streams(domain: Iterable, general: Iterable, domain_fraction: float) -> Iterator:
    """Replay mixing for continual pre-training: an iterator over items of both streams, each stream's
    items in their order, such that after every prefix of n items |#domain - n * domain_fraction| < 1.

    Lazy (streams may be infinite); it stops only when the stream it needs next is exhausted. A fraction
    outside [0, 1] (or NaN) raises ValueError at the call, before anything is iterated.
    """
    raise NotImplementedError("mix_streams")


def sequence_logprob(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    """(B,): the sum over t of log p(labels[:, t + 1] | logits[:, t]) over targets that are not
    ``ignore_index`` (0 for a sequence whose targets are all ignored); the logits' dtype."""
    raise NotImplementedError("sequence_logprob")


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1) -> tuple[Tensor, Tensor, Tensor]:
    """DPO on (B,) sequence log-probs: ``(loss, chosen_rewards, rejected_rewards)``.

    rewards = beta * (policy - ref) per pair (detached); loss = mean of -log sigmoid(chosen - rejected
    rewards), finite and with finite gradients even for margins of thousands.
    """
    raise NotImplementedError("dpo_loss")
