"""safetensors checkpoints: the layout PyTorch's `nn.Linear` has, both ways between bpgpu and
PyTorch, round trips on every backend, the format chosen by the name, and damaged files refused."""

from __future__ import annotations

import itertools
import json
import os
import struct

import numpy as np
import pytest
from conftest import assert_close, params

import bpgpu

SIZES = [6, 8, 5, 3]
OPTIONS = {"activation": "tanh", "output_activation": "sigmoid", "cost": "cross_entropy"}


def trained(backend="numpy", dtype="float64", **options):
    net = bpgpu.Network(SIZES, backend=backend, dtype=dtype, seed=4, **{**OPTIONS, **options})
    rng = np.random.default_rng(1)
    net.SGD((rng.normal(size=(30, SIZES[0])), rng.integers(0, SIZES[-1], 30)), 2, 7, 0.5)
    return net


def inputs(n=11):
    return np.random.default_rng(2).normal(size=(n, SIZES[0]))


def header_of(path):
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data


def test_the_layout_is_nn_linears_with_the_settings_in_the_metadata(tmp_path):
    net = trained()
    net.save(tmp_path / "m.safetensors")
    header, _ = header_of(tmp_path / "m.safetensors")
    settings = json.loads(header.pop("__metadata__")["bpgpu"])
    assert settings["format"] == "bpgpu-network" and settings["sizes"] == SIZES
    assert settings["activation"] == "tanh" and settings["cost"] == "cross_entropy"
    expected = {}
    for l, (n_in, n_out) in enumerate(itertools.pairwise(SIZES)):
        expected[f"layers.{l}.weight"] = ("F64", [n_out, n_in])
        expected[f"layers.{l}.bias"] = ("F64", [n_out])
    assert {key: (entry["dtype"], entry["shape"]) for key, entry in header.items()} == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trips_on_every_backend_keep_every_bit_and_the_shuffle_stream(backend, dtype, tmp_path):
    net = trained(backend, dtype)
    net.save(tmp_path / "m.safetensors")
    for target in (backend.name, "numpy"):
        loaded = bpgpu.load(tmp_path / "m.safetensors", backend=target)
        assert repr(loaded).replace(f"'{target}'", "'x'") == repr(net).replace(f"'{backend.name}'", "'x'")
        for got, want in zip(params(loaded), params(net), strict=True):
            np.testing.assert_array_equal(got, want)
        assert loaded._random.shuffle_state == net._random.shuffle_state
    loaded = bpgpu.load(tmp_path / "m.safetensors", backend=backend)
    np.testing.assert_array_equal(
        loaded.backend.to_numpy(loaded.feedforward(inputs())), net.backend.to_numpy(net.feedforward(inputs()))
    )


def test_the_name_chooses_the_format_and_the_bytes_choose_the_reader(tmp_path):
    net = trained()
    for name, magic in (("m.safetensors", None), ("m.SafeTensors", None), ("m.npz", b"PK"), ("m.bin", b"PK")):
        net.save(tmp_path / name)
        start = (tmp_path / name).read_bytes()[:9]
        assert start.startswith(magic) if magic else start[8:9] == b"{"
    os.rename(tmp_path / "m.safetensors", tmp_path / "renamed.npz")  # a misleading name: read by content
    for name in ("renamed.npz", "m.bin"):
        for got, want in zip(params(bpgpu.load(tmp_path / name)), params(net), strict=True):
            np.testing.assert_array_equal(got, want)


def torch_mlp(torch, sizes, activation, output):
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(n_in, n_out, dtype=torch.float64), activation()]
    layers[-1] = output()
    return torch.nn.Sequential(*layers)


def test_a_bpgpu_file_loads_into_torch_and_gives_the_same_outputs(tmp_path):
    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install torch)")
    from safetensors.torch import load_file

    net = trained()
    net.save(tmp_path / "m.safetensors")
    model = torch_mlp(torch, SIZES, torch.nn.Tanh, torch.nn.Sigmoid)
    state = load_file(tmp_path / "m.safetensors")
    # nn.Sequential numbers its modules 0, 1, 2, ...: Linear l is module 2 l
    model.load_state_dict(
        {f"{2 * int(key.split('.')[1])}.{key.split('.')[2]}": v for key, v in state.items()}
    )
    with torch.no_grad():
        out = model(torch.from_numpy(inputs())).numpy()
    assert_close(out, net.feedforward(inputs()), "float64")


def test_a_torch_state_dict_in_that_layout_loads_into_bpgpu(tmp_path, backend):
    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install torch)")
    from safetensors.torch import save_file

    torch.manual_seed(0)

    class MLP(torch.nn.Module):  # the layout's own shape: `layers`, a ModuleList of Linear
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(
                torch.nn.Linear(i, o, dtype=torch.float64) for i, o in itertools.pairwise(SIZES)
            )

        def forward(self, x):
            for k, layer in enumerate(self.layers):
                x = layer(x)
                x = torch.sigmoid(x) if k == len(self.layers) - 1 else torch.relu(x)
            return x

    model = MLP()
    save_file(model.state_dict(), tmp_path / "torch.safetensors")
    net = bpgpu.load(
        tmp_path / "torch.safetensors", backend=backend, activation="relu", output_activation="sigmoid"
    )
    assert net.sizes == SIZES and net.dtype == "float64" and net.activation == "relu"
    with torch.no_grad():
        want = model(torch.from_numpy(inputs())).numpy()
    assert_close(net.backend.to_numpy(net.feedforward(inputs())), want, "float64")


def test_settings_for_a_bpgpu_file_and_unknown_settings_are_refused(tmp_path):
    trained().save(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="its own settings; activation applies only"):
        bpgpu.load(tmp_path / "m.safetensors", activation="relu")
    with pytest.raises(TypeError, match=r"unexpected settings \['sizes'\]"):
        bpgpu.load(tmp_path / "m.safetensors", sizes=[1, 2])


def test_a_foreign_file_without_bpgpus_metadata_needs_its_layers(tmp_path):
    from safetensors.numpy import save_file

    save_file({"encoder.weight": np.ones((2, 3))}, tmp_path / "other.safetensors")
    with pytest.raises(
        ValueError, match=r"other.safetensors: no tensor 'layers.0.weight' \(has \['encoder.weight'\]\)"
    ):
        bpgpu.load(tmp_path / "other.safetensors")
    save_file(
        {"layers.0.weight": np.ones((2, 3)), "layers.0.bias": np.ones(2), "layers.1.weight": np.ones((4, 5))},
        tmp_path / "chain.safetensors",
    )
    with pytest.raises(ValueError, match=r"'layers.1.weight' should be \(n_out, 2\), got \[4, 5\]"):
        bpgpu.load(tmp_path / "chain.safetensors")


def forged(tmp_path, change):
    """A good file with its header (a dict) changed by `change`, re-serialised around the same data."""
    trained().save(tmp_path / "m.safetensors")
    header, data = header_of(tmp_path / "m.safetensors")
    (size,) = struct.unpack("<Q", data[:8])
    change(header)
    text = json.dumps(header).encode()
    path = tmp_path / "forged.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size :])
    return path


def bpgpu_meta(header, **changes):
    meta = json.loads(header["__metadata__"]["bpgpu"])
    meta.update(changes)
    header["__metadata__"]["bpgpu"] = json.dumps(meta)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.pop("layers.1.bias"), r"missing \['layers.1.bias'\]"),
        (lambda h: h.update({"extra": h["layers.0.bias"]}), r"unexpected \['extra'\]"),
        (
            lambda h: h["layers.0.weight"].update(dtype="F32"),
            r"'layers.0.weight' should be F64 \[8, 6\], got F32",
        ),
        (lambda h: h["layers.0.weight"].update(shape=[6, 8]), r"should be F64 \[8, 6\], got F64 \[6, 8\]"),
        (lambda h: h["layers.0.bias"].update(data_offsets=[0, 10**9]), "damaged safetensors file"),
        (lambda h: h["layers.0.bias"].update(data_offsets=[8, 72]), "damaged safetensors file"),
        (lambda h: bpgpu_meta(h, version=99, bpgpu_version="9.0"), "upgrade bpgpu"),
        (lambda h: bpgpu_meta(h, activation="nope"), "invalid model settings"),
        (lambda h: bpgpu_meta(h, sizes=[6, 8, 5, 3, 2]), "missing"),
        (lambda h: h["__metadata__"].update(bpgpu="{not json"), "'metadata' is not valid JSON"),
        (lambda h: h.update(__metadata__={"bpgpu": 3}), "must map strings to strings"),
    ],
    ids=[
        "missing",
        "extra",
        "dtype",
        "shape",
        "offsets-beyond",
        "offsets-overlap",
        "newer",
        "activation",
        "sizes",
        "json",
        "meta-type",
    ],
)
def test_forged_headers_are_refused_naming_the_file(tmp_path, change, message):
    path = forged(tmp_path, change)
    with pytest.raises(ValueError, match=message) as info:
        bpgpu.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_truncated_files_and_absurd_header_sizes_are_refused(tmp_path):
    net = trained()
    net.save(tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    path = tmp_path / "bad.safetensors"
    for cut in (0, 5, 8, 9, 100, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"^{path}: "):
            bpgpu.load(path)
    path.write_bytes(struct.pack("<Q", 1 << 62) + data[8:])
    with pytest.raises(ValueError, match="its header would be 4611686018427387904 bytes"):
        bpgpu.load(path)


def test_nan_parameters_are_refused_on_save_and_on_load(tmp_path):
    net = trained()
    bad = net.weights[1].copy()
    bad[0, 0] = np.nan
    net.weights[1] = bad
    with pytest.raises(ValueError, match="weight_1 holds NaN"):
        net.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    from safetensors.numpy import save_file

    tensors = {f"layers.{l}.weight": w for l, w in enumerate(net.weights)}
    tensors |= {f"layers.{l}.bias": b for l, b in enumerate(net.biases)}
    save_file(tensors, tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match=r"'layers\.1\.weight' holds NaN"):
        bpgpu.load(tmp_path / "nan.safetensors")


def test_a_header_whose_size_starts_pk_is_still_safetensors(tmp_path):
    """A header of 0x4B50 bytes makes the file start with "PK", as a zip does: byte 8 decides."""
    from safetensors.numpy import save

    tensors = {"layers.0.weight": np.ones((2, 3)), "layers.0.bias": np.zeros(2)}
    for length in range(0x4B50 - 300, 0x4B50):  # the note that makes the padded header 0x4B50 bytes
        data = save(tensors, metadata={"note": "x" * length})
        if data.startswith(b"PK"):
            break
    assert data.startswith(b"PK")
    (tmp_path / "pk.safetensors").write_bytes(data)
    net = bpgpu.load(tmp_path / "pk.safetensors")
    assert net.sizes == [3, 2]


def test_bad_settings_for_a_foreign_file_are_the_callers_mistake(tmp_path):
    from safetensors.numpy import save_file

    save_file({"layers.0.weight": np.ones((2, 3)), "layers.0.bias": np.ones(2)}, tmp_path / "f.safetensors")
    with pytest.raises(ValueError, match=r"^activation must be one of") as info:
        bpgpu.load(tmp_path / "f.safetensors", activation="nope")
    assert str(tmp_path) not in str(info.value)
