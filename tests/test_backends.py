"""The backend selector: names, "auto", the environment variable, and every fallback path.

CuPy is simulated with stand-in modules so that the paths a GPU machine would take ("imports but no
device", "not installed", "broken install") are proven on any machine.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types

import numpy as np
import pytest

import bpgpu
from bpgpu import backends
from bpgpu.backends import cupy_backend


class FakeCudaError(RuntimeError):
    pass


def fake_cupy(device_count):
    """A module that imports like CuPy on a machine without a working GPU."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=runtime)
    return module


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


def test_numpy_is_always_available_and_every_listed_backend_loads():
    names = bpgpu.available_backends()
    assert names[0] == "numpy"
    assert set(names) <= set(bpgpu.BACKEND_NAMES)
    for name in names:
        assert bpgpu.get_backend(name).name == name


def test_auto_picks_numpy_here_unless_a_gpu_works(no_env):
    if importlib.util.find_spec("cupy") is None:
        expected = "numpy"  # the CPU machines of CI: CuPy is not even installed
    else:
        expected = "cupy" if "cupy" in bpgpu.available_backends() else "numpy"
    assert bpgpu.get_backend().name == expected
    assert bpgpu.get_backend("auto").name == expected


def test_auto_falls_back_to_numpy_and_says_so_once(monkeypatch, caplog, no_env):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(FakeCudaError("cudaErrorNoDevice")))
    monkeypatch.setattr(backends, "_auto_announced", False)
    with caplog.at_level(logging.DEBUG, logger="bpgpu"):
        assert bpgpu.get_backend("auto").name == "numpy"
        assert bpgpu.get_backend("auto").name == "numpy"
    records = [r for r in caplog.records if r.name == "bpgpu"]
    assert [r.levelno for r in records] == [logging.INFO, logging.DEBUG]
    said, why = (r.getMessage() for r in records)
    assert said == "bpgpu: no CUDA GPU: training on the CPU with NumPy"  # short, and no error in it
    assert "cudaErrorNoDevice" in why  # the reason, for --debug and the logger


def test_environment_variable_is_honoured(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict")
    assert bpgpu.get_backend().name == "array_api_strict"
    assert bpgpu.Network([2, 2]).backend.name == "array_api_strict"
    monkeypatch.setenv(backends.ENV_VAR, "numpy")
    assert bpgpu.Network([2, 2]).backend.name == "numpy"


def test_environment_variable_with_unknown_name_names_the_variable(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "tpu")
    with pytest.raises(ValueError, match=r"'tpu' \(from environment variable BPGPU_BACKEND\)"):
        bpgpu.get_backend()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'") as info:
        bpgpu.get_backend("tensorflow")
    for name in ("auto", *bpgpu.BACKEND_NAMES):
        assert repr(name) in str(info.value)


def test_names_are_case_and_space_insensitive_and_backends_pass_through():
    backend = bpgpu.get_backend(" NumPy ")
    assert backend.name == "numpy"
    assert bpgpu.get_backend(backend) is backend


def test_a_name_that_is_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="got int"):
        bpgpu.get_backend(3)


def test_cupy_without_a_working_gpu_raises_a_clear_runtime_error():
    if "cupy" in bpgpu.available_backends():
        pytest.skip("a CUDA device works on this machine, so CuPy cannot fail here")
    with pytest.raises(RuntimeError, match="backend 'cupy' is not available") as info:
        bpgpu.get_backend("cupy")
    assert info.value.__cause__ is not None


def test_cupy_importable_but_no_device(monkeypatch):
    error = FakeCudaError("cudaErrorNoDevice: no CUDA-capable device is detected")
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(error))
    with pytest.raises(RuntimeError, match=r"no CUDA device works.*cudaErrorNoDevice") as info:
        bpgpu.get_backend("cupy")
    assert info.value.__cause__ is error
    assert "cupy" not in bpgpu.available_backends()


def test_cupy_importable_with_zero_devices(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(0))
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        bpgpu.get_backend("cupy")


def test_cupy_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(RuntimeError, match="install it with") as info:
        bpgpu.get_backend("cupy")
    assert isinstance(info.value.__cause__, ImportError)


def test_cupy_whose_import_itself_crashes_is_only_unavailable(monkeypatch):
    def broken_import(name):
        raise OSError("libcuda.so.1: cannot open shared object file")

    monkeypatch.setattr(cupy_backend, "importlib", types.SimpleNamespace(import_module=broken_import))
    with pytest.raises(RuntimeError, match="libcuda") as info:
        bpgpu.get_backend("cupy")
    assert isinstance(info.value.__cause__, OSError)


def test_torch_whose_import_crashes_is_only_unavailable(monkeypatch):
    from bpgpu.backends import torch_backend

    def broken_import(name):
        raise OSError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(torch_backend, "importlib", types.SimpleNamespace(import_module=broken_import))
    with pytest.raises(RuntimeError, match=r"backend 'torch' is not available.*libcudnn") as info:
        bpgpu.get_backend("torch")
    assert isinstance(info.value.__cause__, OSError)
    assert "torch" not in bpgpu.available_backends()


def test_torch_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(RuntimeError, match="backend 'torch' is not available") as info:
        bpgpu.get_backend("torch")
    assert isinstance(info.value.__cause__, ImportError)
    assert "--index-url https://download.pytorch.org/whl/cpu" in str(info.value)  # not the CUDA build
    assert "torch" not in bpgpu.available_backends()


class FakeDevice:
    """Stands in for cupy.cuda.Device: a context manager that counts synchronisations."""

    def __init__(self):
        self.entered, self.synchronized = 0, 0
        self.mem_info = (32 << 20, 64 << 20)  # (free, total) bytes, as cupy.cuda.Device reports them

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        self.synchronized += 1


def numpy_backed_cupy(monkeypatch, result=None):
    """Make `import cupy` give a module that runs on NumPy, so the working-GPU path runs anywhere."""
    device = FakeDevice()
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1), Device=lambda: device
    )
    module.float32, module.arange, module.asarray = np.float32, np.arange, np.asarray
    module.asnumpy = (lambda a: np.asarray(result)) if result is not None else np.asarray
    modules = {"cupy": module, "array_api_compat.cupy": importlib.import_module("array_api_compat.numpy")}
    monkeypatch.setattr(cupy_backend, "importlib", types.SimpleNamespace(import_module=modules.__getitem__))
    return device


def test_working_cupy_is_listed_chosen_by_auto_and_announced(monkeypatch, caplog, no_env):
    device = numpy_backed_cupy(monkeypatch)
    monkeypatch.setattr(backends, "_auto_announced", False)
    assert "cupy" in bpgpu.available_backends()
    with caplog.at_level(logging.INFO, logger="bpgpu"):
        assert bpgpu.get_backend().name == "cupy"
    assert any("chose cupy" in r.getMessage() for r in caplog.records)
    net = bpgpu.Network([3, 4, 2], backend="cupy", seed=1, dtype="float64")
    ref = bpgpu.Network([3, 4, 2], backend="numpy", seed=1, dtype="float64")
    X, labels = np.random.default_rng(0).normal(size=(9, 3)), np.arange(9) % 2
    history = net.SGD((X, labels), 2, 4, 1.0, test_data=(X, labels))
    ref_history = ref.SGD((X, labels), 2, 4, 1.0, test_data=(X, labels))
    assert [r.correct for r in history] == [r.correct for r in ref_history]
    np.testing.assert_array_equal(net.backend.to_numpy(net.weights[0]), ref.backend.to_numpy(ref.weights[0]))
    assert device.synchronized == 0  # the metrics' one transfer per epoch is the only wait
    assert device.entered >= 1  # public methods run with the network's device current
    with pytest.raises(ValueError, match=r"more than the 0.0625 GiB of memory of cupy on "):
        bpgpu.Network([5000, 5000], backend="cupy")  # 95 MiB of float32 parameters: the host has room


def test_cupy_whose_test_product_is_wrong_is_unavailable(monkeypatch):
    numpy_backed_cupy(monkeypatch, result=[[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(RuntimeError, match="test product on the GPU gave"):
        bpgpu.get_backend("cupy")


def test_torch_tensors_that_track_gradients_are_detached():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    net = bpgpu.Network([3, 4, 2], backend="torch", seed=1)
    X = torch.ones((5, 3), requires_grad=True)
    net.SGD((X, torch.zeros(5, dtype=torch.int64)), 2, 2, 1.0)
    assert not any(p.requires_grad for p in net.weights + net.biases)


def test_round_trip_to_host_and_back(backend):
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    device = backend.asarray(host, dtype=backend.dtype("float32"))
    assert backend.owns(device)
    back = backend.to_numpy(device)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, host)
    assert backend.asarray(device) is device  # an array already there is not copied
    backend.synchronize()


def test_arrays_of_another_backend_are_refused():
    strict = bpgpu.get_backend("array_api_strict")
    foreign = strict.asarray(np.ones(2))
    with pytest.raises(TypeError, match=r"array_api_strict.*mixed backends"):
        bpgpu.get_backend("numpy").asarray(foreign)


def test_arrays_on_another_device_are_refused():
    strict = bpgpu.get_backend("array_api_strict")
    elsewhere = strict.xp.asarray([1.0, 2.0], device=strict.xp.Device("device1"))
    with pytest.raises(ValueError, match=r"device1.*CPU_DEVICE"):
        strict.asarray(elsewhere)


def test_numpy_fast_sum_and_take_return_exactly_what_the_compat_functions_do():
    import array_api_compat.numpy as compat

    from bpgpu.backends.numpy_backend import XP

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(7, 5)).astype(d) for d in ("float32", "float64")]
    arrays += [
        rng.integers(-9, 9, size=(7, 5)),
        rng.integers(0, 9, size=(7, 5)).astype(np.uint8),
        np.ones((7, 5), bool),
    ]
    for a in arrays:
        for kwargs in ({}, {"axis": 0}, {"axis": 1}, {"axis": (0, 1)}, {"axis": 0, "keepdims": True}):
            got, want = XP.sum(a, **kwargs), compat.sum(a, **kwargs)
            assert got.dtype == want.dtype and np.array_equal(got, want), (a.dtype, kwargs)
        for kwargs in ({"axis": 0}, {"axis": 1}):
            indices = np.array([3, 0, 3, 6]) if kwargs["axis"] == 0 else np.array([4, 1])
            got, want = XP.take(a, indices, **kwargs), compat.take(a, indices, **kwargs)
            assert got.dtype == want.dtype and np.array_equal(got, want)
        assert np.array_equal(
            XP.take(a.reshape(-1), np.array([1, 2])), compat.take(a.reshape(-1), np.array([1, 2]))
        )


def test_training_on_the_fast_numpy_namespace_is_bit_identical_to_the_compat_namespace():
    import array_api_compat.numpy as compat

    from bpgpu.backends.numpy_backend import NumpyBackend

    rng = np.random.default_rng(1)
    X, labels = rng.normal(size=(40, 6)), rng.integers(0, 3, size=40)
    nets = [
        bpgpu.Network([6, 5, 3], seed=2, backend=NumpyBackend(ns, "cpu"))
        for ns in (bpgpu.get_backend("numpy").xp, compat)
    ]
    for net in nets:
        net.SGD((X, labels), 2, 7, 0.5, monitor=("training_cost",))
    for a, b in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_numpy_fast_path_can_be_switched_off(monkeypatch):
    import array_api_compat.numpy as compat

    from bpgpu.backends import numpy_backend

    monkeypatch.setenv("BPGPU_NUMPY_COMPAT", "1")
    assert numpy_backend.load().xp is compat
    monkeypatch.setenv("BPGPU_NUMPY_COMPAT", "0")
    assert numpy_backend.load().xp is numpy_backend.XP


def test_cupy_says_once_when_its_kernel_cache_is_cold(monkeypatch, caplog, tmp_path, no_env):
    numpy_backed_cupy(monkeypatch)
    X, labels = np.random.default_rng(0).normal(size=(9, 3)), np.arange(9) % 2
    for cache, said in ((tmp_path / "empty", 1), (tmp_path / "warm", 0)):
        cache.mkdir()
        if not said:
            (cache / "kernel.cubin").write_bytes(b"\0")
        monkeypatch.setenv("CUPY_CACHE_DIR", str(cache))
        cupy_backend._announce_cold_cache.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bpgpu"):
            for _ in range(2):
                bpgpu.Network([3, 4, 2], backend="cupy", seed=1).SGD((X, labels), 2, 4, 1.0)
        notes = [r for r in caplog.records if "compiling GPU kernels, once per machine" in r.getMessage()]
        assert len(notes) == said and all(str(cache) in r.getMessage() for r in notes)


def test_auto_on_a_gpu_names_torch_as_the_faster_route_when_it_is_installed(monkeypatch, caplog, no_env):
    numpy_backed_cupy(monkeypatch)
    monkeypatch.setattr(backends, "_auto_announced", False)
    monkeypatch.setattr(backends.routes, "torch_installed", lambda: True)
    with caplog.at_level(logging.INFO, logger="bpgpu"):
        assert bpgpu.get_backend("auto").name == "cupy"
    messages = [r.getMessage() for r in caplog.records if r.name == "bpgpu"]
    assert len(messages) == 2 and "chose cupy" in messages[0]
    assert (
        "--backend torch trains faster" in messages[1]
        and "batch 128, torch 0.32 s and CuPy 0.48 s" in messages[1]
    )


def test_no_route_advice_off_the_gpu_or_without_torch_on_it(monkeypatch, caplog, no_env):
    monkeypatch.setattr(backends, "_auto_announced", False)
    monkeypatch.setattr(backends.routes, "torch_installed", lambda: True)
    with caplog.at_level(logging.INFO, logger="bpgpu"):
        bpgpu.get_backend("auto")  # numpy here: nothing to advise
    assert not any("faster" in r.getMessage() for r in caplog.records)
    assert backends.routes.faster_route_among("cupy", {"torch": "cpu", "cupy": "cuda:0"}) is None
    assert backends.routes.faster_route_among("cupy", {"cupy": "cuda:0"}) is None
    assert "CUDA graph" in backends.routes.faster_route_among("cupy", {"torch": "cuda:0", "cupy": "cuda:0"})


def test_cupy_hands_a_cuda_aware_mpi_its_device_buffer_after_a_synchronize(monkeypatch, no_env):
    device = numpy_backed_cupy(monkeypatch)
    backend = bpgpu.get_backend("cupy")
    flat = backend.asarray(np.arange(4.0))
    assert backend.message_buffer(flat, device_aware=True) is flat
    assert device.synchronized == 1  # MPI reads it outside CuPy's stream: the queue must be done
    backend.message_buffer(flat, device_aware=False)  # staged: the copy to the host waits itself
    assert device.synchronized == 1
