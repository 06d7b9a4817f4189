"""hessref.data.box_blobs and hessref.data.mnist1d, and the MNIST-1D experiments."""

from __future__ import annotations

import json
import random
import socket
import sys

import numpy as np
import pytest

from hessref import data
from hessref.experiments import mnist1d as m1d

needs_mnist1d = pytest.mark.skipif(
    not m1d.AVAILABLE,
    reason="optional package mnist1d not installed (pip install hessref[mnist1d])",
)


# ---------------------------------------------------------------------------- box_blobs
def test_box_blobs_shapes_balance_and_standardisation():
    X, y = data.box_blobs(103, 5, 7, rng=0)
    assert X.shape == (103, 7) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [21, 21, 21, 20, 20]
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1, rtol=1e-12)


def test_box_blobs_raw_clusters_have_the_stated_spread_and_box():
    X, y = data.box_blobs(20000, 4, 3, cluster_std=2.5, center_box=4.0, standardize=False, rng=1)
    means = np.array([X[y == c].mean(axis=0) for c in range(4)])
    assert np.all(np.abs(means) < 4.0 + 0.1)
    within = X - means[y]
    np.testing.assert_allclose(within.std(axis=0), 2.5, rtol=0.03)


def test_box_blobs_same_seed_same_bits_and_errors():
    a, b = data.box_blobs(30, 3, 4, rng=7), data.box_blobs(30, 3, 4, rng=7)
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], data.box_blobs(30, 3, 4, rng=8)[0])
    with pytest.raises(ValueError, match="num_samples"):
        data.box_blobs(2, 3, 4)
    with pytest.raises(ValueError, match="cluster_std"):
        data.box_blobs(30, 3, 4, cluster_std=0.0)


# ------------------------------------------------------------------------------ mnist1d
@needs_mnist1d
def test_mnist1d_shapes_labels_and_same_seed_same_bits():
    X, y = data.mnist1d(200, rng=3)
    assert X.shape == (200, 40) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    X2, y2 = data.mnist1d(200, rng=3)
    assert X.tobytes() == X2.tobytes() and np.array_equal(y, y2)
    assert not np.array_equal(X, data.mnist1d(200, rng=4)[0])


@needs_mnist1d
def test_mnist1d_defaults_are_the_packages_and_match_its_generator():
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    package = get_dataset_args(as_dict=True)
    ours = {
        k: v for k, v in package.items() if k not in ("num_samples", "train_split", "seed", "url")
    }
    assert data.MNIST1D_ARGS == ours
    # our seed is drawn from default_rng(rng); the package with that seed gives the same set
    seed = int(np.random.default_rng(5).integers(2**32 - 1))
    made = make_dataset(
        ObjectView({**package, "num_samples": 100, "train_split": 1.0, "seed": seed})
    )
    X, y = data.mnist1d(100, rng=5)
    np.testing.assert_array_equal(X, made["x"])
    np.testing.assert_array_equal(y, made["y"])


@needs_mnist1d
def test_mnist1d_makes_no_network_call_and_keeps_global_random_state(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(tmp_path)  # get_dataset would write ./mnist1d_data.pkl here
    np.random.seed(123)  # noqa: NPY002 - the global state the generator must not change
    random.seed(9)
    expected = (np.random.rand(), random.random())  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    random.seed(9)
    data.mnist1d(50, rng=0)
    assert (np.random.rand(), random.random()) == expected  # noqa: NPY002
    assert list(tmp_path.iterdir()) == []


def test_mnist1d_argument_errors_and_missing_package(monkeypatch):
    with pytest.raises(ValueError, match="multiple of 10"):
        data.mnist1d(55)
    with pytest.raises(ValueError, match="unknown MNIST-1D arguments"):
        data.mnist1d(50, noise=0.1)
    monkeypatch.setitem(sys.modules, "mnist1d", None)  # import fails as when not installed
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install hessref\[mnist1d\]"):
        data.mnist1d(50)


# -------------------------------------------------------------------------- experiments
def _strict(text: str) -> dict:
    def reject(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


@needs_mnist1d
def test_mnist1d_outliers_fast_run_counts_by_every_counter():
    from hessref.experiments import run_experiment

    res = run_experiment("mnist1d-outliers", fast=True, seeds=[0, 1])
    _strict(res.to_json())
    for m in res.per_seed:
        assert all(isinstance(m[c], int) for c in ("gap", "ratio", "heur", "init_ratio"))
    v = res.verdict("ratio: count within ±1 of C")
    assert v["outcomes"] == [abs(m["ratio"] - 10) <= 1 for m in res.per_seed]
    assert "primary" in v["claim"] and v["role"] == "claim"
    assert res.verdict("null, H at init: ratio count within ±1 of C")["role"] == "null"
    # the side-by-side table of every counting rule (Tukey fence included) is reported
    assert set(res.tables["counting"]) == {"trained H", "H at init (null)"}
    for m in res.per_seed:  # same top candidates, same rules: the two records agree
        assert m["counts"]["trained H"]["count_gap"] == m["gap"]
        assert m["counts"]["H at init (null)"]["count_ratio"] == m["init_ratio"]


@needs_mnist1d
def test_mnist1d_bulk_vs_width_fast_run():
    from hessref.experiments import run_experiment

    res = run_experiment("mnist1d-bulk-vs-width", fast=True, seeds=[0])
    _strict(res.to_json())
    m = res.per_seed[0]
    assert m["num_params"] == [51 * h + 10 for h in res.settings["widths"]]
    tops = np.array(m["top_eigenvalues"])
    assert m["top_spread"] == pytest.approx(float((tops.max(0) / tops.min(0)).max()))
