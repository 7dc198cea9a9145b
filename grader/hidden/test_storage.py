"""Hidden tests for ``storage``. Probes build the tensors and arrays in the sandbox from a name or a plain
recipe and return the submission's raw answers; this process builds the same objects and decides the
truth with ``numpy.shares_memory(..., max_work=None)`` (exact) and by actually trying ``t.view(shape)``."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import points

STORAGE_BYTES = 1024
DTYPES = (torch.uint8, torch.bool, torch.int16, torch.float16, torch.int32, torch.float32, torch.float64,
          torch.complex64)
view = torch.Tensor.view  # the probes' own views: bound at import, before the sandbox's guard wraps it
VIEW_OPS = {"aten::view", "aten::_unsafe_view", "aten::reshape", "aten::_reshape_alias", "aten::view_copy",
            "aten::_reshape_copy", "aten::_reshape_alias_copy"}


def _x():
    return torch.arange(24, dtype=torch.float32)


def _m():
    return view(torch.arange(24, dtype=torch.float32), 4, 6)


def _buf():
    return np.arange(24, dtype=np.float32)


BASES = {"x": _x, "m": _m, "t": _x, "a": _buf, None: lambda: None}


# -- named cases: name -> (base, builder of the pair from the base, expected) -------------------------

SAME_STORAGE = {
    "x and x": ("x", lambda x: (x, x), True),
    "x and x[1:]": ("x", lambda x: (x, x[1:]), True),
    "x[::2] and x[1::2]": ("x", lambda x: (x[::2], x[1::2]), True),
    "m and m.T": ("m", lambda m: (m, m.T), True),
    "m[0] and m[3, 2:]": ("m", lambda m: (m[0], m[3, 2:]), True),
    "x and x.view(torch.uint8)[5:]": ("x", lambda x: (x, view(x, torch.uint8)[5:]), True),
    "x and torch.from_numpy(x.numpy())": ("x", lambda x: (x, torch.from_numpy(x.numpy())), True),
    "x[:0] and x (x[:0] still uses x's storage)": ("x", lambda x: (x[:0], x), True),
    "x and x.clone()": ("x", lambda x: (x, x.clone()), False),
    "m and m.T.contiguous()": ("m", lambda m: (m, m.T.contiguous()), False),
    "two separate arange(24) tensors": (None, lambda _: (_x(), _x()), False),
    "two separate torch.empty(0)": (None, lambda _: (torch.empty(0), torch.empty(0)), False),
    "torch.empty(0) and itself (a 0-byte storage shares with nothing)":
        (None, lambda _: (lambda e: (e, e))(torch.empty(0)), False),
}

OVERLAPS = {
    "x and x": ("x", lambda x: (x, x), True),
    "x[::2] and x[1::2] (interleaved, no common byte)": ("x", lambda x: (x[::2], x[1::2]), False),
    "x[:12] and x[12:]": ("x", lambda x: (x[:12], x[12:]), False),
    "x[:13] and x[12:]": ("x", lambda x: (x[:13], x[12:]), True),
    "m[:, :3] and m[:, 3:] (column blocks)": ("m", lambda m: (m[:, :3], m[:, 3:]), False),
    "m[0] and m[:, 0]": ("m", lambda m: (m[0], m[:, 0]), True),
    "m[1] and m[:, 0] (row 1 vs column 0 meet at m[1, 0])": ("m", lambda m: (m[1], m[:, 0]), True),
    "m[1, 1:] and m[:, 0]": ("m", lambda m: (m[1, 1:], m[:, 0]), False),
    "m[::2, ::2] and m[1::2, 1::2]": ("m", lambda m: (m[::2, ::2], m[1::2, 1::2]), False),
    "m.T and m[2:3]": ("m", lambda m: (m.T, m[2:3]), True),
    "x[5:6].expand(4, 3) and x[5]": ("x", lambda x: (x[5:6].expand(4, 3), x[5]), True),
    "x[5:6].expand(4, 3) and x[6]": ("x", lambda x: (x[5:6].expand(4, 3), x[6]), False),
    "x and x.clone()": ("x", lambda x: (x, x.clone()), False),
    "two separate tensors": (None, lambda _: (_x(), _x()), False),
}

BYTE_CASES = {
    "float32 x and x.view(torch.uint8)[1::4] (byte 1 of every element)":
        ("x", lambda x: (x, view(x, torch.uint8)[1::4]), True),
    "x[0] and x.view(torch.uint8)[4:8] (the bytes of x[1])":
        ("x", lambda x: (x[0], view(x, torch.uint8)[4:8]), False),
    "x[1] and x.view(torch.uint8)[7:9] (byte 7 is x[1]'s last)":
        ("x", lambda x: (x[1], view(x, torch.uint8)[7:9]), True),
    "x[0] and x.view(torch.int16)[1] (upper half of x[0])":
        ("x", lambda x: (x[0], view(x, torch.int16)[1]), True),
    "x[::2] and x.view(torch.int16)[2::4] (lower halves of x[1::2])":
        ("x", lambda x: (x[::2], view(x, torch.int16)[2::4]), False),
    "x[::2] and x.view(torch.float64)[1] (x[2] and x[3])":
        ("x", lambda x: (x[::2], view(x, torch.float64)[1]), True),
    "x[1::2] and x.view(torch.float64)[::3] (x[0], x[1], x[6], x[7], ...)":
        ("x", lambda x: (x[1::2], view(x, torch.float64)[::3]), True),
    "x[::2] and x.view(torch.uint8)[4::8] (first byte of each odd element)":
        ("x", lambda x: (x[::2], view(x, torch.uint8)[4::8]), False),
}

ZERO_SIZE = {
    "x[:0] and x": ("x", lambda x: (x[:0], x), False),
    "x and x[3:3]": ("x", lambda x: (x, x[3:3]), False),
    "m[:, :0] and m": ("m", lambda m: (m[:, :0], m), False),
    "x[2:3].expand(0, 5) and x[2]": ("x", lambda x: (x[2:3].expand(0, 5), x[2]), False),
    "torch.empty(0) and itself": (None, lambda _: (lambda e: (e, e))(torch.empty(0)), False),
    "m[1:1].T and m[1]": ("m", lambda m: (m[1:1].T, m[1]), False),
}

ARRAYS = {
    "torch.from_numpy(a) and a": ("a", lambda a: (torch.from_numpy(a), a), True),
    "torch.from_numpy(a)[::2] and a[1::2]": ("a", lambda a: (torch.from_numpy(a)[::2], a[1::2]), False),
    "torch.from_numpy(a)[:1] and a[::-1] (negative numpy stride)":
        ("a", lambda a: (torch.from_numpy(a)[:1], a[::-1]), True),
    "torch.from_numpy(a)[:12] and a[::-1][:12] (the last 12, reversed)":
        ("a", lambda a: (torch.from_numpy(a)[:12], a[::-1][:12]), False),
    "torch.from_numpy(a)[5:6] and a.reshape(4, 6).T":
        ("a", lambda a: (torch.from_numpy(a)[5:6], a.reshape(4, 6).T), True),
    "torch.from_numpy(a)[1:] and a.view(np.uint8)[1:4] (bytes of a[0])":
        ("a", lambda a: (torch.from_numpy(a)[1:], a.view(np.uint8)[1:4]), False),
    "torch.from_numpy(a) and a.view(np.uint8)[2::4]":
        ("a", lambda a: (torch.from_numpy(a), a.view(np.uint8)[2::4]), True),
    "torch.from_numpy(a) and a.copy()": ("a", lambda a: (torch.from_numpy(a), a.copy()), False),
    "torch.from_numpy(a) and a[:0]": ("a", lambda a: (torch.from_numpy(a), a[:0]), False),
    "torch.from_numpy(a)[3:3] and a": ("a", lambda a: (torch.from_numpy(a)[3:3], a), False),
    "t[4:] and t.numpy()[2:5]": ("x", lambda t: (t[4:], t.numpy()[2:5]), True),
    "t[5:] and t.numpy()[2:5]": ("x", lambda t: (t[5:], t.numpy()[2:5]), False),
    "torch.zeros(3) and an unrelated array": (None, lambda _: (torch.zeros(3), _buf()), False),
}

CAN_VIEW = {
    "contiguous (4, 6) as (24,)": lambda: (_m(), (24,)),
    "contiguous (4, 6) as (2, -1, 3)": lambda: (_m(), (2, -1, 3)),
    "m.T (6, 4) as (24,)": lambda: (_m().T, (24,)),
    "m.T (6, 4) as (2, 3, 4) (splitting one dim)": lambda: (_m().T, (2, 3, 4)),
    "m.T (6, 4) as (6, 2, 2)": lambda: (_m().T, (6, 2, 2)),
    "m.T (6, 4) as (3, 8)": lambda: (_m().T, (3, 8)),
    "m.T (6, 4) as (6, 1, 4, 1) (size-1 dims anywhere)": lambda: (_m().T, (6, 1, 4, 1)),
    "m[:, ::2] (4, 3) as (12,)": lambda: (_m()[:, ::2], (12,)),
    "m[:, ::2] (4, 3) as (2, 2, 3)": lambda: (_m()[:, ::2], (2, 2, 3)),
    "m[::2] (2, 6) as (12,)": lambda: (_m()[::2], (12,)),
    "m[::2] (2, 6) as (2, 3, 2)": lambda: (_m()[::2], (2, 3, 2)),
    "x[3:4].expand(4, 5) as (20,) (stride 0)": lambda: (_x()[3:4].expand(4, 5), (20,)),
    "x[3:4].expand(4, 5) as (2, 2, 5)": lambda: (_x()[3:4].expand(4, 5), (2, 2, 5)),
    "m[:, None, :].expand(4, 2, 6) as (8, 6)": lambda: (_m()[:, None, :].expand(4, 2, 6), (8, 6)),
    "m[:, None, :].expand(4, 2, 6) as (4, 12)": lambda: (_m()[:, None, :].expand(4, 2, 6), (4, 12)),
    "scalar as (1, 1)": lambda: (_x()[0], (1, 1)),
    "scalar as (-1,)": lambda: (_x()[0], (-1,)),
    "scalar as ()": lambda: (_x()[0], ()),
    "(1,) as ()": lambda: (_x()[:1], ()),
    "m[:, 1:2] (4, 1) as (4,)": lambda: (_m()[:, 1:2], (4,)),
    "x[:6].view(1, 2, 3).permute(1, 0, 2) (2, 1, 3), strides (3, 6, 1), as (6,) (a size-1 dim's stride is "
    "irrelevant)": lambda: (view(_x()[:6], 1, 2, 3).permute(1, 0, 2), (6,)),
    "as_strided((2, 1, 3), (3, 7, 1)) as (3, 2)": lambda: (_x().as_strided((2, 1, 3), (3, 7, 1)), (3, 2)),
    "m.T[:, :0] (6, 0) as (0, 6)": lambda: (_m().T[:, :0], (0, 6)),
    "m.T[:, :0] (6, 0) as (-1, 3)": lambda: (_m().T[:, :0], (-1, 3)),
    "m.T[:, :0] (6, 0) as (-1,)": lambda: (_m().T[:, :0], (-1,)),
    "m.T[:, :0] (6, 0) as (0, -1) (-1 cannot be inferred next to 0)": lambda: (_m().T[:, :0], (0, -1)),
    "(4, 6) as (5, 5) (wrong element count)": lambda: (_m(), (5, 5)),
    "(4, 6) as (-1, -1) (two -1)": lambda: (_m(), (-1, -1)),
    "(4, 6) as (-2, -12)": lambda: (_m(), (-2, -12)),
    "(4, 6) as (-1, 5) (24 is not a multiple of 5)": lambda: (_m(), (-1, 5)),
    "(4, 6) as (24, 0)": lambda: (_m(), (24, 0)),
    "m.T (6, 4) as (-1,)": lambda: (_m().T, (-1,)),
}


# -- probes ------------------------------------------------------------------------------------------------

def run_cases(m, fn, table, names):
    cases = globals()[table]
    return [getattr(m, fn)(*build_case(cases[name])) for name in names]


def build_case(case):
    base, builder, _ = case
    return builder(BASES[base]())


def run_can_view(m, names):
    return [m.can_view(*CAN_VIEW[name]()) for name in names]


def overlaps_both_ways(m, recipe_a, recipe_b):
    a, b = build_tensors([recipe_a, recipe_b])
    return m.overlaps(a, b), m.overlaps(b, a)


def array_overlap(m, tensor_recipe, array_recipe):
    t, a = build_pair_with_array(tensor_recipe, array_recipe)
    return m.shares_memory_with_array(t, a)


def can_view_many(m, recipe, shape_list):
    t = build_view_target(recipe)
    return [m.can_view(t, s) for s in shape_list]


def view_ops_during_can_view(m, shape_list):
    from torch.utils._python_dispatch import TorchDispatchMode

    t = view(torch.arange(24.0), 2, 3, 4).transpose(0, 2)
    ptr = t.untyped_storage().data_ptr()
    seen = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            first = args[0] if args else None
            if isinstance(first, torch.Tensor) and first.untyped_storage().data_ptr() == ptr:
                seen.append(func.overloadpacket._qualified_op_name)
            return func(*args, **(kwargs or {}))

    with Recorder():
        answers = [m.can_view(t, s) for s in shape_list]
    return answers, sorted(set(seen))


# -- recipes: plain data -> tensors / arrays (the same in the sandbox and here) ----------------------------

def build_tensors(recipes):
    """Each recipe (storage, dtype, offset, sizes, strides) is an as_strided view of one of two byte buffers."""
    storages = [torch.zeros(STORAGE_BYTES, dtype=torch.uint8) for _ in range(2)]
    return [view(storages[sid], dtype).as_strided(sizes, strides, offset)
            for sid, dtype, offset, sizes, strides, _ in recipes]


def build_pair_with_array(tensor_recipe, array_recipe):
    buf = np.zeros(STORAGE_BYTES, dtype=np.uint8)
    _, dtype, offset, sizes, strides, _ = tensor_recipe
    t = view(torch.from_numpy(buf), dtype).as_strided(sizes, strides, offset)
    sid, dtype, offset, sizes, strides, flip = array_recipe
    source = buf if sid == 0 else np.zeros(STORAGE_BYTES, dtype=np.uint8)
    typed = source.view(torch.empty((), dtype=dtype).numpy().dtype)
    itemsize = typed.itemsize
    a = np.lib.stride_tricks.as_strided(typed[offset:], tuple(sizes), tuple(s * itemsize for s in strides))
    if flip:
        a = a[::-1]  # a negative stride on the first dim
    return t, a


def build_view_target(recipe):
    kind, data = recipe
    if kind == "strided":
        sizes, strides, offset = data
        return torch.zeros(STORAGE_BYTES).as_strided(sizes, strides, offset)
    base_shape, perm, slices, expand_at = data
    t = view(torch.arange(math.prod(base_shape), dtype=torch.float32), base_shape).permute(*perm)
    t = t[tuple(slice(start, None, step) for start, step in slices)]
    if expand_at is not None:
        dim, n = expand_at
        t = t.unsqueeze(dim)
        t = t.expand(*[n if k == dim else -1 for k in range(t.dim())])
    return t


def truth_overlap(a, b):
    return bool(np.shares_memory(a.numpy(), b if isinstance(b, np.ndarray) else b.numpy(), max_work=None))


def truth_view(t, shape):
    try:
        t.view(shape)
        return True
    except RuntimeError:
        return False


def candidate_shapes(sizes):
    """Shapes to try a tensor of ``sizes`` as: merges, splits, size-1 dims, -1, and invalid ones."""
    sizes = tuple(sizes)
    numel = math.prod(sizes)
    out = [(-1,), (numel,), sizes, sizes[::-1], tuple(d for d in sizes if d != 1), (numel, 1), (1, numel)]
    for k in range(len(sizes) - 1):
        out.append(sizes[:k] + (sizes[k] * sizes[k + 1],) + sizes[k + 2:])
    for k, n in enumerate(sizes):
        out += [sizes[:k] + (f, n // f) + sizes[k + 1:] for f in range(2, n) if n % f == 0]
        out.append(sizes[:k] + (1,) + sizes[k:])
    with_minus = []
    for s in out:
        for k, d in enumerate(s):
            if d > 1:
                with_minus.append(s[:k] + (-1,) + s[k + 1:])
                break
    out += with_minus + [(numel + 1,), (-1, -1), (-2, -numel or -1), (0, -1), (numel, 0)]
    seen, unique = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def check_bool(value, what):
    assert type(value) is bool, f"{what} must return a Python bool, got {type(value).__name__} ({value!r})"
    return value


def check_table(answers, table, fn, what_false, what_true):
    for (name, (_, _, expected)), got in zip(table.items(), answers):
        check_bool(got, f"{fn}({name})")
        assert got == expected, (f"{fn} for {name} must be {expected}: "
                                 f"{what_true if expected else what_false}")


# -- strategies ---------------------------------------------------------------------------------------------

@st.composite
def view_recipes(draw, storages=(0, 0, 0, 1), flip=False):
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    ndim = draw(st.integers(0, 3), label="ndim")
    sizes = draw(st.lists(st.sampled_from((0, 1, 2, 2, 3, 3, 4, 4)), min_size=ndim, max_size=ndim))
    strides = draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim), label="strides")
    offset = draw(st.integers(0, 12), label="offset")
    storage = draw(st.sampled_from(storages), label="storage")
    return storage, dtype, offset, sizes, strides, flip and ndim > 0 and draw(st.booleans(), label="flip")


@st.composite
def natural_views(draw):
    base = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4), label="base shape"))
    perm = tuple(draw(st.permutations(range(len(base))), label="permutation"))
    permuted = [base[p] for p in perm]
    slices = [(draw(st.integers(0, 1)) if n > 1 else 0, draw(st.integers(1, 2))) for n in permuted]
    expand_at = None
    if draw(st.booleans(), label="expand"):
        expand_at = (draw(st.integers(0, len(base))), draw(st.integers(1, 3)))
    return "natural", (base, perm, slices, expand_at)


@st.composite
def strided_views(draw):
    ndim = draw(st.integers(0, 4), label="ndim")
    sizes = draw(st.lists(st.sampled_from((0, 1, 1, 2, 2, 3, 4)), min_size=ndim, max_size=ndim), label="sizes")
    strides = draw(st.lists(st.sampled_from((0, 1, 2, 3, 4, 6, 8, 12, 24)), min_size=ndim, max_size=ndim))
    return "strided", (sizes, strides, draw(st.integers(0, 5), label="offset"))


# -- same_storage ---------------------------------------------------------------------------------------------

@points(2)
def test_same_storage_views_copies_and_empty_storages(submission):
    answers = submission.run(run_cases, "same_storage", "SAME_STORAGE", list(SAME_STORAGE))
    check_table(answers, SAME_STORAGE, "same_storage",
                "different allocations (or a 0-byte storage) share nothing",
                "views of one storage share it whatever their offset, strides or dtype "
                "(compare untyped_storage().data_ptr(), not data_ptr())")


# -- overlaps -------------------------------------------------------------------------------------------------

@points(2)
def test_overlaps_views_of_one_tensor(submission):
    answers = submission.run(run_cases, "overlaps", "OVERLAPS", list(OVERLAPS))
    check_table(answers, OVERLAPS, "overlaps", "no element byte of one is an element byte of the other "
                "(sharing a storage or a bounding range is not enough)",
                "some element is in both")


@points(2)
def test_overlaps_compares_bytes_across_dtypes(submission):
    answers = submission.run(run_cases, "overlaps", "BYTE_CASES", list(BYTE_CASES))
    check_table(answers, BYTE_CASES, "overlaps",
                "the byte ranges [addr, addr + element_size) never meet",
                "an element covers element_size() bytes from its address, and some byte is in both")


def test_overlaps_zero_size_never(submission):
    answers = submission.run(run_cases, "overlaps", "ZERO_SIZE", list(ZERO_SIZE))
    check_table(answers, ZERO_SIZE, "overlaps", "a tensor with no elements overlaps nothing", "")


@points(3)
@settings(max_examples=60)
@given(a=view_recipes(), b=view_recipes())
def test_overlaps_matches_exact_truth_for_random_strides(submission, a, b):
    ab, ba = submission.run(overlaps_both_ways, a, b)
    x, y = build_tensors([a, b])
    expected = truth_overlap(x, y)
    what = (f"overlaps(a, b) for a = {describe(a)} and b = {describe(b)}"
            f"{' (b in another storage)' if a[0] != b[0] else ''}")
    assert check_bool(ab, what) == expected, f"{what} must be {expected}"
    assert check_bool(ba, what) == expected, f"{what} must be {expected} also with the arguments swapped"


def describe(recipe):
    sid, dtype, offset, sizes, strides, flip = recipe
    return (f"as_strided({tuple(sizes)}, {tuple(strides)}, offset={offset}) of the buffer viewed as "
            f"{str(dtype).replace('torch.', '')}" + (", then [::-1]" if flip else ""))


# -- shares_memory_with_array --------------------------------------------------------------------------------

@points(2)
def test_shares_memory_with_array_cases(submission):
    answers = submission.run(run_cases, "shares_memory_with_array", "ARRAYS", list(ARRAYS))
    check_table(answers, ARRAYS, "shares_memory_with_array",
                "no element byte of the tensor is an element byte of the array",
                "some byte is in both (numpy strides are in bytes, and may be negative)")


@points(2)
@settings(max_examples=40)
@given(t=view_recipes(storages=(0,)), a=view_recipes(storages=(0, 0, 0, 1), flip=True))
def test_shares_memory_with_array_matches_exact_truth(submission, t, a):
    got = submission.run(array_overlap, t, a)
    tensor, array = build_pair_with_array(t, a)
    expected = truth_overlap(tensor, array)
    what = f"shares_memory_with_array(t, a) for t = {describe(t)} and a = {describe(a)} (numpy)"
    assert check_bool(got, what) == expected, f"{what} must be {expected}"


# -- can_view --------------------------------------------------------------------------------------------------

@points(2)
def test_can_view_cases(submission):
    names = list(CAN_VIEW)
    answers = submission.run(run_can_view, names)
    for name, got in zip(names, answers):
        t, shape = CAN_VIEW[name]()
        expected = truth_view(t, shape)
        check_bool(got, f"can_view({name})")
        assert got == expected, (f"can_view for {name}: t.view{shape} on sizes {tuple(t.shape)}, strides "
                                 f"{t.stride()} {'succeeds' if expected else 'raises'}, so it must be {expected}")


@points(3)
@given(recipe=st.one_of(natural_views(), strided_views()))
def test_can_view_matches_trying_view(submission, recipe):
    t = build_view_target(recipe)
    shapes = candidate_shapes(t.shape)
    answers = submission.run(can_view_many, recipe, shapes)
    assert len(answers) == len(shapes)
    for shape, got in zip(shapes, answers):
        expected = truth_view(t, shape)
        what = f"can_view(t, {shape}) for t of sizes {tuple(t.shape)}, strides {t.stride()}"
        assert check_bool(got, what) == expected, (
            f"{what} must be {expected}: t.view{shape} {'succeeds' if expected else 'raises'}")


def test_can_view_decides_without_trying(submission):
    shapes = [(24,), (4, 6), (4, 3, 2), (2, 2, 6), (-1, 2), (5, 5), (-1, -1)]
    answers, seen = submission.run(view_ops_during_can_view, shapes)
    t = torch.arange(24.0).view(2, 3, 4).transpose(0, 2)
    for shape, got in zip(shapes, answers):
        check_bool(got, f"can_view(t, {shape})")
        assert got == truth_view(t, shape), f"can_view(t, {shape}) for a transposed (4, 3, 2) tensor is wrong"
    tried = sorted(set(seen) & VIEW_OPS)
    assert not tried, (f"can_view must decide from sizes and strides alone, but it applied {tried} to the "
                       "tensor (that is trying t.view / t.reshape and catching the error)")
