"""Public tests for ``parameter_server``: quick checks to run while you work (``dlkata check parameter_server``).

The hidden tests check much more (every placement, any ``replication`` servers down, data loss, many
threads pushing at once, the bounded-delay rule at its boundary, top-k with ties); see README.md.
"""

import torch

from grader.testing import close


def replicas(m, num_keys, num_servers, replication, keys):
    ps = m.ParameterServer(num_keys, 2, num_servers, replication)
    return [list(ps.replicas_for(k)) for k in keys]


def push_pull(m, keys, grads, pull_keys):
    ps = m.ParameterServer(6, 2, 3, replication=1, lr=0.5)
    ps.push(keys, grads)
    return ps.pull(pull_keys)


def fail_push_recover(m, grads):
    ps = m.ParameterServer(6, 2, 3, replication=1, lr=1.0)
    ps.fail(0)                  # range 0 (keys 0, 1) still has its copy on server 1
    ps.push([0, 1], grads)
    ps.recover(0)               # server 0 copies ranges 0 and 2 back
    ps.fail(1)                  # now keys 0, 1 can only come from server 0
    return ps.pull([0, 1])


def bsp(m):
    bd = m.BoundedDelay(2, 0)
    answers = [bd.can_start(0, 0)]
    bd.finish(0, 0)
    answers.append(bd.can_start(0, 1))   # worker 1 has not finished iteration 0
    bd.finish(1, 0)
    answers.append(bd.can_start(0, 1))
    return [bool(a) for a in answers]


def topk(m, grad, k):
    indices, values = m.topk_compress(grad, k)
    return indices, values, m.topk_decompress(indices, values, grad.shape)


def test_replica_placement(submission):
    got = submission.run(replicas, 10, 4, 2, [0, 2, 3, 6, 8, 9])
    # ranges [0,3) [3,6) [6,8) [8,10); range r on servers r, r+1, r+2 (mod 4)
    assert got == [[0, 1, 2], [0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1], [3, 0, 1]], f"replicas_for: {got}"


def test_push_then_pull(submission):
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    got = submission.run(push_pull, [1, 4, 1], g, [4, 1, 0])
    close(got, torch.tensor([[-1.5, -2.0], [-3.0, -4.0], [0.0, 0.0]]),
          "pull([4, 1, 0]) after push([1, 4, 1], g) with lr=0.5 (key 1's two grads add up)")


def test_recover_copies_data_back(submission):
    g = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    close(submission.run(fail_push_recover, g), -g, "keys 0, 1 served by the recovered server 0")


def test_bounded_delay_bsp(submission):
    assert submission.run(bsp) == [True, False, True], "BoundedDelay(2, 0) is bulk synchronous"


def test_topk_roundtrip(submission):
    grad = torch.tensor([[0.1, -5.0], [3.0, -0.2]])
    indices, values, dense = submission.run(topk, grad, 2)
    assert sorted(indices.tolist()) == [1, 2], f"flat indices of the 2 largest |grad|: {indices.tolist()}"
    close(dense, torch.tensor([[0.0, -5.0], [3.0, 0.0]]), "topk_decompress(topk_compress(grad, 2))")
