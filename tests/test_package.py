"""Guards on the package's shape: the public API, and where backend-specific code may live."""

from __future__ import annotations

import ast
import itertools
import pathlib
import subprocess
import sys

import pytest

import bpgpu

PACKAGE = pathlib.Path(bpgpu.__file__).parent
ARRAY_LIBRARIES = {"numpy", "cupy", "torch", "jax", "array_api_strict"}
# Host-side file I/O (data sets, checkpoints): no equations, host arrays by design; also all of io/.
HOST_DATA_MODULES = {"datasets.py", "mnist.py", "checkpoint.py"}


def imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_public_api_is_exactly_what_all_says():
    assert sorted(bpgpu.__all__) == sorted(
        [
            "BACKEND_NAMES",
            "Backend",
            "EpochRecord",
            "Network",
            "TrainingDivergedError",
            "TrainingInterrupted",
            "__version__",
            "available_backends",
            "datasets",
            "distributed",
            "get_backend",
            "load",
            "plots",
        ]
    )
    for name in bpgpu.__all__:
        assert hasattr(bpgpu, name), name


def test_only_backend_modules_import_array_libraries():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name in HOST_DATA_MODULES or path.parent.name in ("backends", "io"):
            continue
        found = imported_roots(path) & ARRAY_LIBRARIES
        if found:
            offenders[path.name] = sorted(found)
    assert offenders == {}, f"array libraries imported outside bpgpu/backends/: {offenders}"


def test_importing_bpgpu_imports_no_gpu_or_optional_library():
    optional = ("cupy", "torch", "array_api_strict", "matplotlib", "tqdm")
    code = f"import sys, bpgpu; print(sorted(m for m in {optional!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_is_a_string():
    assert isinstance(bpgpu.__version__, str) and bpgpu.__version__.count(".") == 2


def test_the_documented_submodules_work_after_import_bpgpu_alone():
    """`bpgpu.plots.plot_history(...)` as the README writes it, without importing bpgpu.plots first."""
    code = (
        "import bpgpu; bpgpu.plots.plot_history; bpgpu.datasets.load_digits; bpgpu.datasets.load_mnist; "
        "bpgpu.distributed.shard; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def bpgpu_imports(path: pathlib.Path) -> set[str]:
    """The bpgpu modules that `path` imports anywhere in it (function bodies and TYPE_CHECKING blocks
    included), as dotted names relative to the package: "step", "backends.host", ..."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1]  # a package's own __init__ imports relative to the package too
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            module = (*base, *(node.module.split(".") if node.module else ()))
            names = [(*module, alias.name) for alias in node.names]
            submodules = {".".join(n) for n in names if PACKAGE.joinpath(*n).with_suffix(".py").exists()}
            found |= submodules
            if node.module or not submodules:  # `from . import shared` imports only the submodule
                found.add(".".join(module))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("bpgpu.") for a in node.names if a.name.startswith("bpgpu.")}
    return found - {""}


def test_modules_import_each_other_without_a_cycle_and_read_top_down():
    """equations → update rules → step → loop → Network → CLI: no module imports one above it, even
    lazily, and nothing below the package imports the package itself."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {m.removesuffix(".__init__") for m in bpgpu_imports(path)} - {name}
    order = ["backprop", "step", "training", "network", "cli"]
    for lower, upper in itertools.pairwise(order):
        assert lower in graph[upper] or any(lower in graph[m] for m in graph[upper]), (lower, upper)
    assert "rules" in graph["step"] and not graph["rules"] & {"backprop", *order[1:]}  # beside backprop
    visiting, done = set(), set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in visiting, f"import cycle: {' -> '.join((*trail, module))}"
        if module in done or module not in graph:
            return
        visiting.add(module)
        for imported in sorted(graph[module]):
            visit(imported, (*trail, module))
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        if module != "":  # the package itself imports everything, by design
            visit(module, ())


def test_no_module_below_the_cli_imports_the_package_itself():
    """`from . import __version__` in a lower module ran back up to the package (`_version` holds it)."""
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).with_suffix("").parts
        if here[0] == "cli" or here == ("__init__",):
            continue
        package = here[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0 and not node.module:
                base = package[: len(package) - (node.level - 1)]
                names = [
                    a.name
                    for a in node.names
                    if not PACKAGE.joinpath(*base, a.name).with_suffix(".py").exists()
                ]
                assert base or not names, f"{path.relative_to(PACKAGE)} imports {names} from the package"


@pytest.mark.parametrize(
    "fragment",
    ["applies only with", "needs an output activation", "diverged in epoch", "PATIENCE = ", "is not JSON"],
)
def test_each_rule_and_message_is_written_once(fragment):
    """The command line and the library share the rule (bpgpu.options, bpgpu.training) rather than
    each restating it."""
    places = [
        f"{path.relative_to(PACKAGE)}"
        for path in PACKAGE.rglob("*.py")
        for _ in range(path.read_text(encoding="utf-8").count(fragment))
    ]
    assert len(places) == 1, places
