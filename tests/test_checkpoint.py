"""`Network.save` / `bpgpu.load`: same outputs on every backend, atomic saves, loads that run no code."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import zipfile

import numpy as np
import pytest
from conftest import assert_close, params

import bpgpu
from bpgpu import checkpoint

SIZES = [5, 7, 4, 3]


def data(n=24, seed=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], size=n)


def trained(dtype="float64", **options):
    net = bpgpu.Network(SIZES, seed=4, dtype=dtype, **options)
    net.SGD(data(), epochs=2, mini_batch_size=5, eta=0.5)
    return net


def entries(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def rewrite(path, **changes):
    """Save a copy of the model at `path` with entries changed (None removes one); returns its path."""
    items = entries(path)
    for key, value in changes.items():
        if value is None:
            del items[key]
        else:
            items[key] = value
    out = pathlib.Path(path).with_name("changed.npz")
    np.savez(out, **items)
    return out


def metadata_bytes(**fields):
    return np.frombuffer(json.dumps(fields).encode(), dtype=np.uint8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_model_saved_on_numpy_loads_on_every_backend_with_the_same_outputs(backend, dtype, tmp_path):
    net = trained(dtype, activation="tanh", output_activation="sigmoid", cost="cross_entropy")
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = bpgpu.load(path, backend=backend)
    assert loaded.backend is backend
    for field in ("sizes", "activation", "output_activation", "cost_name", "dtype", "seed"):
        assert getattr(loaded, field) == getattr(net, field), field
    for got, want in zip(params(loaded), params(net), strict=True):
        np.testing.assert_array_equal(got, want)  # the saved bits, not a rounding of them
        assert got.dtype == np.dtype(dtype)
    X, _ = data(n=9, seed=1)
    expected = net.backend.to_numpy(net.feedforward(X))
    assert_close(loaded.backend.to_numpy(loaded.feedforward(X)), expected, dtype)


def test_a_model_saved_on_another_backend_loads_on_numpy(backend, tmp_path):
    net = bpgpu.Network(SIZES, seed=8, backend=backend, dtype="float64")
    net.SGD(data(), epochs=1, mini_batch_size=6, eta=0.5)
    net.save(tmp_path / "m.npz")
    loaded = bpgpu.load(tmp_path / "m.npz", backend="numpy")
    for got, want in zip(params(loaded), params(net), strict=True):
        np.testing.assert_array_equal(got, want)


def test_training_resumed_from_a_checkpoint_equals_training_straight_through(tmp_path):
    straight = trained()
    straight.SGD(data(), epochs=1, mini_batch_size=5, eta=0.5)
    stopped = trained()
    stopped.save(tmp_path / "m.npz")
    resumed = bpgpu.load(tmp_path / "m.npz")
    resumed.SGD(data(), epochs=1, mini_batch_size=5, eta=0.5)  # the shuffle stream resumes too
    for got, want in zip(params(resumed), params(straight), strict=True):
        np.testing.assert_array_equal(got, want)


def test_save_writes_exactly_the_given_name_with_the_usual_permissions(tmp_path):
    path = tmp_path / "model"  # no suffix: numpy.savez would add ".npz" to a name; bpgpu does not
    trained().save(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert bpgpu.load(path).sizes == SIZES


@pytest.mark.parametrize("interrupt", [OSError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_save_leaves_the_old_file_whole_and_no_temporary_behind(
    tmp_path, monkeypatch, interrupt
):
    path = tmp_path / "model.npz"
    old = trained()
    old.save(path)
    before = path.read_bytes()

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise interrupt

    monkeypatch.setattr(checkpoint.np, "savez", savez_then_fail)
    with pytest.raises(type(interrupt)):
        bpgpu.Network(SIZES, seed=99).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_loading_never_unpickles_so_a_payload_in_the_file_cannot_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model.npz"
    trained().save(path)
    items = entries(path)
    items["weight_0"] = np.array([Payload()], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **items)  # numpy pickles object arrays when asked to save them
    with pytest.raises(ValueError, match=r"evil\.npz"):
        bpgpu.load(evil)
    assert not marker.exists()


def test_truncated_or_corrupted_files_raise_value_error_naming_the_file(tmp_path):
    path = tmp_path / "model.npz"
    trained().save(path)
    whole = path.read_bytes()
    for cut in (10, len(whole) // 3, len(whole) // 2, len(whole) - 30):
        damaged = tmp_path / f"cut{cut}.npz"
        damaged.write_bytes(whole[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}.npz"):
            bpgpu.load(damaged)
    # Flip bytes inside the stored weights: the archive still opens, but its checksum no longer holds.
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weight_0.npy")
    offset = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    flipped = bytearray(whole)
    flipped[offset] ^= 0xFF
    corrupt = tmp_path / "flipped.npz"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"flipped\.npz.*damaged"):
        bpgpu.load(corrupt)


def test_files_that_are_not_bpgpu_models_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("weights: 1 2 3")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    other_format = tmp_path / "other.npz"
    np.savez(other_format, metadata=metadata_bytes(format="someone-else", version=1))
    for path, message in (
        (text, "not an .npz archive"),
        (foreign, "no 'metadata' entry"),
        (other_format, "format 'someone-else'"),
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(ValueError, match=message):
            bpgpu.load(path)
    with pytest.raises(FileNotFoundError, match=r"nothing\.npz"):
        bpgpu.load(tmp_path / "nothing.npz")


def test_a_file_from_a_newer_format_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "model.npz"
    trained().save(path)
    meta = json.loads(entries(path)["metadata"].tobytes())
    meta.update(version=checkpoint.VERSION + 1, bpgpu_version="9.0.0")
    newer = rewrite(path, metadata=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"format version 2 by bpgpu 9\.0\.0.*upgrade bpgpu"):
        bpgpu.load(newer)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weight_1": np.zeros((4, 6))}, r"'weight_1' should be float64 \(4, 7\), got float64 \(4, 6\)"),
        ({"bias_0": np.zeros(7, dtype=np.float32)}, r"'bias_0' should be float64 \(7,\), got float32"),
        ({"bias_2": np.array([0.0, np.nan, 1.0])}, "'bias_2' holds NaN"),
        ({"weight_2": None}, r"missing \['weight_2'\], unexpected \[\]"),
        ({"weight_9": np.zeros(2)}, r"missing \[\], unexpected \['weight_9'\]"),
        ({"metadata": np.frombuffer(b"{not json", dtype=np.uint8)}, "not valid JSON"),
        ({"metadata": np.zeros(3)}, "should be uint8 bytes"),
    ],
)
def test_damaged_entries_raise_value_error_saying_what_is_wrong(tmp_path, change, message):
    path = tmp_path / "model.npz"
    trained().save(path)
    with pytest.raises(ValueError, match=message):
        bpgpu.load(rewrite(path, **change))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("activation", "swish", "activation must be one of"),
        ("sizes", [5], "at least 2 layers"),
        ("dtype", "int8", "dtype"),
        ("init", "xavier", "init must be one of"),
        ("shuffle_state", {"bit_generator": "PCG64", "state": {"state": -1, "inc": 2**200}}, "shuffle state"),
        ("sizes", [4, 10**12, 2], r"entries do not match sizes \[4, 1000000000000, 2\]"),  # no allocation
        ("shuffle_state", {"bit_generator": "MT19937"}, "shuffle state"),
        ("version", "1", "invalid format version"),
    ],
)
def test_invalid_settings_in_the_metadata_are_refused(tmp_path, field, value, message):
    path = tmp_path / "model.npz"
    trained().save(path)
    meta = json.loads(entries(path)["metadata"].tobytes())
    meta[field] = value
    changed = rewrite(path, metadata=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match=message):
        bpgpu.load(changed)


def test_crafted_headers_and_members_are_refused_before_anything_large_is_allocated(tmp_path):
    path = tmp_path / "model.npz"
    trained().save(path)
    items = entries(path)
    # A bias whose .npy header claims 2^40 rows but whose bytes hold a few: refused from the header.
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(huge, "w") as archive:
        for key, value in items.items():
            with archive.open(f"{key}.npy", "w") as member:
                if key == "bias_0":
                    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
                    np.lib.format.write_array_header_1_0(member, header)
                    member.write(b"\0" * 64)
                else:
                    np.lib.format.write_array(member, value)
    with pytest.raises(
        ValueError, match=r"'bias_0' should be float64 \(7,\), got float64 \(1099511627776,\)"
    ):
        bpgpu.load(huge)
    # Compressed members could expand without bound: bpgpu writes stored ones and reads only those.
    squeezed = tmp_path / "squeezed.npz"
    np.savez_compressed(squeezed, **items)
    with pytest.raises(ValueError, match="is compressed"):
        bpgpu.load(squeezed)
    # Metadata nested too deeply for the JSON parser.
    deep = rewrite(path, metadata=np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8))
    with pytest.raises(ValueError, match="not valid JSON"):
        bpgpu.load(deep)


def test_a_bad_backend_is_reported_as_the_callers_mistake_not_the_files(tmp_path):
    trained().save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"^unknown backend 'tpu'"):
        bpgpu.load(tmp_path / "m.npz", backend="tpu")
