"""``compare`` naming every transposed weight block, and ``hessref.testing`` for tool authors.

The "theirs" arrays are hessref's exact values deliberately corrupted in the ways other
tools get them wrong (weight blocks stored (in, out), a sum where a mean is expected),
so each test knows the right diagnosis; the uncorrupted value must pass.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from hessref import oracle
from hessref.compare import compare
from hessref.testing import (
    KINDS,
    OracleCase,
    assert_curvature_close,
    catalogue_cases,
    expected_value,
)


@pytest.fixture(scope="module")
def deep():
    """Three weight blocks with d_out, d_in > 1 (4→5→3→2), so any subset can be transposed."""
    model, theta, X, y = oracle.random_problem((4, 5, 3, 2), "tanh", "mse", num_samples=6, rng=3)
    return model, theta, X, y, oracle.reference_bundle(model, theta, X, y, loss="mse")


def transpose_order(model, layers):
    """q with theirs = reference[q]: the W_l of ``layers`` stored (in, out)."""
    q = np.arange(model.num_params)
    for l in layers:
        s, (d_out, d_in) = model.weight_slice(l), (model.sizes[l], model.sizes[l - 1])
        q[s] = s.start + np.arange(d_out * d_in).reshape(d_out, d_in).T.ravel()
    return q


@pytest.mark.parametrize(
    "layers", [c for k in (1, 2, 3) for c in itertools.combinations((1, 2, 3), k)]
)
def test_compare_names_every_transposed_block(deep, layers):
    model, *_, b = deep
    q = transpose_order(model, layers)
    names = [f"W{l}" for l in layers]
    for theirs, ref, kind in ((b.H[np.ix_(q, q)], b.H, "H"), (b.gradient[q], b.gradient, None)):
        report = compare(theirs, ref, model=model, kind=kind)
        assert not report.passed
        assert report.transposed_blocks == names
        note = next(n for n in report.notes if "transposed order" in n)
        assert note.startswith("theirs matches the reference") and all(n in note for n in names)
        assert f"transposed blocks {', '.join(names)}" in str(report)


def test_compare_names_transposed_blocks_beside_other_errors(deep):
    model, *_, b = deep
    q = transpose_order(model, (1, 3))
    theirs = b.H[np.ix_(q, q)]
    i, j = model.weight_slice(1).start, model.bias_slice(2).start  # an off-diagonal slip
    theirs[i, j] = theirs[j, i] = theirs[i, j] + 1.0
    report = compare(theirs, b.H, model=model, kind="H")
    assert report.transposed_blocks == ["W1", "W3"]
    assert any(n.startswith("other differences remain") for n in report.notes)


def test_compare_no_transposed_blocks_on_plain_errors(deep):
    model, *_, b = deep
    report = compare(2 * b.H, b.H, model=model, kind="H")
    assert not report.passed and report.transposed_blocks == []


# --- hessref.testing -------------------------------------------------------------------------


def test_assert_curvature_close_passes_on_exact_values_in_each_convention(deep):
    model, theta, X, y, b = deep
    for conv in ("hessref", "torch", "jax_flax", "autograd_dict"):
        for kind in ("loss", "gradient", "H", "G", "diag_G", "trace_H", "eigenvalues_H"):
            theirs, _ = expected_value(b, kind, conv)
            report = assert_curvature_close(
                theirs, model, theta, X, y, kind=kind, loss="mse", convention=conv, bundle=b
            )
            assert report.passed and report.max_rel_error == 0.0


def test_assert_curvature_close_fails_loudly_on_a_transposed_block(deep):
    model, theta, X, y, b = deep
    q = transpose_order(model, (2,))
    with pytest.raises(AssertionError) as info:
        assert_curvature_close(b.H[np.ix_(q, q)], model, theta, X, y, kind="H", loss="mse")
    msg = str(info.value)
    assert "transposed blocks: W2" in msg.splitlines()[0]
    assert "worst at (W2[" in msg or "W2[" in msg.splitlines()[0]


def test_assert_curvature_close_fails_loudly_on_a_missing_one_over_n(deep):
    model, theta, X, y, b = deep
    N = X.shape[0]
    with pytest.raises(AssertionError, match=r"a missing 1/N \(N = 6\)"):
        assert_curvature_close(N * b.G, model, theta, X, y, kind="G", loss="mse", bundle=b)
    with pytest.raises(AssertionError, match=r"an extra 1/N \(N = 6\)"):
        assert_curvature_close(
            b.gradient, model, theta, X, y, kind="gradient", loss="mse", reduction="sum"
        )


def test_assert_curvature_close_torch_mse_factor_and_matvec(deep):
    model, theta, X, y, b = deep
    N = X.shape[0]
    v = np.random.default_rng(0).standard_normal(model.num_params)
    # nn.MSELoss(reduction="sum") = 2 × hessref's summed ½‖f − y‖², and H_sum = N · H_mean
    theirs = 2.0 * N * b.H @ v
    kw = dict(kind="H_matvec", vector=v, loss="mse", convention="torch", reduction="sum")
    assert_curvature_close(theirs, model, theta, X, y, **kw)
    with pytest.raises(AssertionError, match="constant factor"):
        assert_curvature_close(theirs / 2, model, theta, X, y, **kw)


def test_assert_curvature_close_rejects_bad_input(deep):
    model, theta, X, y, b = deep
    with pytest.raises(ValueError, match="kind: expected one of"):
        assert_curvature_close(b.H, model, theta, X, y, kind="hessian!", loss="mse", bundle=b)
    with pytest.raises(ValueError, match="vector: kind 'G_matvec' needs"):
        assert_curvature_close(b.H, model, theta, X, y, kind="G_matvec", loss="mse", bundle=b)
    with pytest.raises(ValueError, match="bundle: computed for another problem"):
        assert_curvature_close(b.H, model, theta + 1, X, y, kind="H", loss="mse", bundle=b)


def test_catalogue_cases_cover_the_catalogue_with_ragged_batches():
    cases = catalogue_cases()
    assert [c.name for c in cases] == [c.name for c in oracle.fixture_catalogue()]
    assert {c.reduction for c in cases} == {"mean", "sum"} and {c.loss for c in cases} == {
        "mse",
        "cross_entropy",
    }
    for c in cases[:3]:
        sizes = [len(Xb) for Xb, _ in c.batches()]
        assert sum(sizes) == c.X.shape[0] and sizes[-1] < c.case.batch_size
        rebuilt = OracleCase(c.case, *c.case.build())
        assert np.array_equal(rebuilt.theta, c.theta) and np.array_equal(rebuilt.X, c.X)


def test_oracle_case_check_uses_its_bundle():
    (case,) = catalogue_cases(["relu-cross_entropy-d2-sum"])
    assert case.reduction == "sum"
    case.check(case.bundle.H, kind="H")
    with pytest.raises(AssertionError, match="an extra 1/N"):
        case.check(case.bundle.H / case.X.shape[0], kind="H")
    with pytest.raises(ValueError, match="unknown case"):
        catalogue_cases(["no-such-case"])


def test_every_kind_has_an_expected_value(deep):
    *_, b = deep
    v = np.ones(b.theta.size)
    for kind in KINDS:
        value, ckind = expected_value(b, kind, vector=v if kind.endswith("_matvec") else None)
        assert np.all(np.isfinite(value)) and ckind in (
            "scalar",
            "vector",
            "array",
            "symmetric",
            "psd",
            "spectrum",
        )


pytest_plugins = []  # the plugin itself is exercised below through pytester-free hook calls


def test_pytest_hook_parametrizes_hessref_case():
    from hessref import testing

    calls = []

    @dataclasses.dataclass
    class FakeMetafunc:
        fixturenames: tuple

        def parametrize(self, name, values, ids):
            calls.append((name, values, ids))

    testing.pytest_generate_tests(FakeMetafunc(("hessref_case", "tmp_path")))
    testing.pytest_generate_tests(FakeMetafunc(("tmp_path",)))
    assert len(calls) == 1
    name, values, ids = calls[0]
    assert name == "hessref_case" and ids == [c.name for c in oracle.fixture_catalogue()]
    assert all(isinstance(v, OracleCase) for v in values)


def test_oracle_names_import_from_every_documented_path():
    import hessref.compare
    import hessref.conventions
    import hessref.oracle.compare
    import hessref.oracle.conventions

    for name in oracle.__all__:
        assert getattr(oracle, name) is not None
    assert hessref.conventions is hessref.oracle.conventions
    assert hessref.compare is hessref.oracle.compare
    for name in (
        "from_state_dict",
        "to_state_dict",
        "from_npz",
        "Convention",
        "CONVENTIONS",
        "permutation",
        "to_convention",
        "from_convention",
        "loss_factor",
    ):
        assert hasattr(hessref.conventions, name), name
    for name in ("compare", "ComparisonReport", "KINDS"):
        assert hasattr(hessref.compare, name), name


def test_three_line_plugin_use_in_another_project(tmp_path):
    """The README's three lines, run by pytest in a separate project directory."""
    import subprocess
    import sys

    (tmp_path / "conftest.py").write_text('pytest_plugins = ["hessref.testing"]\n')
    (tmp_path / "test_mine.py").write_text(
        "def test_my_hessian(hessref_case):\n"
        "    if hessref_case.name == 'tanh-mse-d1':\n"
        "        hessref_case.check(hessref_case.bundle.H, kind='H')\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            "/dev/null",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    n = len(oracle.fixture_catalogue())
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{n} passed" in run.stdout, run.stdout


def test_default_tolerance_is_1e_10_relative_to_the_largest_exact_entry(deep):
    # the documented rule: pass iff max|theirs − exact| ≤ atol + rtol·max|exact|, with
    # rtol = 1e-10 by default. One entry off by 1e-7 (relative) must fail by default,
    # one off by 3e-11 must pass; an explicit rtol or atol moves the line.
    model, theta, X, y, b = deep
    scale = np.abs(b.H).max()

    def perturbed(rel):
        H = b.H.copy()
        H[1, 2] += rel * scale
        H[2, 1] += rel * scale
        return H

    kw = dict(kind="H", loss="mse", bundle=b)
    with pytest.raises(AssertionError, match="max rel error 1.0"):
        assert_curvature_close(perturbed(1e-7), model, theta, X, y, **kw)
    with pytest.raises(AssertionError):
        assert_curvature_close(perturbed(2e-10), model, theta, X, y, **kw)
    report = assert_curvature_close(perturbed(3e-11), model, theta, X, y, **kw)
    assert report.passed and report.max_rel_error == pytest.approx(3e-11, rel=1e-3)
    assert assert_curvature_close(perturbed(1e-7), model, theta, X, y, rtol=2e-7, **kw).passed
    atol = 2e-7 * scale
    assert assert_curvature_close(perturbed(1e-7), model, theta, X, y, atol=atol, **kw).passed


def test_hessref_testing_never_imports_pytest():
    # the module docstring promises it: other projects' suites may run under another runner
    import subprocess
    import sys

    code = "import sys, hessref.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
