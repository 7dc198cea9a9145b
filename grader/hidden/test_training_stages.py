"""Hidden tests for ``training_stages``. Probes run in the sandbox and return raw outputs; the oracles
(torch in float64, the chat template, the mixing invariant) and every verdict are here."""

import itertools
import re
from fractions import Fraction

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import close, data_seed, float_dtypes, points, seeded_tensor

IGNORE = -100
TOL = 1e-9  # float rounding allowed on |#domain - n * fraction| < 1


def gap(n_dom, n, fraction):
    """|#domain - n * fraction|, exactly (the float ``fraction`` as the rational it is)."""
    return abs(n_dom - Fraction(fraction) * n)


def within_bound(n_dom, n, fraction):
    """< 1, up to float rounding; a gap of exactly 1 (n * fraction an integer, which floats compute
    exactly) is never rounding."""
    g = gap(n_dom, n, fraction)
    return g < 1 or (g != 1 and g < 1 + TOL)


# -- data ---------------------------------------------------------------------------------------------------

def lm_batch(B, T, V, dtype, seed, ignore_index=IGNORE, p_ignore=0.3):
    g = torch.Generator().manual_seed(data_seed(seed))
    logits = seeded_tensor((B, T, V), dtype, seed=seed, scale=2.0)
    ids = torch.randint(0, V, (B, T), generator=g)
    ids[torch.rand((B, T), generator=g) < p_ignore] = ignore_index
    return logits, ids


def oracle_lm_loss(logits, ids, ignore_index=IGNORE):
    V = logits.shape[-1]
    z = logits.double()[:, :-1].reshape(-1, V)
    return F.cross_entropy(z, ids[:, 1:].reshape(-1), ignore_index=ignore_index).to(logits.dtype)


def oracle_seq_logprob(logits, labels, ignore_index=IGNORE):
    logp = torch.log_softmax(logits.double()[:, :-1], dim=-1)           # (B, T-1, V)
    target = labels[:, 1:]
    keep = target != ignore_index
    picked = logp.gather(-1, torch.where(keep, target, 0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(-1).to(logits.dtype)


def oracle_dpo(pc, pr, rc, rr, beta):
    chosen = beta * (pc.double() - rc.double())
    rejected = beta * (pr.double() - rr.double())
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss.to(pc.dtype), chosen.to(pc.dtype), rejected.to(pc.dtype)


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?", "name": "extra keys are ignored"},
    {"role": "assistant", "content": "Rome.\nObviously."},
]
UNICODE = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！<b>"},
           {"role": "user", "content": ""}]
NO_ASSISTANT = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello?"}]


def template(messages, add_generation_prompt=False):
    text = "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


def byte_encode(text):
    return list(text.encode("utf-8"))


def bos_encode(text):
    """Like a tokenizer that adds a begin-of-sequence id to every call: encode(a + b) != encode(a) + encode(b)."""
    return [1] + [ord(c) + 2 for c in text]


ENCODERS = {"bytes": byte_encode, "bos": bos_encode}


def oracle_sft(messages, encode):
    ids, labels = [], []
    for m in messages:
        header, body = encode(f"<|{m['role']}|>\n"), encode(f"{m['content']}<|end|>\n")
        ids += header + body
        labels += [IGNORE] * len(header) + (body if m["role"] == "assistant" else [IGNORE] * len(body))
    return ids, labels


BAD_MESSAGES = [
    ([CONVERSATION[0], CONVERSATION[1], CONVERSATION[2], {"role": "tool", "content": "lookup"}], 3,
     "an unknown role ('tool')"),
    ([CONVERSATION[1], {"role": "assistant"}, CONVERSATION[2]], 1, "a missing 'content' key"),
    ([CONVERSATION[0], CONVERSATION[1], {"content": "who am I?"}], 2, "a missing 'role' key"),
    ([{"role": "User", "content": "hi"}], 0, "an unknown role ('User': roles are lower case)"),
]


# -- probes ---------------------------------------------------------------------------------------------------

def lm_loss(m, logits, ids, ignore_index=None):
    if ignore_index is None:
        return m.causal_lm_loss(logits, ids)
    return m.causal_lm_loss(logits, ids, ignore_index)


def lm_loss_grad(m, logits, ids):
    logits = logits.clone().requires_grad_(True)
    m.causal_lm_loss(logits, ids).backward()
    return logits.grad


def render(m, messages, add_generation_prompt=None):
    if add_generation_prompt is None:
        return m.render_chat(messages)
    return m.render_chat(messages, add_generation_prompt)


def sft(m, messages, encoder):
    return m.sft_example(messages, ENCODERS[encoder])


def mixed(m, n_domain, n_general, fraction, limit, as_lists=False):
    def stream(tag, size):
        if size is None:
            return ((tag, i) for i in itertools.count())
        items = [(tag, i) for i in range(size)]
        return items if as_lists else iter(items)
    out = m.mix_streams(stream("d", n_domain), stream("g", n_general), fraction)
    return list(itertools.islice(out, limit))


def mix_without_iterating(m, fraction):
    m.mix_streams(iter([]), iter([]), fraction)
    return "no error"


def seq_logprob(m, logits, labels, ignore_index=None):
    if ignore_index is None:
        return m.sequence_logprob(logits, labels)
    return m.sequence_logprob(logits, labels, ignore_index)


def dpo(m, pc, pr, rc, rr, beta=None):
    if beta is None:
        return m.dpo_loss(pc, pr, rc, rr)
    return m.dpo_loss(pc, pr, rc, rr, beta)


def dpo_backward(m, pc, pr, rc, rr, beta):
    pc, pr = pc.clone().requires_grad_(True), pr.clone().requires_grad_(True)
    loss, chosen, rejected = m.dpo_loss(pc, pr, rc, rr, beta)
    facts = {"loss": loss.requires_grad, "chosen": chosen.requires_grad, "rejected": rejected.requires_grad}
    loss.backward()
    return loss, pc.grad, pr.grad, facts


# -- verdict helpers ---------------------------------------------------------------------------------------------

def check_mix(out, fraction, n_domain, n_general, limit, what):
    size = lambda k: "infinitely many" if k is None else k  # noqa: E731
    where = (f"mix_streams(domain of {size(n_domain)} items, general of {size(n_general)} items, "
             f"domain_fraction={fraction}) {what}").rstrip()
    assert isinstance(out, list) and all(isinstance(x, tuple) and len(x) == 2 and x[0] in ("d", "g") for x in out), (
        f"{where}: must yield the streams' own items")
    for tag, name in (("d", "domain"), ("g", "general")):
        seq = [i for t, i in out if t == tag]
        assert seq == list(range(len(seq))), (
            f"{where}: the {name} items must come in their order, each once; got indices {seq[:20]}")
    n_dom = 0
    for n, (tag, _) in enumerate(out, 1):
        n_dom += tag == "d"
        assert within_bound(n_dom, n, fraction), (
            f"{where}: after {n} items {n_dom} are domain items, but it must stay strictly within 1 of "
            f"n * fraction = {n * fraction:.4f} after every prefix (it drifts from the fraction)")
    if len(out) < limit:  # it stopped: only legal if no stream that still has items fits item n + 1
        n, n_gen = len(out), len(out) - n_dom
        left = {"domain": n_domain is None or n_dom < n_domain, "general": n_general is None or n_gen < n_general}
        for name, d in (("domain", n_dom + 1), ("general", n_dom)):
            assert not (left[name] and gap(d, n + 1, fraction) < 1 - TOL), (
                f"{where}: it stopped after {n} items ({n_dom} domain, {n_gen} general), but item {n + 1} "
                f"could still come from the {name} stream, which has items left, within the bound; stop "
                "only when no stream that still has items can supply the next item")


# -- causal LM loss (pre-training, CPT, SFT) --------------------------------------------------------------------

@points(3)
@settings(max_examples=15)
@given(B=st.integers(1, 3), T=st.integers(2, 6), V=st.integers(2, 8), dtype=float_dtypes(),
       seed=st.integers(0, 99), ignore_index=st.sampled_from([IGNORE, -1]))
def test_causal_lm_loss_matches_shifted_cross_entropy(submission, B, T, V, dtype, seed, ignore_index):
    logits, ids = lm_batch(B, T, V, dtype, seed, ignore_index)
    got = submission.run(lm_loss, logits, ids, None if ignore_index == IGNORE else ignore_index)
    close(got, oracle_lm_loss(logits, ids, ignore_index),
          f"causal_lm_loss for logits {tuple(logits.shape)} ({dtype}, ignore_index={ignore_index}): logits[:, t] "
          "predicts input_ids[:, t + 1]")


@points(2)
def test_causal_lm_loss_is_a_token_mean_over_the_batch(submission):
    logits = seeded_tensor((2, 6, 5), torch.float64, seed=3, scale=2.0)
    ids = torch.tensor([[1, 2, IGNORE, IGNORE, IGNORE, IGNORE], [0, 4, 3, 2, 1, 0]])  # 1 target vs 5 targets
    close(submission.run(lm_loss, logits, ids), oracle_lm_loss(logits, ids),
          "causal_lm_loss of a batch with 1 and 5 targets (one mean over all 6 target tokens, not the mean "
          "of the two per-sequence means)")


def test_causal_lm_loss_custom_ignore_index_and_all_ignored(submission):
    logits = seeded_tensor((2, 5, 4), torch.float32, seed=4)
    ids = torch.tensor([[3, 0, 2, 0, 1], [1, 2, 0, 0, 0]])  # 0 is the pad id here
    close(submission.run(lm_loss, logits, ids, 0), oracle_lm_loss(logits, ids, 0),
          "causal_lm_loss(..., ignore_index=0) (targets equal to 0 do not count)")
    none = torch.full((2, 5), IGNORE)
    none[:, 0] = 1  # the first token is never a target
    got = submission.run(lm_loss, logits, none)
    assert isinstance(got, torch.Tensor) and got.dim() == 0 and torch.isnan(got), (
        f"causal_lm_loss with every target ignored must be NaN (0 / 0, as F.cross_entropy), got {got}")


def test_causal_lm_loss_gradient(submission):
    logits, ids = lm_batch(3, 5, 6, torch.float64, seed=7)
    ref = logits.clone().requires_grad_(True)
    oracle_lm_loss(ref, ids).backward()
    close(submission.run(lm_loss_grad, logits, ids), ref.grad, "the gradient of causal_lm_loss w.r.t. logits")


# -- chat template and SFT labels -----------------------------------------------------------------------------------

@points(2)
def test_render_chat_template(submission):
    for messages in (CONVERSATION, UNICODE, NO_ASSISTANT, []):
        got = submission.run(render, messages)
        assert got == template(messages), (
            f"render_chat({messages!r:.120}) must be\n{template(messages)!r}\ngot\n{got!r}")
        got = submission.run(render, messages, True)
        assert got == template(messages, True), (
            f"render_chat(..., add_generation_prompt=True) must end with '<|assistant|>\\n':\n"
            f"expected {template(messages, True)!r}\ngot      {got!r}")
    assert submission.run(render, NO_ASSISTANT, False) == template(NO_ASSISTANT), (
        "add_generation_prompt=False must not add the assistant header")


def test_bad_messages_raise_value_error_with_index(submission):
    for messages, index, what in BAD_MESSAGES:
        for name, probe, args in (("render_chat", render, ()), ("sft_example", sft, ("bytes",))):
            err = submission.raises(ValueError, probe, messages, *args,
                                    msg=f"{name} of messages where message {index} has {what} must raise ValueError")
            assert re.search(rf"(?<!\d){index}(?!\d)", err.text), (
                f"{name}: the ValueError for message {index} ({what}) must say its index {index}; "
                f"the message was {err.text!r}")


@points(3)
def test_sft_example_trains_only_assistant_bodies(submission):
    for messages in (CONVERSATION, UNICODE, NO_ASSISTANT, []):
        got = submission.run(sft, messages, "bytes")
        ids, labels = oracle_sft(messages, byte_encode)
        assert isinstance(got, tuple) and len(got) == 2, f"sft_example must return (input_ids, labels), got {got!r:.100}"
        got_ids, got_labels = got
        assert isinstance(got_ids, list) and isinstance(got_labels, list), (
            f"input_ids and labels must be lists of ints, got {type(got_ids).__name__} and {type(got_labels).__name__}")
        assert got_ids == ids, "input_ids must be the encoded headers and bodies in order (the rendered chat)"
        assert len(got_labels) == len(ids), f"labels has {len(got_labels)} entries, input_ids {len(ids)}"
        trained = bytes(t for t in got_labels if t != IGNORE).decode("utf-8", "replace")
        want = bytes(t for t in labels if t != IGNORE).decode("utf-8")
        assert got_labels == labels, (
            f"labels must be -100 on every header and on system/user bodies, and keep the ids of every "
            f"assistant body including its '<|end|>\\n' (not shifted). The trained text must be {want!r}, "
            f"yours is {trained!r}")


def test_sft_example_encodes_headers_and_bodies_separately(submission):
    got_ids, got_labels = submission.run(sft, CONVERSATION, "bos")
    ids, labels = oracle_sft(CONVERSATION, bos_encode)
    assert got_ids == ids, (
        "with a tokenizer that adds a begin-of-sequence id to each call, input_ids must be "
        "encode(header) + encode(body) for each message in turn (encode each piece separately)")
    assert got_labels == labels, "labels must follow the separately encoded pieces (ids kept on assistant bodies)"


# -- continual pre-training: replay mixing -------------------------------------------------------------------------

FRACTIONS = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 2 / 3, 0.9, 1.0]), st.floats(0.0, 1.0))


@points(3)
@settings(max_examples=15)
@given(fraction=FRACTIONS)
def test_mix_streams_keeps_the_fraction_on_every_prefix(submission, fraction):
    out = submission.run(mixed, None, None, fraction, 400)
    assert len(out) == 400, f"with two infinite streams mix_streams must go on; it stopped after {len(out)} items"
    check_mix(out, fraction, None, None, 400, "over 400 items")


CASES = [  # (domain size, general size, fraction, as lists); None: infinite
    (3, None, 0.5, False), (2, 100, 0.25, False), (0, 5, 0.0, False), (4, 0, 1.0, False),
    (50, 5, 0.3, False), (10, 10, 0.5, True), (7, None, 1 / 3, True), (None, 0, 0.2, False), (0, 0, 0.5, False),
    (3, 1, 0.5, False), (4, 3, 1.0, True), (0, 4, 0.7, False), (2, None, 0.9, False),
]


@points(2)
def test_mix_streams_stops_only_when_the_needed_stream_runs_out(submission):
    for n_domain, n_general, fraction, as_lists in CASES:
        out = submission.run(mixed, n_domain, n_general, fraction, 300, as_lists)
        check_mix(out, fraction, n_domain, n_general, 300, "")
        assert len(out) < 300, f"mix_streams(domain of {n_domain}, general of {n_general}, {fraction}) must stop"


def test_mix_streams_rejects_bad_fractions_at_the_call(submission):
    assert submission.run(mixed, 4, 4, 0.5, 20), "mix_streams must mix two small streams"
    for fraction in (-0.1, 1.5, float("nan")):
        submission.raises(ValueError, mix_without_iterating, fraction,
                          msg=f"mix_streams(..., domain_fraction={fraction}) must raise ValueError at the call, "
                              "before anything is iterated (a generator function runs nothing until next())")


# -- post-training: sequence log-probs and DPO ------------------------------------------------------------------------

@points(2)
@settings(max_examples=15)
@given(B=st.integers(1, 3), T=st.integers(2, 6), V=st.integers(2, 8), dtype=float_dtypes(),
       seed=st.integers(0, 99), ignore_index=st.sampled_from([IGNORE, -1]))
def test_sequence_logprob_sums_shifted_token_logprobs(submission, B, T, V, dtype, seed, ignore_index):
    logits, labels = lm_batch(B, T, V, dtype, seed, ignore_index, p_ignore=0.4)
    labels[0, 1:] = ignore_index  # a sequence without targets: log-prob 0
    got = submission.run(seq_logprob, logits, labels, None if ignore_index == IGNORE else ignore_index)
    close(got, oracle_seq_logprob(logits, labels, ignore_index),
          f"sequence_logprob for logits {tuple(logits.shape)} ({dtype}): the sum (not the mean) over t of "
          "log p(labels[:, t + 1] | logits[:, t]); 0 for a sequence whose targets are all ignored")


@points(2)
@settings(max_examples=15)
@given(B=st.integers(1, 6), beta=st.sampled_from([None, 0.01, 0.5, 2.0]), dtype=float_dtypes(),
       seed=st.integers(0, 99))
def test_dpo_loss_matches_the_paper(submission, B, beta, dtype, seed):
    pc, pr, rc, rr = (seeded_tensor((B,), dtype, seed=seed + k, scale=5.0) - 30.0 for k in range(4))
    got = submission.run(dpo, pc, pr, rc, rr, beta)
    assert isinstance(got, tuple) and len(got) == 3, "dpo_loss must return (loss, chosen_rewards, rejected_rewards)"
    want = oracle_dpo(pc, pr, rc, rr, 0.1 if beta is None else beta)
    for name, g, w in zip(("the mean loss", "chosen_rewards", "rejected_rewards"), got, want):
        close(g, w, f"dpo_loss {name} (B={B}, beta={'default 0.1' if beta is None else beta}, {dtype})")


@points(2)
def test_dpo_loss_is_finite_for_huge_margins(submission):
    pc = torch.tensor([3000.0, -3000.0, 0.0, 50.0, -400.0])
    pr = torch.tensor([-3000.0, 3000.0, 0.0, -50.0, 400.0])
    zeros = torch.zeros(5)
    loss, grad_c, grad_r, _ = submission.run(dpo_backward, pc, pr, zeros, zeros, 1.0)
    assert torch.isfinite(loss), (
        f"dpo_loss must stay finite when the margin is -6000 (log(sigmoid(-6000)) is log(0)); got {loss}")
    close(loss, oracle_dpo(pc, pr, zeros, zeros, 1.0)[0], "dpo_loss for margins of +-6000")
    ref_c, ref_r = pc.clone().requires_grad_(True), pr.clone().requires_grad_(True)
    (-F.logsigmoid(ref_c - ref_r).mean()).backward()
    assert torch.isfinite(grad_c).all() and torch.isfinite(grad_r).all(), (
        f"the gradient of dpo_loss must be finite for huge margins, got {grad_c} and {grad_r}")
    close(grad_c, ref_c.grad, "d dpo_loss / d policy_chosen for huge margins")
    close(grad_r, ref_r.grad, "d dpo_loss / d policy_rejected for huge margins")


def test_dpo_rewards_are_detached_and_the_policy_gets_gradients(submission):
    pc, pr, rc, rr = (seeded_tensor((4,), torch.float64, seed=k, scale=3.0) - 20.0 for k in range(4))
    loss, grad_c, grad_r, facts = submission.run(dpo_backward, pc, pr, rc, rr, 0.5)
    assert facts["loss"], "the DPO loss must carry gradients to the policy log-probs"
    assert not facts["chosen"] and not facts["rejected"], (
        "chosen_rewards and rejected_rewards must be detached (they are for logging and reward accuracy, "
        "not for backward)")
    ref_c, ref_r = pc.clone().requires_grad_(True), pr.clone().requires_grad_(True)
    oracle_dpo(ref_c, ref_r, rc, rr, 0.5)[0].backward()
    close(grad_c, ref_c.grad, "d dpo_loss / d policy_chosen")
    close(grad_r, ref_r.grad, "d dpo_loss / d policy_rejected")
