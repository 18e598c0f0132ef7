"""Backprop's gradients against independent references, in float64.

- central finite differences of the cost, for every activation and cost pairing, on every backend;
- the book's per-example loop (column vectors, one example at a time), averaged;
- the chapter's alternate presentation of BP1/BP2 with diagonal matrices Σ'(z);
- PyTorch autograd, when PyTorch is installed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference
from conftest import host

import bpgpu

SIZES = [3, 5, 4, 3]  # two hidden layers, so BP2 is applied twice
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUTS = (*HIDDEN, "softmax")
# Every valid (hidden activation, output activation, cost): cross-entropy needs a sigmoid output,
# log-likelihood a softmax output; the quadratic cost takes any output.
PAIRINGS = (
    [(h, o, "quadratic") for h, o in itertools.product(HIDDEN, OUTPUTS)]
    + [(h, "sigmoid", "cross_entropy") for h in HIDDEN]
    + [(h, "softmax", "log_likelihood") for h in HIDDEN]
)
# The references apply ∇_a C literally, dividing by a (and 1 − a) for the cross-entropy and the
# log-likelihood, which loses digits near saturation; bpgpu uses the exact δ^L = a − y instead.
LOOP_RTOL = {"quadratic": 1e-10, "cross_entropy": 1e-8, "log_likelihood": 1e-8}


def make(backend, hidden, output, cost, seed=3):
    return bpgpu.Network(
        SIZES,
        activation=hidden,
        output_activation=output,
        cost=cost,
        backend=backend,
        dtype="float64",
        seed=seed,
    )


def data(cost, n=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0]))
    Y = rng.uniform(0.05, 0.95, size=(n, SIZES[-1]))  # in (0, 1), valid for every cost
    if cost == "log_likelihood":
        Y /= Y.sum(axis=1, keepdims=True)  # probability rows, as the log-likelihood needs
    return X, Y


@pytest.mark.parametrize(("hidden", "output", "cost"), PAIRINGS)
def test_gradient_matches_central_differences(backend, hidden, output, cost):
    net = make(backend, hidden, output, cost)
    X, Y = data(cost)
    nabla_b, nabla_w = net.backprop(X, Y)
    h = 1e-6
    for kind, analytic in (("weights", nabla_w), ("biases", nabla_b)):
        originals = host(net, getattr(net, kind))
        for l, p in enumerate(originals):
            numeric = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                values = []
                for step in (h, -h):
                    moved = p.copy()
                    moved[i] += step
                    setattr(
                        net,
                        kind,
                        [*getattr(net, kind)[:l], backend.asarray(moved), *getattr(net, kind)[l + 1 :]],
                    )
                    values.append(net.cost(X, Y))
                setattr(net, kind, [backend.asarray(q) for q in originals])
                numeric[i] = (values[0] - values[1]) / (2 * h)
            got = net.backend.to_numpy(analytic[l])
            # Central differences err by O(h²) plus rounding ε·|C|/h: entries near zero are judged
            # against the largest entry of the same array.
            atol = 1e-8 * max(1.0, float(np.max(np.abs(numeric))))
            np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=atol, err_msg=f"{kind}[{l}]")


@pytest.mark.parametrize(("hidden", "output", "cost"), PAIRINGS)
def test_matrix_gradient_is_mean_of_per_example_loop(hidden, output, cost):
    net = make("numpy", hidden, output, cost)
    X, Y = data(cost, n=9)
    nabla_b, nabla_w = net.backprop(X, Y)
    sigmas = [hidden] * (len(SIZES) - 2) + [output]
    ref_b, ref_w = reference.loop_gradients(host(net, net.weights), host(net, net.biases), sigmas, cost, X, Y)
    rtol = LOOP_RTOL[cost]
    for got, want in zip(host(net, nabla_b) + host(net, nabla_w), ref_b + ref_w, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.max(np.abs(want))))


@pytest.mark.parametrize(("hidden", "output", "cost"), PAIRINGS)
def test_errors_equal_alternate_presentation_with_diagonal_matrices(hidden, output, cost):
    net = make("numpy", hidden, output, cost)
    X, Y = data(cost, n=1)
    nabla_b, _ = net.backprop(X, Y)  # BP3: for a single example, ∂C/∂b^l = δ^l
    sigmas = [hidden] * (len(SIZES) - 2) + [output]
    deltas = reference.matrix_form_deltas(
        host(net, net.weights), host(net, net.biases), sigmas, cost, X[0], Y[0]
    )
    rtol = LOOP_RTOL[cost]
    for got, want in zip(host(net, nabla_b), deltas, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.max(np.abs(want))))


def test_labels_give_the_same_gradient_as_one_hot_targets():
    net = make("numpy", "sigmoid", "sigmoid", "quadratic")
    X, _ = data("quadratic", n=6)
    labels = np.array([0, 1, 1, 0, 1, 0])
    from_labels = net.backprop(X, labels)
    from_rows = net.backprop(X, np.eye(SIZES[-1])[labels])
    for got, want in zip(from_labels[0] + from_labels[1], from_rows[0] + from_rows[1], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("hidden", "output", "cost"), PAIRINGS)
def test_gradient_matches_pytorch_autograd(hidden, output, cost):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no autograd oracle")
    net = make("numpy", hidden, output, cost)
    X, Y = data(cost, n=8)
    ws = [torch.tensor(w, requires_grad=True) for w in host(net, net.weights)]
    bs = [torch.tensor(b, requires_grad=True) for b in host(net, net.biases)]
    fns = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
        "identity": lambda z: z,
        "softmax": lambda z: torch.softmax(z, dim=1),
    }
    a, z = torch.tensor(X), None
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        z = a @ w.T + b
        a = fns[output if i == len(ws) - 1 else hidden](z)
    y = torch.tensor(Y)
    if cost == "quadratic":
        per_example = 0.5 * ((a - y) ** 2).sum(dim=1)
    elif cost == "cross_entropy":
        per_example = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1)
    else:
        per_example = -(y * torch.log_softmax(z, dim=1)).sum(dim=1)
    per_example.mean().backward()
    nabla_b, nabla_w = net.backprop(X, Y)
    assert net.cost(X, Y) == pytest.approx(per_example.mean().item(), rel=1e-12)
    for got, t in zip(host(net, nabla_b) + host(net, nabla_w), bs + ws, strict=True):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-10, atol=1e-14)
