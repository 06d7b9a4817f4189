"""docs/architecture.md states only what the code does: its checkable claims, checked.

- the layer diagram is the table ``tests/test_layout.py`` enforces;
- no module is a grab bag (``utils``, ``helpers``, ``misc``);
- hessref never imports dask (a client is recognised by its module name);
- spectrum imports nothing of hessref but ``core.validation``;
- train, experiments, papyan, landscape, layerwise and the CLI call no eigensolver
  of their own: every eigenvalue goes through ``hessref.spectrum``;
- an operator product forms no P × P matrix (traced allocations), ``to_dense`` does;
- the validation boundary: the checkers run a fixed number of times per call of a
  public function, however much inner work follows (a spectrum run), and once per
  operator product.
"""

from __future__ import annotations

import ast
import re
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
from test_layout import LAYERS, PACKAGE, ROOT, imported_modules, source_files

import hessref as hr
from hessref import spectrum
from hessref.core import problem as problem_module
from hessref.core import validation

DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def diagram_layers() -> dict[str, int]:
    """{part: layer} from the diagram: lines 'layer N   hessref/x' and their continuations."""
    block = DOC.split("```", 2)[1]
    layers, current = {}, None
    for line in block.splitlines():
        m = re.match(r"\s*layer (\d+)\s+hessref/(\w+)", line)
        if m:
            current = int(m.group(1))
        else:
            m = re.match(r"\s+hessref/(\w+)", line)
        if m and current is not None:
            layers[m.groups()[-1]] = current
    return layers


def test_the_layer_diagram_is_the_enforced_table():
    aliases = {"conventions", "compare"}  # old paths of oracle modules, same layer
    assert diagram_layers() == {k: v for k, v in LAYERS.items() if k not in aliases}


def test_diagram_parser_reads_continuation_lines():
    # not vacuous: the parser sees every layer and both layer-1 parts
    layers = diagram_layers()
    assert set(layers.values()) == {0, 1, 2, 3, 4, 5}
    assert layers["operators"] == layers["spectrum"] == 1 and layers["cli"] == 5


def test_no_grab_bag_modules():
    names = {p.stem.lower() for p in source_files()} | {
        p.name.lower() for p in PACKAGE.rglob("*") if p.is_dir()
    }
    assert not {n for n in names if re.match(r"_?(utils?|helpers?|misc)$", n)}


def _imports(path: Path) -> set[str]:
    """Every module name imported by ``path`` (absolute names, any package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def test_hessref_never_imports_dask():
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            m for m in _imports(p) if m.split(".")[0] in ("dask", "distributed")
        )
        for p in source_files()
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_spectrum_imports_only_core_validation_from_the_rest_of_hessref():
    outside = set()
    for path in sorted((PACKAGE / "spectrum").glob("*.py")):
        module = "hessref.spectrum." + path.stem if path.stem != "__init__" else "hessref.spectrum"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in imported_modules(tree, module, path.stem == "__init__"):
            if not target.startswith("hessref.spectrum") and target != "hessref":
                outside.add(target.rsplit(".", 1)[0] if target.count(".") > 2 else target)
    assert outside == {"hessref.core.validation"}


EIGENSOLVERS = {"eig", "eigh", "eigvals", "eigvalsh", "eigsh", "eigs", "lobpcg", "eigh_tridiagonal"}
#: Parts that must get every eigenvalue from hessref.spectrum (docs/architecture.md).
SPECTRAL_CLIENTS = ("train", "experiments", "papyan", "landscape", "layerwise", "cli")


def eigensolver_calls(path: Path) -> list[str]:
    """Calls like np.linalg.eigh(...), eigsh(...), scipy.linalg.eigvalsh(...) in ``path``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in EIGENSOLVERS:
                calls.append(f"{path.name}:{node.lineno} {name}")
    return calls


def test_spectral_clients_call_no_eigensolver_of_their_own():
    found = []
    for path in source_files():
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part in SPECTRAL_CLIENTS:
            found += eigensolver_calls(path)
    assert not found, f"call hessref.spectrum.eigenvalues / top_eigenpairs instead: {found}"


def test_eigensolver_scan_finds_direct_calls(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import numpy as np\nfrom scipy.sparse.linalg import eigsh\n"
        "a = np.linalg.eigvalsh(x)\nb = eigsh(op, k=1)\nc = spectrum.eigenvalues(x)\n"
    )
    assert eigensolver_calls(src) == ["m.py:3 eigvalsh", "m.py:4 eigsh"]


def _problem(widths=(30, 60, 60, 10), N=64):
    rng = np.random.default_rng(0)
    model = hr.MLP(list(widths), activation="tanh")
    X = rng.standard_normal((N, widths[0]))
    return model, model.init(0), X, rng.integers(0, widths[-1], N)


def test_an_operator_product_forms_no_p_by_p_matrix():
    model, theta, X, y = _problem()
    P = model.num_params  # 6,130: a P × P float64 matrix is 300 MB
    op = hr.hessian_operator(model, theta, X, y, loss="cross_entropy")
    V = np.random.default_rng(1).standard_normal((P, 4))
    op @ V  # warm up (kept chunk state is allowed: it is O(N · widths), not O(P²))
    tracemalloc.start()
    try:
        op @ V
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * P * P / 50, f"peak {peak / 2**20:.1f} MiB for P = {P}"


def test_allocation_tracing_sees_a_dense_matrix():
    # the check above could fail: to_dense (the documented exception) is seen at P² size
    model, theta, X, y = _problem(widths=(10, 30, 10), N=8)
    P = model.num_params
    op = hr.hessian_operator(model, theta, X, y, loss="cross_entropy")
    tracemalloc.start()
    try:
        op.to_dense()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak >= 8 * P * P


CHECKERS = {
    name
    for module in (validation, problem_module)
    for name, obj in vars(module).items()
    if callable(obj)
    and getattr(obj, "__module__", "") == module.__name__
    and re.match(r"(check_|as_|make_problem)", name)
}


def checker_calls(fn) -> Counter:
    """How often each public checker of core.validation / core.problem runs during fn()."""
    codes = {
        getattr(module, name).__code__: name
        for module in (validation, problem_module)
        for name in CHECKERS
        if hasattr(module, name) and hasattr(getattr(module, name), "__code__")
    }
    counts: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            counts[codes[frame.f_code]] += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return counts


def test_checker_count_sees_checks():
    counts = checker_calls(lambda: validation.check_positive_int("k", 3))
    assert counts == Counter({"check_positive_int": 1})


def test_spectrum_checks_its_input_once_however_long_it_runs():
    # a short Lanczos run and one several times longer call the checkers equally often:
    # the kernel trusts the Operator it was given (evenly spaced spectrum: slow convergence)
    rng = np.random.default_rng(2)
    U, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    A = (U * np.linspace(0.0, 1.0, 200)) @ U.T
    A = 0.5 * (A + A.T)
    runs = {}
    for tol in (1e-1, 1e-12):
        out = {}
        counts = checker_calls(
            lambda tol=tol, out=out: out.setdefault(
                "r", spectrum.top_eigenpairs(A, 2, method="lanczos", tol=tol, rng=0)
            )
        )
        runs[tol] = (counts, out["r"].num_matvecs)
    (few, n_few), (many, n_many) = runs[1e-1], runs[1e-12]
    assert n_many >= 3 * n_few, (n_few, n_many)
    assert few == many and sum(few.values()) <= 6


def test_an_operator_product_checks_its_vector_once():
    model, theta, X, y = _problem(widths=(5, 8, 3), N=40)
    op = hr.hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=10)
    V = np.ones((model.num_params, 2))
    op @ V
    assert checker_calls(lambda: op @ V) == Counter({"as_float_array": 1})
    assert checker_calls(lambda: op @ V[:, 0]) == Counter({"as_float_array": 1})
