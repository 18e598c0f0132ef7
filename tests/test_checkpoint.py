"""`Network.save` / `bpgpu.load`: same outputs on every backend, atomic saves, loads that run no code."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import stat
import struct
import zipfile

import numpy as np
import pytest
from conftest import assert_close, params
from forged_zip import Member, forge, members_of, npy, npy_of, replaced
from fuzzing import MiB, bounded

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
        (text, "neither an .npz archive nor safetensors"),
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
        ("sizes", [3] * 100_000, "those need 199999 entries, the file has 7"),  # listed cheaply
        ("shuffle_state", {"bit_generator": "MT19937"}, "shuffle state"),
        ("version", "1", "invalid format version"),
        ("data", 7, "'data' must be the name of a data set; got 7"),
        ("data", "", "'data' must be the name of a data set"),
        ("data", "x" * 4097, "'data' must be the name of a data set"),
        ("data", ["digits"], "'data' must be the name of a data set"),
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


# ---- Files forged byte by byte: each is refused with a ValueError naming it, in bounded time and memory.


def saved(tmp_path, net=None) -> list[Member]:
    """The members of a file `Network.save` wrote."""
    path = tmp_path / "saved.npz"
    (net or trained()).save(path)
    return members_of(path.read_bytes())


def load_forged(tmp_path, members: list[Member], message: str, name: str = "forged.npz") -> None:
    """Loading the forged file fails, quickly and without allocating much, with `message` after its name."""
    path = tmp_path / name
    path.write_bytes(forge(members))
    with bounded(seconds=10, memory=64 * MiB), pytest.raises(ValueError) as caught:
        bpgpu.load(path, backend="numpy")
    assert re.match(f"{re.escape(str(path))}: .*{message}", str(caught.value)), str(caught.value)


def test_the_forging_helpers_write_a_file_that_loads_as_saved(tmp_path):
    net = trained()
    path = tmp_path / "copy.npz"
    path.write_bytes(forge(saved(tmp_path, net)))
    for got, want in zip(params(bpgpu.load(path)), params(net), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda ms: replaced(ms, "weight_0.npy", name="weight_0"),
            r"entry 'weight_0' is not named <key>\.npy",
        ),
        (lambda ms: [*ms, ms[-1]], "entry 'bias_2' appears twice"),
    ],
)
def test_every_entry_must_be_named_key_npy_once(tmp_path, change, message):
    load_forged(tmp_path, change(saved(tmp_path)), message)


def metadata_npy(members: list[Member], header: str, version: tuple[int, int] = (1, 0)) -> list[Member]:
    """`members` with the metadata entry's .npy header text replaced (its JSON kept); `{n}` in
    `header` stands for the JSON's length."""
    raw = next(m.data for m in members if m.name == "metadata.npy")
    json_bytes = raw[10 + struct.unpack("<H", raw[8:10])[0] :]
    return replaced(members, "metadata.npy", data=npy(header.format(n=len(json_bytes)), json_bytes, version))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "{{'descr': '|u1', 'fortran_order': False, 'shape': w4,), }}",
            "header that is not a Python literal",
        ),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': (True,), }}", r"shape .*: \(True,\)"),
        ("{{'descr': 'a', 'fortran_order': False, 'shape': ({n},), }}", "descr .*: 'a'"),  # numpy warns
    ],
)
def test_a_malformed_npy_header_is_refused_naming_the_file(tmp_path, header, message):
    load_forged(tmp_path, metadata_npy(saved(tmp_path), header), f"entry 'metadata' has an .npy {message}")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n},), 'x': 1}}", "not a dict of descr"),
        ("[{n}]", "not a dict of descr, fortran_order, shape: list"),
        ("{{'descr': '|u1', 'fortran_order': 0, 'shape': ({n},), }}", "fortran_order that is not True"),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': (-{n},), }}", r"shape .*: \(-\d+,\)"),
        ("{{'descr': 'nonsense', 'fortran_order': False, 'shape': ({n},), }}", "descr .*'nonsense'"),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n}, 1), }}", r"should be uint8 bytes \(1-d\)"),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n} - 1,), }}", "not a Python literal"),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }}", r"holds \d+ bytes .* needs 7"),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }}", "not a Python"),
        ("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n},), }}" + " " * 70_000, "70\\d{3} bytes"),
    ],
)
def test_every_malformed_npy_header_is_refused_saying_what_is_wrong(tmp_path, header, message):
    members = metadata_npy(saved(tmp_path), header, (1, 0) if len(header) < 1 << 16 else (2, 0))
    load_forged(tmp_path, members, message)


@pytest.mark.parametrize("version", [(2, 0), (3, 0)])
def test_npy_entries_of_every_header_version_numpy_writes_load(tmp_path, version):
    net = trained()
    members = []
    for m in saved(tmp_path, net):
        array = np.lib.format.read_array(io.BytesIO(m.data))
        out = io.BytesIO()
        np.lib.format.write_array(out, np.asfortranarray(array), version=version)
        members.append(Member(m.name, out.getvalue()))
    path = tmp_path / "versions.npz"
    path.write_bytes(forge(members))
    for got, want in zip(params(bpgpu.load(path)), params(net), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"flags": 0x1}, "'weight_0' is marked encrypted in its zip directory entry"),
        ({"flags": 0x41}, "'weight_0' is marked encrypted, strongly encrypted"),
        ({"flags": 0x20}, "'weight_0' is marked compressed patched data"),
        ({"version": 64}, r"neither an \.npz archive nor safetensors: zip file version 6\.4"),
        ({"local": {"flags": 0x1}}, "'weight_0' is marked encrypted in its local zip header"),
        ({"local": {"method": 8}}, r"'weight_0' is compressed \(zip method 8\) in its local zip header"),
        ({"local": {"version": 64}}, r"'weight_0' needs zip version 6\.4 in its local zip header"),
    ],
)
def test_encrypted_or_unsupported_zip_entries_are_refused_naming_the_file(tmp_path, changes, message):
    load_forged(tmp_path, replaced(saved(tmp_path), "weight_0.npy", **changes), message)


def test_a_compressed_entry_of_an_unknown_method_is_refused_naming_the_file(tmp_path):
    members = replaced(saved(tmp_path), "weight_0.npy", method=99)
    load_forged(tmp_path, members, r"'weight_0' is compressed \(zip method 99\) in its zip directory entry")


def test_sizes_declared_beyond_the_file_are_refused_before_anything_is_allocated(tmp_path):
    # Metadata, .npy header and zip64 directory agree on a 2**40-byte weight matrix; the file is ~1 KB.
    n_in, n_out = 2**17, 2**20
    members = saved(tmp_path, bpgpu.Network([3, 2], dtype="float64", seed=1))
    meta = json.loads(np.lib.format.read_array(io.BytesIO(members[0].data)).tobytes())
    meta["sizes"] = [n_in, n_out]
    weight = npy(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n_out}, {n_in}), }}")
    bias = npy(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n_out},), }}")
    forged = [
        Member("metadata.npy", npy_of(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))),
        Member("weight_0.npy", weight + b"\0" * 64, size=len(weight) + 8 * n_in * n_out),
        Member("bias_0.npy", bias + b"\0" * 64, size=len(bias) + 8 * n_out),
    ]
    load_forged(tmp_path, forged, r"'weight_0' declares 1099511627\d+ bytes at byte \d+, past the end")
    load_forged(tmp_path, replaced(forged, "weight_0.npy", size=2**64 - 1), "past the end", "all.npz")
    load_forged(
        tmp_path,
        replaced(forged, "weight_0.npy", offset=2**63),
        r"starts at byte 9223\d+, outside the",
        "far.npz",
    )


def test_trailing_bytes_after_the_array_data_are_refused(tmp_path):
    members = saved(tmp_path)
    padded = next(m.data for m in members if m.name == "bias_1.npy") + b"\0" * 8
    load_forged(tmp_path, replaced(members, "bias_1.npy", data=padded), "holds 40 bytes of array data")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="os.mkfifo is not available on this platform")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    with bounded(seconds=5), pytest.raises(ValueError, match=rf"^{re.escape(str(fifo))}: is not a regular"):
        bpgpu.load(fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this platform")
def test_a_device_is_refused_without_reading_it():
    with bounded(seconds=5), pytest.raises(ValueError, match=r"^/dev/zero: is not a regular file"):
        bpgpu.load("/dev/zero")


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace('"seed": ', '"seed": 1' + "0" * 5000),
        lambda text: text.replace('"sizes": [', '"sizes": [' + "7" * 4400 + ", "),
        lambda text: text.replace('"version": 1', '"version": 1' + "0" * 4300),
        lambda text: text.replace('"state": {', '"state": {"x": -' + "9" * 4500 + ", "),
    ],
)
def test_an_integer_too_long_to_convert_in_the_metadata_is_refused_naming_the_file(tmp_path, edit):
    members = saved(tmp_path)
    text = np.lib.format.read_array(io.BytesIO(members[0].data)).tobytes().decode()
    meta = np.frombuffer(edit(text).encode(), dtype=np.uint8)
    load_forged(tmp_path, replaced(members, "metadata.npy", data=npy_of(meta)), r"'metadata' .*\d{4} digits")


def test_loading_allocates_one_copy_of_the_parameters_not_two(tmp_path):
    path = tmp_path / "wide.npz"
    net = bpgpu.Network([1000, 1000], dtype="float64", seed=1, backend="numpy")
    net.save(path)
    with bounded(seconds=10, memory=12 * MiB):  # the parameters take 8 MB
        loaded = bpgpu.load(path, backend="numpy")
    np.testing.assert_array_equal(loaded.weights[0], net.weights[0])
    assert loaded.sizes == [1000, 1000] and loaded.weights[0].flags.writeable


# ---- saving never writes a file load would refuse, nor replaces what is not a regular file ---------


def test_a_network_with_nan_parameters_is_not_saved(tmp_path):
    net = trained()
    path = tmp_path / "m.npz"
    net.save(path)
    good = path.read_bytes()
    net.weights = [w * np.nan for w in net.weights]
    with pytest.raises(ValueError, match=r"refusing to save .*weight_0 holds NaN or infinite values"):
        net.save(path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_save_follows_a_link_and_never_replaces_a_fifo_or_a_directory(tmp_path):
    net = trained()
    (tmp_path / "real.npz").write_bytes(b"old")
    (tmp_path / "link.npz").symlink_to(tmp_path / "real.npz")
    net.save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink() and bpgpu.load(tmp_path / "real.npz").sizes == SIZES
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ValueError, match=r"fifo: is not a regular file; refusing to replace it"):
            net.save(tmp_path / "fifo")
        assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    (tmp_path / "dir").mkdir()
    for name in ("dir", "new/", "model.npz/"):
        with pytest.raises(ValueError):
            net.save(str(tmp_path / name) + ("/" if name.endswith("/") else ""))
    assert (tmp_path / "dir").is_dir() and not (tmp_path / "model.npz").exists()
