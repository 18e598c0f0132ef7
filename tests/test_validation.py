"""Every bad input raises a clear ValueError/TypeError and leaves the network exactly as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import params
from fuzzing import MiB, bounded

import bpgpu

SIZES = [4, 5, 3]
rng = np.random.default_rng(0)
X = rng.normal(size=(6, 4))
LABELS = np.array([0, 1, 2, 0, 1, 2])
Y = np.eye(3)[LABELS]


def snapshot(net):
    return params(net), net._random._shuffle.bit_generator.state


def assert_unchanged(net, before):
    got, state = snapshot(net)
    for a, b in zip(got, before[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert state == before[1], "the shuffling stream moved"


# ---- constructor ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": [4]}, ValueError, r"at least 2 layers.*\[4\]"),
        ({"sizes": []}, ValueError, "at least 2 layers"),
        ({"sizes": [4, 0, 3]}, ValueError, r"sizes\[1\] must be a positive integer; got 0"),
        ({"sizes": [4, -2]}, ValueError, r"sizes\[1\].*got -2"),
        ({"sizes": [4, 2.5]}, TypeError, r"sizes\[1\].*2.5"),
        ({"sizes": [4, True]}, TypeError, r"sizes\[1\]"),
        ({"sizes": "4,3"}, TypeError, "list of layer widths"),
        ({"sizes": 4}, TypeError, "list of layer widths"),
        (
            {"activation": "softplus"},
            ValueError,
            r"activation must be one of 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'identity', 'softmax'; "
            r"got 'softplus'",
        ),
        ({"output_activation": "soft"}, ValueError, "output_activation must be one of"),
        ({"cost": "hinge"}, ValueError, "cost must be one of 'quadratic', 'cross_entropy'"),
        (
            {"cost": "cross_entropy", "activation": "relu"},
            ValueError,
            r"needs an output activation in \('sigmoid',\).*'relu'",
        ),
        ({"cost": "cross_entropy", "output_activation": "tanh"}, ValueError, "output_activation='tanh'"),
        ({"dtype": "float16"}, ValueError, "dtype must be one of 'float32', 'float64'; got 'float16'"),
        ({"dtype": "int64"}, ValueError, "dtype must be one of"),
        ({"seed": -1}, ValueError, "seed must be None or a non-negative integer; got -1"),
        ({"seed": 1.5}, TypeError, "seed must be"),
        ({"backend": "gpu"}, ValueError, "unknown backend 'gpu'"),
        ({"backend": 7}, TypeError, "backend must be"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    kwargs = {"sizes": SIZES, **kwargs}
    with pytest.raises(error, match=match):
        bpgpu.Network(kwargs.pop("sizes"), **kwargs)


def test_dtype_objects_with_the_right_name_are_accepted():
    assert bpgpu.Network(SIZES, dtype=np.float64).dtype == "float64"


# ---- data ------------------------------------------------------------------------------------------

BAD_X = [
    (X[0], ValueError, r"X must be 2-d.*shape \(n, 4\); got 1-d shape \(4,\)"),
    (X[None], ValueError, r"got 3-d shape \(1, 6, 4\)"),
    (np.zeros((0, 4)), ValueError, r"X is empty: got shape \(0, 4\)"),
    (
        X[:, :3],
        ValueError,
        r"3 features per row but the input layer has 4.*expected shape \(n, 4\), got \(6, 3\)",
    ),
    (np.where(X > 1, np.nan, X), ValueError, "X contains NaN, infinity"),
    (np.where(X > 1, np.inf, X), ValueError, "X contains NaN, infinity"),
    (np.full((6, 4), 1e300), ValueError, "beyond the float32 range"),
    (np.full((6, 4), "a"), TypeError, r"X: expected real numbers.*got dtype <U1"),
    (X.astype(complex), TypeError, "got dtype complex128"),
    (np.array([[1.0, 2.0], [3.0]], dtype=object), TypeError, "got dtype object"),
]

BAD_Y = [
    (LABELS[:5], ValueError, "X has 6 rows but Y has 5"),
    (Y[:4], ValueError, "X has 6 rows but Y has 4"),
    (LABELS + 1, ValueError, r"must lie in \[0, 3\) for 3 output neurons; got values from 1 to 3"),
    (LABELS - 1, ValueError, "got values from -1 to 1"),
    (LABELS.astype(float), TypeError, r"integer class labels.*got dtype float64.*shape \(6, 3\)"),
    (Y[:, :2], ValueError, r"2 columns but the output layer has 3.*expected shape \(6, 3\), got \(6, 2\)"),
    (Y[None], ValueError, r"labels \(6,\) or targets \(6, 3\); got shape \(1, 6, 3\)"),
    (np.where(Y > 0, np.nan, Y), ValueError, "Y contains NaN, infinity"),
    (Y.astype(str), TypeError, "Y: expected real numbers"),
]


@pytest.fixture
def net(backend):
    return bpgpu.Network(SIZES, backend=backend, seed=5)


@pytest.mark.parametrize(("bad", "error", "match"), BAD_X)
@pytest.mark.parametrize(
    "method", ["feedforward", "backprop", "cost", "evaluate", "update_mini_batch", "SGD"]
)
def test_bad_features_change_nothing(net, method, bad, error, match):
    call = {
        "feedforward": lambda: net.feedforward(bad),
        "backprop": lambda: net.backprop(bad, LABELS),
        "cost": lambda: net.cost(bad, LABELS),
        "evaluate": lambda: net.evaluate(bad, LABELS),
        "update_mini_batch": lambda: net.update_mini_batch(bad, LABELS, 1.0),
        "SGD": lambda: net.SGD((bad, LABELS), 1, 2, 1.0),
    }[method]
    before = snapshot(net)
    with pytest.raises(error, match=match.replace("X ", "training_data X ") if method == "SGD" else match):
        call()
    assert_unchanged(net, before)


@pytest.mark.parametrize(("bad", "error", "match"), BAD_Y)
@pytest.mark.parametrize("method", ["backprop", "cost", "update_mini_batch", "SGD"])
def test_bad_targets_change_nothing(net, method, bad, error, match):
    call = {
        "backprop": lambda: net.backprop(X, bad),
        "cost": lambda: net.cost(X, bad),
        "update_mini_batch": lambda: net.update_mini_batch(X, bad, 1.0),
        "SGD": lambda: net.SGD((X, bad), 1, 2, 1.0),
    }[method]
    before = snapshot(net)
    with pytest.raises(error, match=match.replace("Y ", "training_data Y ") if method == "SGD" else match):
        call()
    assert_unchanged(net, before)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (LABELS + 1, ValueError, r"labels must lie in \[0, 3\)"),
        (Y, ValueError, r"labels must be 1-d class labels, shape \(6,\); got shape \(6, 3\)"),
        (LABELS[:2], ValueError, "^X has 6 rows but labels has 2; expected one per row of X$"),
        (LABELS.astype(float), TypeError, "labels must be integer class labels"),
        (LABELS.astype(bool), TypeError, "got dtype bool"),
    ],
)
def test_bad_labels_for_evaluate(net, bad, error, match):
    with pytest.raises(error, match=match):
        net.evaluate(X, bad)


def test_cross_entropy_targets_must_lie_in_the_unit_interval(backend):
    net = bpgpu.Network(SIZES, cost="cross_entropy", backend=backend)
    with pytest.raises(ValueError, match=r"Y must lie in \[0, 1\] for the cross-entropy cost"):
        net.backprop(X, 2 * Y)


# ---- hyper-parameters and test data for SGD ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs must be a positive integer; got 0"),
        ({"epochs": -3}, ValueError, "epochs must be a positive integer; got -3"),
        ({"epochs": 2.0}, TypeError, r"epochs must be a positive integer; got 2.0 \(float\)"),
        ({"epochs": True}, TypeError, "epochs must be a positive integer"),
        ({"mini_batch_size": 0}, ValueError, "mini_batch_size must be a positive integer; got 0"),
        ({"mini_batch_size": "10"}, TypeError, "mini_batch_size must be a positive integer"),
        ({"eta": 0.0}, ValueError, "eta must be a positive finite number; got 0.0"),
        ({"eta": -1}, ValueError, "eta must be a positive finite number; got -1"),
        ({"eta": math.nan}, ValueError, "got nan"),
        ({"eta": math.inf}, ValueError, "got inf"),
        ({"eta": "3"}, TypeError, r"eta must be a positive finite number; got '3' \(str\)"),
        ({"training_data": X}, TypeError, r"training_data must be a pair \(X, Y\); got ndarray"),
        ({"training_data": (X, LABELS, LABELS)}, TypeError, r"training_data must be a pair"),
        ({"test_data": X}, TypeError, r"test_data must be a pair \(X, labels\)"),
        ({"test_data": (X[:, :2], LABELS)}, ValueError, "test_data X has 2 features per row"),
        ({"test_data": (X, LABELS + 5)}, ValueError, r"test_data labels must lie in \[0, 3\)"),
        ({"test_data": (X, Y)}, ValueError, "test_data labels must be 1-d class labels"),
        ({"test_data": (X, LABELS[:3])}, ValueError, "^test_data X has 6 rows but test_data labels has 3"),
        # Python ints too large for a float are a ValueError, not an OverflowError.
        ({"eta": 10**400}, ValueError, "eta must be a positive finite number; got an integer of about 401"),
        ({"lmbda": 10**400}, ValueError, "lmbda must be a finite number ≥ 0; got an integer of about 401"),
        ({"momentum": 10**400}, ValueError, r"momentum must be a number in \[0, 1\); got an integer"),
        ({"epochs": 10**5000}, ValueError, "epochs must be a positive integer at most 2\\*\\*63 - 1"),
        ({"mini_batch_size": 2**63}, ValueError, "mini_batch_size must be a positive integer at most"),
    ],
)
def test_bad_sgd_arguments_change_nothing(net, kwargs, error, match):
    call = {"training_data": (X, LABELS), "epochs": 2, "mini_batch_size": 2, "eta": 1.0, **kwargs}
    before = snapshot(net)
    with bounded(seconds=30, memory=256 * MiB), pytest.raises(error, match=match):  # 10**5000 epochs: no hang
        net.SGD(**call)
    assert_unchanged(net, before)


@pytest.mark.parametrize("eta", [0.0, -0.5, math.nan, "x", None])
def test_bad_eta_for_update_mini_batch_changes_nothing(net, eta):
    before = snapshot(net)
    with pytest.raises((TypeError, ValueError), match="eta must be a positive finite number"):
        net.update_mini_batch(X, LABELS, eta)
    assert_unchanged(net, before)


@pytest.mark.parametrize("source", ["float16", "float32"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_in_data_narrower_than_the_network_are_refused(backend, source, bad):
    net = bpgpu.Network(SIZES, backend=backend, dtype="float64", seed=5)
    data = X.astype(source)
    data[2, 1] = bad
    before = snapshot(net)
    with pytest.raises(ValueError, match="X contains NaN, infinity"):
        net.update_mini_batch(data, LABELS, 1.0)
    with pytest.raises(ValueError, match="Y contains NaN, infinity"):
        net.backprop(X, np.where(Y > 0, bad, Y).astype(source))
    assert_unchanged(net, before)


def test_valid_narrow_data_trains_a_wider_network_without_warnings(backend):
    # filterwarnings = error turns any overflow warning from the range check into a failure.
    net = bpgpu.Network(SIZES, backend=backend, dtype="float64", seed=5)
    net.SGD((X.astype("float16"), LABELS), 1, 2, 1.0, test_data=(X.astype("float32"), LABELS))


def test_a_callback_that_cannot_be_called_is_refused_before_training(net):
    before = snapshot(net)
    with pytest.raises(TypeError, match="callback must be None or a function of one EpochRecord; got int"):
        net.SGD((X, LABELS), 2, 2, 1.0, callback=5)
    assert_unchanged(net, before)


@pytest.mark.parametrize(
    "layout",
    [
        lambda a: a[::-1],
        lambda a: np.asfortranarray(a),
        lambda a: a.astype(a.dtype.newbyteorder(">")),
        "readonly",
    ],
    ids=["negative-strides", "fortran", "big-endian", "read-only"],
)
def test_any_memory_layout_of_host_data_gives_the_same_result(backend, layout):
    net = bpgpu.Network(SIZES, backend=backend, seed=5)
    if layout == "readonly":
        data = X.copy()
        data.flags.writeable = False
        expected = X
    else:
        data, expected = layout(X), np.ascontiguousarray(layout(X), dtype=X.dtype.newbyteorder("="))
    np.testing.assert_array_equal(
        net.backend.to_numpy(net.feedforward(data)), net.backend.to_numpy(net.feedforward(expected))
    )


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int32", "int8"])
def test_labels_of_every_integer_dtype_are_accepted(backend, dtype):
    net = bpgpu.Network(SIZES, backend=backend, seed=5)
    assert net.evaluate(X, LABELS.astype(dtype)) == net.evaluate(X, LABELS)
    # The same dtype already on the device: torch, for one, cannot reduce unsigned tensors.
    with backend.activate():  # JAX makes 64-bit integers only there
        on_device = backend.xp.asarray(backend.asarray(LABELS), dtype=getattr(backend.xp, dtype))
    assert net.evaluate(X, on_device) == net.evaluate(X, LABELS)


def test_arrays_of_another_backend_are_refused_by_name():
    net = bpgpu.Network(SIZES, backend="numpy")
    strict = bpgpu.get_backend("array_api_strict")
    before = snapshot(net)
    with pytest.raises(
        TypeError,
        match=r"training_data X: expected a numpy array, got an array of array_api_strict.*mixed backends",
    ):
        net.SGD((strict.asarray(X), LABELS), 1, 2, 1.0)
    assert_unchanged(net, before)


def test_complex_arrays_of_the_own_backend_are_refused(backend):
    net = bpgpu.Network(SIZES, backend=backend)
    with pytest.raises(TypeError, match=r"X: expected real numbers.*got dtype complex64"):
        net.feedforward(backend.xp.asarray(backend.asarray(X[:, :4]), dtype=backend.xp.complex64))


def test_own_backend_arrays_and_python_lists_are_accepted(backend):
    net = bpgpu.Network(SIZES, backend=backend, seed=5)
    from_host = net.backend.to_numpy(net.feedforward(X))
    from_device = net.backend.to_numpy(net.feedforward(backend.asarray(X)))
    from_list = net.backend.to_numpy(net.feedforward(X.tolist()))
    np.testing.assert_array_equal(from_device, from_host)
    np.testing.assert_array_equal(from_list, from_host)
    assert net.evaluate(X, LABELS.tolist()) == net.evaluate(X, backend.asarray(LABELS))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda net: net.update_mini_batch(X, LABELS, 10**400), "eta must be a positive finite number"),
        (lambda net: net.update_mini_batch(X, LABELS, 1.0, lmbda=0.5, n=10**400), "n must be a positive int"),
        (lambda net: net.update_mini_batch(X, LABELS, 1.0, lmbda=10**400), "lmbda must be a finite number"),
        (lambda net: net.total_cost(X, LABELS, 10**400), "lmbda must be a finite number ≥ 0; got an integer"),
    ],
)
def test_integers_too_large_for_a_float_are_value_errors(net, call, match):
    before = snapshot(net)
    with pytest.raises(ValueError, match=match):
        call(net)
    assert_unchanged(net, before)


@pytest.mark.parametrize("seed", [2**128, 10**5000], ids=["2**128", "10**5000"])
def test_seeds_beyond_what_numpy_uses_are_refused_with_a_printable_message(seed):
    with pytest.raises(ValueError, match="seed must be below 2\\*\\*128"):
        bpgpu.Network(SIZES, seed=seed)


def test_a_network_larger_than_memory_is_refused_before_anything_is_drawn():
    with bounded(seconds=10, memory=16 * MiB), pytest.raises(ValueError) as info:
        bpgpu.Network([115711875] * 4, backend="numpy")
    message = str(info.value)
    assert "4.02e+16 parameters in float32" in message and "GiB of memory of the host" in message
