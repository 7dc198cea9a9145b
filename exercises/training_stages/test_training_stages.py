"""Public tests for ``training_stages``: quick checks while you work (``dlkata check training_stages``).

The graded tests go further: random shapes and dtypes against torch in float64, every prefix of the
mixed stream, bad messages, and DPO with margins in the thousands.
"""

import itertools

import torch
import torch.nn.functional as F

from grader.testing import close, points, seeded_tensor

CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


def byte_encode(text):
    return list(text.encode("utf-8"))


# -- probes --------------------------------------------------------------------------------------------

def lm_loss(m, logits, ids):
    return m.causal_lm_loss(logits, ids)


def render(m, messages, add_generation_prompt):
    return m.render_chat(messages, add_generation_prompt)


def sft(m, messages):
    return m.sft_example(messages, byte_encode)


def mixed(m, fraction, limit):
    domain = (("d", i) for i in itertools.count())
    general = (("g", i) for i in itertools.count())
    return [tag for tag, _ in itertools.islice(m.mix_streams(domain, general, fraction), limit)]


def dpo(m, pc, pr, rc, rr):
    return m.dpo_loss(pc, pr, rc, rr, 0.1)


# -- tests ----------------------------------------------------------------------------------------------

@points(2)
def test_causal_lm_loss_is_shifted(submission):
    logits = seeded_tensor((2, 4, 5), torch.float64, seed=1)
    ids = torch.tensor([[1, 2, 3, 4], [0, 1, -100, 2]])
    want = F.cross_entropy(logits[:, :-1].reshape(-1, 5), ids[:, 1:].reshape(-1))
    close(submission.run(lm_loss, logits, ids), want, "causal_lm_loss (logits[:, t] predicts input_ids[:, t + 1])")


def test_render_chat(submission):
    got = submission.run(render, CHAT, True)
    want = "<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|assistant|>\n"
    assert got == want, f"render_chat(..., add_generation_prompt=True) must be {want!r}, got {got!r}"


@points(2)
def test_sft_labels_only_on_the_assistant_body(submission):
    ids, labels = submission.run(sft, CHAT)
    assert bytes(ids).decode() == "<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n", "input_ids: the rendered chat"
    trained = bytes(t for t in labels if t != -100).decode()
    assert len(labels) == len(ids) and trained == "Hello!<|end|>\n", (
        f"only the assistant body (with its <|end|>) is trained; your labels train {trained!r}")


def test_mix_streams_fraction(submission):
    tags = submission.run(mixed, 0.25, 100)
    assert len(tags) == 100, f"two infinite streams: mix_streams must keep going, stopped after {len(tags)}"
    worst = max(abs(tags[:n].count("d") - n * 0.25) for n in range(1, 101))
    assert worst < 1, f"after some prefix, #domain is {worst:.2f} away from n * 0.25 (must stay below 1)"


def test_dpo_loss(submission):
    pc, pr = torch.tensor([-10.0, -30.0]), torch.tensor([-20.0, -10.0])
    rc, rr = torch.tensor([-12.0, -25.0]), torch.tensor([-18.0, -12.0])
    loss, chosen, rejected = submission.run(dpo, pc, pr, rc, rr)
    close(chosen, 0.1 * (pc - rc), "chosen_rewards")
    close(rejected, 0.1 * (pr - rr), "rejected_rewards")
    close(loss, -F.logsigmoid(0.1 * ((pc - rc) - (pr - rr))).mean(), "the DPO loss")
