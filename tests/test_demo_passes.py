"""``hessref demo``: three dense passes per seed, and MSE runs on one-hot float targets.

The demo needs H and G at initialisation, H, G and R after training and H after training
on shuffled labels: three passes of the dense block engine
(:func:`hessref.core.dense.curvature_matrices` computes several kinds in one), not five.
With ``loss="mse"`` the targets are the one-hot encodings of the labels (0.2 passed the
integer labels and failed with "mse expects float targets").
"""

from __future__ import annotations

import numpy as np

import hessref.core.dense as dense
from hessref.experiments import run_experiment


def _count_passes(monkeypatch) -> list:
    passes: list = []
    real = dense.dense_curvatures
    monkeypatch.setattr(dense, "dense_curvatures", lambda p, m: passes.append(m) or real(p, m))
    return passes


def test_demo_does_three_dense_passes_per_seed(monkeypatch):
    passes = _count_passes(monkeypatch)
    res = run_experiment("demo", fast=True, seeds=[0])
    assert [tuple(k.symbol for k in m) for m in passes] == [("H", "G"), ("H", "G", "R"), ("H",)]
    assert res.per_seed[0]["split_rel_error"] <= 1e-10


def test_demo_with_mse_uses_one_hot_float_targets(monkeypatch):
    passes = _count_passes(monkeypatch)
    res = run_experiment("demo", fast=True, seeds=[0], overrides={"loss": "mse"})
    assert len(passes) == 3
    assert "one-hot" in res.setting_text and "mse" in res.setting_text
    seed = res.per_seed[0]
    assert seed["split_rel_error"] <= 1e-10 and seed["G_min_over_tolerance"] >= -1.0
    # MSE: A = I has rank K, so rank G ≤ N·K (cross-entropy: N·(K − 1))
    assert seed["rank_G_bound"] == min(seed["num_params"], 150 * seed["sizes"][-1])
    assert np.isfinite(seed["final_loss"]) and seed["final_loss"] < seed["initial_loss"]
