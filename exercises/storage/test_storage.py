"""Public tests for ``storage``: a few classic cases. Run ``dlkata check storage``.

The hidden tests go much further (random strides, dtype reinterpretations, negative numpy strides, ...).
Probes build the tensors where your code runs, since memory addresses cannot travel between processes.
"""

import numpy as np
import torch


def interleaved(m):
    x = torch.arange(8, dtype=torch.float32)
    return m.same_storage(x[::2], x[1::2]), m.overlaps(x[::2], x[1::2]), m.overlaps(x[:5], x[4:])


def copies(m):
    x = torch.arange(8, dtype=torch.float32)
    return m.same_storage(x, x.clone()), m.overlaps(x, x.clone())


def transposed_views(m):
    t = torch.arange(24.0).unflatten(0, (4, 6)).T  # (6, 4), strides (1, 6); view is forbidden here
    return [m.can_view(t, s) for s in [(24,), (2, 3, 4), (6, 2, 2), (-1, 4), (-1, -1)]]


def with_numpy(m):
    a = np.arange(10, dtype=np.float64)
    t = torch.from_numpy(a)
    return m.shares_memory_with_array(t[::2], a[1::2]), m.shares_memory_with_array(t[:1], a[::-1])


def test_interleaved_views_share_storage_but_do_not_overlap(submission):
    same, overlap, tail = submission.run(interleaved)
    assert same is True, "x[::2] and x[1::2] are views of one storage: same_storage must be True"
    assert overlap is False, "x[::2] and x[1::2] have no byte in common: overlaps must be False"
    assert tail is True, "x[:5] and x[4:] both contain x[4]: overlaps must be True"


def test_copies_share_nothing(submission):
    same, overlap = submission.run(copies)
    assert same is False and overlap is False, "x.clone() has its own storage: both answers must be False"


def test_can_view_a_transposed_tensor(submission):
    answers = submission.run(transposed_views)
    t = torch.arange(24.0).view(4, 6).T
    for shape, got in zip([(24,), (2, 3, 4), (6, 2, 2), (-1, 4), (-1, -1)], answers):
        try:
            t.view(shape)
            expected = True
        except RuntimeError:
            expected = False
        assert got is expected, f"can_view(t, {shape}) for t = arange(24).view(4, 6).T must be {expected}"


def test_numpy_arrays_including_negative_strides(submission):
    stepped, reversed_ = submission.run(with_numpy)
    assert stepped is False, "t[::2] and a[1::2] of one buffer share no byte"
    assert reversed_ is True, "t[:1] is a[0], which is the last element of a[::-1] (a negative stride)"
