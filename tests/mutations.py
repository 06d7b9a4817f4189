"""Mutation testing: plant plausible bugs one at a time and check the tests catch each.

Run from the repository root (not part of CI; about 10-20 minutes on two cores)::

    python -m tests.mutations              # every mutation
    python -m tests.mutations --list       # the catalogue, with anchor status
    python -m tests.mutations --only leaky_relu_kink slq_range_residual

Each mutation is ``(id, file, original snippet, replacement, tests)``. The repository is
copied once into a temporary directory (``git ls-files``: tracked and untracked, not
ignored); each mutation is applied as an exact text replacement there, the listed tests
run with ``CI=1`` (derandomized hypothesis) and ``-x``, and the file is restored. A
mutation is *caught* when pytest fails. If the original snippet is missing (code moved or
changed), the run reports ``snippet not found`` with the file, so the entry can be
re-anchored; that counts as a failure of this script, not as caught.

To add a mutation, append a :class:`Mutation` to ``MUTATIONS``: copy the original snippet
verbatim (it must occur exactly once in the file) and list the test files that should
catch it, cheapest first.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# test groups, cheapest first (pytest stops at the first failure)
ACT = ["tests/test_activations.py", "tests/test_textbook.py", "tests/test_core_autograd.py"]
LOSS = ["tests/test_losses.py", "tests/test_textbook.py", "tests/test_core_autograd.py"]
ENGINE = [
    "tests/test_closed_forms.py",
    "tests/test_textbook.py",
    "tests/test_core_autograd.py",
    "tests/test_theory.py",
    "tests/test_core_numerical.py",
]
OPS = ["tests/test_guards.py", "tests/test_operators.py"]
SPEC = ["tests/test_guards.py", "tests/test_spectrum.py", "tests/test_spectrum_mlp.py"]
TRAIN = ["tests/test_guards.py", "tests/test_data_train.py"]
EXPER = ["tests/test_guards.py", "tests/test_experiments.py"]
VALID = ["tests/test_validation.py", "tests/test_edges.py"]
ORACLE = ["tests/test_oracle.py"]


@dataclass(frozen=True)
class Mutation:
    """One planted bug: replace ``original`` (exactly once in ``file``) by ``replacement``."""

    id: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...] | list[str]
    what: str


M = Mutation
MUTATIONS: list[Mutation] = [
    # --- activations: σ′ and σ″ (docs/theory.md §2) --------------------------------------
    M(
        "tanh_d1",
        "hessref/core/activations.py",
        "def _tanh_d1(z: Array) -> Array:\n    return _sech2(z)",
        "def _tanh_d1(z: Array) -> Array:\n    return 1.0 - np.tanh(z)",
        ACT,
        "tanh σ′ = 1 − tanh",
    ),
    M(
        "tanh_d2_sign",
        "hessref/core/activations.py",
        "return -2.0 * np.tanh(z) * _sech2(z)",
        "return 2.0 * np.tanh(z) * _sech2(z)",
        ACT,
        "tanh σ″ sign",
    ),
    M(
        "sigmoid_d1",
        "hessref/core/activations.py",
        "    return expit(z) * expit(-z)\n\n\ndef _sigmoid_d2",
        "    return expit(z) * (1.0 - expit(-z))\n\n\ndef _sigmoid_d2",
        ACT,
        "sigmoid σ′ = s(1 − s(−z))",
    ),
    M(
        "sigmoid_d2_half",
        "hessref/core/activations.py",
        "-expit(z) * expit(-z) * np.tanh(0.5 * z)",
        "-expit(z) * expit(-z) * np.tanh(z)",
        ACT,
        "sigmoid σ″ with tanh(z) for tanh(z/2)",
    ),
    M(
        "relu_kink",
        "hessref/core/activations.py",
        "return (z > 0).astype(np.float64)",
        "return (z >= 0).astype(np.float64)",
        ACT,
        "ReLU σ′(0) = 1",
    ),
    M(
        "leaky_relu_kink",
        "hessref/core/activations.py",
        "return np.where(z > 0, 1.0, LEAKY_RELU_SLOPE)",
        "return np.where(z >= 0, 1.0, LEAKY_RELU_SLOPE)",
        ACT,
        "leaky ReLU σ′(0) = 1 instead of the slope (PyTorch convention)",
    ),
    M(
        "leaky_relu_slope",
        "hessref/core/activations.py",
        "LEAKY_RELU_SLOPE = 0.01",
        "LEAKY_RELU_SLOPE = 0.02",
        ACT,
        "leaky slope 0.02",
    ),
    M(
        "softplus_d1",
        "hessref/core/activations.py",
        '"softplus", _softplus, expit, _softplus_d2, True',
        '"softplus", _softplus, _sigmoid_d1, _softplus_d2, True',
        ACT,
        "softplus σ′ = sigmoid′ instead of sigmoid",
    ),
    M(
        "softplus_d2",
        "hessref/core/activations.py",
        "def _softplus_d2(z: Array) -> Array:\n    return expit(z) * expit(-z)",
        "def _softplus_d2(z: Array) -> Array:\n    return expit(z) * expit(z)",
        ACT,
        "softplus σ″ = s²",
    ),
    M(
        "gelu_d1",
        "hessref/core/activations.py",
        "return ndtr(z) + z * _gaussian_pdf(z)",
        "return ndtr(z) + _gaussian_pdf(z)",
        ACT,
        "GELU σ′ missing the factor z",
    ),
    M(
        "gelu_d2",
        "hessref/core/activations.py",
        "return _gaussian_pdf(z) * (2.0 - z * z)",
        "return _gaussian_pdf(z) * (1.0 - z * z)",
        ACT,
        "GELU σ″ = φ(1 − z²)",
    ),
    M(
        "softplus_torch_d2",
        "hessref/core/activations.py",
        "return np.where(z > SOFTPLUS_TORCH_THRESHOLD, 0.0, expit(z) * expit(-z))",
        "return expit(z) * expit(-z)",
        ACT,
        "softplus_torch σ″ ignores the threshold",
    ),
    # --- losses (§3) ------------------------------------------------------------------------
    M(
        "mse_gradient_sign",
        "hessref/core/losses.py",
        "def _mse_gradient(F: Array, Y: Array) -> Array:\n    return F - Y",
        "def _mse_gradient(F: Array, Y: Array) -> Array:\n    return Y - F",
        LOSS,
        "MSE r = y − f",
    ),
    M(
        "mse_half",
        "hessref/core/losses.py",
        'return 0.5 * np.einsum("nk,nk->n", D, D)',
        'return np.einsum("nk,nk->n", D, D)',
        LOSS,
        "MSE value without ½",
    ),
    M(
        "ce_gradient_index",
        "hessref/core/losses.py",
        "r[np.arange(p.shape[0]), y] -= 1.0",
        "r[:, y] -= 1.0",
        LOSS,
        "CE r indexes columns by y",
    ),
    M(
        "ce_hessian_diag",
        "hessref/core/losses.py",
        "A[:, idx, idx] += p",
        "A[:, idx, idx] = p",
        LOSS,
        "CE A: diag overwritten, not added",
    ),
    M(
        "ce_matvec",
        "hessref/core/losses.py",
        "out = P * (U - np.sum(U * P, axis=-1, keepdims=True))",
        "out = P * U",
        LOSS + OPS,
        "CE A u = p ⊙ u (drops −p pᵀu)",
    ),
    M(
        "ce_factor_sqrt",
        "hessref/core/losses.py",
        "return B * np.sqrt(p)[:, :, None]",
        "return B * p[:, :, None]",
        LOSS,
        "CE factor rows p_c (e_c − p) instead of √p_c",
    ),
    M(
        "mean_scale",
        "hessref/core/losses.py",
        "        return 1.0 / num_samples",
        "        return 1.0 / max(num_samples - 1, 1)",
        LOSS,
        "mean reduction divides by N − 1",
    ),
    # --- MLP, layout, init, backprop (§1, §4) -------------------------------------------------
    M(
        "init_fan_out",
        "hessref/core/mlp.py",
        "bound = 1.0 / np.sqrt(self.sizes[layer - 1])",
        "bound = 1.0 / np.sqrt(self.sizes[layer])",
        ENGINE,
        "init bound from fan-out",
    ),
    M(
        "layout_transposed",
        "hessref/core/mlp.py",
        "theta[self.weight_slice(l)].reshape(self.sizes[l], self.sizes[l - 1]),",
        "theta[self.weight_slice(l)].reshape(self.sizes[l - 1], self.sizes[l]).T,",
        ENGINE,
        "θ stores W as (in, out)",
    ),
    M(
        "backprop_bias_mean",
        "hessref/core/mlp.py",
        "grads[l - 1] = (delta_l.T @ cache.A[l - 1], delta_l.sum(axis=0))",
        "grads[l - 1] = (delta_l.T @ cache.A[l - 1], delta_l.mean(axis=0))",
        ENGINE,
        "bias gradient averaged over samples",
    ),
    M(
        "jacobian_bias",
        "hessref/core/mlp.py",
        "out[:, :, model.bias_slice(l)] = delta",
        "out[:, :, model.bias_slice(l)] = 0.0",
        ENGINE,
        "Jacobian without bias columns",
    ),
    # --- R-op: every term (§6) ---------------------------------------------------------------
    M(
        "rop_sigma2_term",
        "hessref/core/rop.py",
        "cache.d2sigma[l - 2] * g",
        "cache.dsigma[l - 2] * g",
        ENGINE,
        "R-op σ″ term uses σ′",
    ),
    M(
        "rop_vt_delta_term",
        "hessref/core/rop.py",
        "new = vt_delta if new is None else np.add(new, vt_delta, out=new)",
        "new = vt_delta if new is None else new",
        ENGINE,
        "R-op drops V_{l+1}ᵀδ when both present",
    ),
    M(
        "rop_delta_ra_transpose",
        "hessref/core/rop.py",
        "out[:, ws] += gW.transpose(1, 0, 2).reshape(K, d_out * d_in)",
        "out[:, ws] += gW.reshape(K, d_out * d_in)",
        ENGINE,
        "R-op δ R{a}ᵀ term mis-transposed",
    ),
    M(
        "rop_output_scale",
        "hessref/core/rop.py",
        "dir_delta = s * loss_at(problem, cache).hessian_matvec(dir_z[-1])",
        "dir_delta = loss_at(problem, cache).hessian_matvec(dir_z[-1])",
        ENGINE,
        "R-op output curvature without the reduction scale",
    ),
    M(
        "rop_forward_dsigma",
        "hessref/core/rop.py",
        "dir_a.append(None if dir_zl is None else dir_zl * cache.dsigma[l - 1][:, None, :])",
        "dir_a.append(dir_zl)",
        ENGINE,
        "forward R{a} = R{z} (σ′ missing)",
    ),
    M(
        "rop_forward_bias",
        "hessref/core/rop.py",
        "if dir_zl is None else dir_zl + Vb",
        "if dir_zl is None else dir_zl",
        ENGINE,
        "forward R{z} drops c_l when other terms exist",
    ),
    M(
        "rop_bias_mean",
        "hessref/core/rop.py",
        "out[:, bs] = dir_delta.sum(axis=0)",
        "out[:, bs] = dir_delta.mean(axis=0)",
        ENGINE,
        "R-op bias block averaged",
    ),
    # --- dense block formulas (§7) -----------------------------------------------------------
    M(
        "dense_sigma2_M",
        "hessref/core/dense.py",
        "M[:, idx, idx] += cache.d2sigma[m - 1] * g",
        "M[:, idx, idx] += cache.d2sigma[m - 1] * g * dsig",
        ENGINE,
        "σ″ term of M multiplied by σ′",
    ),
    M(
        "dense_term2_residual",
        "hessref/core/dense.py",
        "with_t2 = [k for k in range(K) if modes[k] != Curvature.G]",
        "with_t2 = [k for k in range(K) if modes[k] == Curvature.H]",
        ENGINE,
        "residual mode drops the cross-layer δ term (H itself stays right)",
    ),
    M(
        "dense_residual_output",
        "hessref/core/dense.py",
        "M = sA if kind != Curvature.R else np.zeros((N, k, k))",
        "M = sA",
        ENGINE,
        "residual keeps the Gauss–Newton output curvature",
    ),
    M(
        "dense_upper_blocks",
        "hessref/core/dense.py",
        "out[: rows.start, r:r1] = out[r:r1, : rows.start].T",
        "out[: rows.start, r:r1] = 0.0",
        ENGINE,
        "blocks above the diagonal not filled",
    ),
    M(
        "dense_chunk_rows",
        "hessref/core/dense.py",
        "_accumulate_chunk(pairs, diags, chunk, modes, first=index == 0)",
        "_accumulate_chunk(pairs, diags, chunk, modes, first=True)",
        ["tests/test_core_autograd.py"],
        "dense H keeps only the last sample chunk",
    ),
    M(
        "papyan_seed_sums_sigma",
        "hessref/core/mlp.py",
        "delta = g * (dsig if g.ndim == 2 else dsig[:, None, :])",
        "delta = g * (dsig if g.ndim == 2 else 1.0)",
        ["tests/test_papyan.py", "tests/test_core_autograd.py"],
        "seed backprop (Jacobian, Papyan's class sums) without σ′",
    ),
    M(
        "papyan_class_rows",
        "hessref/papyan.py",
        "members = np.flatnonzero(p.y == c)",
        "members = np.flatnonzero(p.y == c)[:-1] if (p.y == c).sum() > 1 else np.flatnonzero(p.y == c)",
        ["tests/test_papyan.py"],
        "class sums drop the last sample of each class",
    ),
    M(
        "ggn_factor_is_A",
        "hessref/core/ggn.py",
        "B = loss_at(problem, cache).hessian_factor()",
        "B = loss_at(problem, cache).hessian()",
        ENGINE,
        "scaled Jacobian uses A, not B",
    ),
    # --- chunking and operators --------------------------------------------------------------
    M(
        "chunks_drop_ragged",
        "hessref/core/problem.py",
        "for start in range(0, N, step):",
        "for start in range(0, N - step + 1, step):",
        OPS,
        "ragged last chunk dropped",
    ),
    M(
        "operator_cached_backward_scale",
        "hessref/operators/cache.py",
        "cache.backward = backward_deltas(chunk, cache)",
        "cache.backward = backward_deltas(type(chunk)(*[getattr(chunk, f) for f in "
        "('model', 'theta', 'params', 'X', 'y', 'loss')], 1.0), cache)",
        OPS,
        "kept backward pass weighted 1 per sample instead of the global s",
    ),
    M(
        "operator_matvecs_count",
        "hessref/operators/curvature.py",
        "self.num_matvecs += K",
        "self.num_matvecs += 1",
        OPS,
        "operator counts blocks, not columns",
    ),
    M(
        "operator_rmatvec",
        "hessref/operators/curvature.py",
        '"""Mᵀ x = M x (M is symmetric)."""\n        return self.matvec(x)',
        '"""Mᵀ x = M x (M is symmetric)."""\n        return -self.matvec(x)',
        OPS,
        "adjoint product (rmatvec) sign",
    ),
    # --- input validation --------------------------------------------------------------------
    M(
        "validation_inf",
        "hessref/core/validation.py",
        "bad = ~np.isfinite(arr)",
        "bad = np.isnan(arr)",
        VALID,
        "inf accepted",
    ),
    M(
        "validation_complex",
        "hessref/core/validation.py",
        'if kind == "c":\n        raise TypeError(',
        'if kind == "c":\n        arr, kind = arr.real, "f"\n    if False:\n        raise TypeError(',
        VALID,
        "complex input silently loses its imaginary part",
    ),
    M(
        "dense_memory_count",
        "hessref/core/validation.py",
        "needed = matrices + workspace_bytes",
        "needed = matrices",
        VALID,
        "memory check ignores workspace",
    ),
    # --- spectrum: estimators, error bars, outlier rules (§11-§14) --------------------------
    M(
        "slq_range_residual",
        "hessref/spectrum/density.py",
        "lo, hi = min(lo, mu[0] - bound[0]), max(hi, mu[-1] + bound[-1])",
        "lo, hi = min(lo, mu[0]), max(hi, mu[-1])",
        SPEC,
        "SLQ range without the Ritz-residual terms",
    ),
    M(
        "slq_weights_last_entry",
        "hessref/spectrum/density.py",
        "nodes[g0 + i, :s], weights[g0 + i, :s] = mu, S[0] ** 2",
        "nodes[g0 + i, :s], weights[g0 + i, :s] = mu, S[-1] ** 2",
        SPEC,
        "quadrature weights from last entries",
    ),
    M(
        "stderr_ddof",
        "hessref/spectrum/trace.py",
        "samples.std(ddof=1)",
        "samples.std(ddof=0)",
        SPEC,
        "standard error with n d.o.f.",
    ),
    M(
        "outlier_fence",
        "hessref/spectrum/outliers.py",
        "np.exp(q3 + 3.0 * (q3 - q1))",
        "np.exp(q3 + 1.5 * (q3 - q1))",
        SPEC,
        "Tukey fence constant 1.5 instead of 3",
    ),
    M(
        "outlier_ratio_direction",
        "hessref/spectrum/outliers.py",
        "scores = lam[:-1] / lam[1:]",
        "scores = lam[1:] / lam[:-1]",
        SPEC,
        "ratio rule inverted",
    ),
    M(
        "hutchpp_no_deflation",
        "hessref/spectrum/trace.py",
        "return Z - Q @ (Q.T @ Z)",
        "return Z",
        SPEC,
        "Hutch++ residual probes not deflated",
    ),
    M(
        "kernel_variance",
        "hessref/spectrum/density.py",
        "return np.exp(-0.5 * (t / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))",
        "return np.exp(-0.5 * t**2 / sigma) / (sigma * np.sqrt(2.0 * np.pi))",
        SPEC,
        "kernel σ read as a variance",
    ),
    M(
        "arpack_unshift",
        "hessref/spectrum/eigenpairs.py",
        "    return values - shift, V",
        "    return values, V",
        SPEC,
        "ARPACK eigenvalues of A + cI reported without removing the shift",
    ),
    # --- training sampling (§16) ---------------------------------------------------------------
    M(
        "sgd_with_replacement",
        "hessref/train/loop.py",
        "buffer = np.concatenate([buffer, gen.permutation(num_samples)])",
        "buffer = np.concatenate([buffer, gen.integers(0, num_samples, num_samples)])",
        TRAIN,
        "minibatches sampled with replacement",
    ),
    M(
        "sgd_batch_scale",
        "hessref/train/loop.py",
        "run.batch_scale = problem.scale * problem.num_samples / batch_size",
        "run.batch_scale = problem.scale",
        TRAIN,
        "minibatch gradient not rescaled to the batch mean",
    ),
    # --- experiments ------------------------------------------------------------------------
    M(
        "experiment_scales_R",
        "hessref/experiments/sagun2017.py",
        "eigenvalues(G), eigenvalues(R)",
        "eigenvalues(G), eigenvalues(0.5 * R)",
        EXPER,
        "experiment scales R before comparing it with H",
    ),
    # --- convention adapters ------------------------------------------------------------------
    M(
        "convention_in_out",
        "hessref/oracle/conventions.py",
        'blocks.append((idx.T if conv.weight_layout == "in_out" else idx).ravel())',
        "blocks.append(idx.ravel())",
        ORACLE,
        "(in, out) layout not permuted",
    ),
    M(
        "convention_torch_mse",
        "hessref/oracle/conventions.py",
        'return 2.0 / model.sizes[-1] if conv.reduction == "mean" else 2.0',
        'return 2.0 if conv.reduction == "mean" else 2.0',
        ORACLE,
        "nn.MSELoss factor ignores the mean over outputs",
    ),
    # --- engine-spectrum ---
    M(
        "lanczos_reorth_once",
        "hessref/spectrum/lanczos_kernel.py",
        "        for _ in range(2):\n            W -= np.matmul(basis.transpose(0, 2, 1)",
        "        for _ in range(1):\n            W -= np.matmul(basis.transpose(0, 2, 1)",
        ["tests/test_spectrum.py"],
        "Lanczos kernel reorthogonalizes once (CGS) instead of twice (CGS2)",
    ),
    M(
        "block_reorth_once",
        "hessref/spectrum/block.py",
        "    for _ in range(2):\n        W -= basis @ (basis.T @ W)",
        "    for _ in range(1):\n        W -= basis @ (basis.T @ W)",
        ["tests/test_spectrum_block.py", "tests/test_spectrum.py"],
        "block Lanczos reorthogonalizes once instead of twice",
    ),
    M(
        "zero_rtol_x100",
        "hessref/spectrum/statistics.py",
        "ZERO_RTOL = 1e-10\n",
        "ZERO_RTOL = 1e-8\n",
        ["tests/test_spectrum.py"],
        "spectrum statistics' zero tolerance 100× too large",
    ),
    M(
        "zero_boundary_exclusive",
        "hessref/spectrum/statistics.py",
        "neg = int(np.sum(lam < -tau))",
        "neg = int(np.sum(lam <= -tau))",
        ["tests/test_spectrum.py"],
        "λ = −τ counted as negative (the zero band is |λ| ≤ τ)",
    ),
    M(
        "testing_default_rtol",
        "hessref/testing.py",
        "    rtol: float = 1e-10,\n    atol: float = 0.0,",
        "    rtol: float = 1e-5,\n    atol: float = 0.0,",
        ["tests/test_oracle_testing.py"],
        "assert_curvature_close default rtol 1e-5 instead of 1e-10",
    ),
    M(
        "testing_bundle_theta_unchecked",
        "hessref/testing.py",
        "        or not np.array_equal(bundle.theta, theta)\n",
        "",
        ["tests/test_oracle_testing.py"],
        "a precomputed bundle of another θ is accepted",
    ),
    M(
        "tracking_probes_uncounted",
        "hessref/train/tracking.py",
        "used += est.num_matvecs",
        "used += 0",
        ["tests/test_dynamics_train.py"],
        "tracking's product count omits the trace probes",
    ),
    M(
        "tracking_smallest_as_largest",
        "hessref/train/tracking.py",
        'row["smallest"] = low.values[0]',
        'row["smallest"] = top.values[0]',
        ["tests/test_dynamics_train.py"],
        "tracking records λ_max as λ_min",
    ),
    M(
        "tracking_tol_ignored",
        "hessref/train/tracking.py",
        '"method": "lanczos", "tol": tol,',
        '"method": "lanczos", "tol": 1e-5,',
        ["tests/test_dynamics_train.py"],
        "tracking ignores Tracking.tol (loose eigenvalues)",
    ),
    M(
        "interpolate_not_convex",
        "hessref/landscape.py",
        "((1.0 - alpha) * problem.theta + alpha * theta_b for alpha in alphas)",
        "(problem.theta + alpha * (theta_b - problem.theta) for alpha in alphas)",
        ["tests/test_dynamics_landscape.py"],
        "interpolate_loss endpoints not exact (θ_a + α(θ_b − θ_a))",
    ),
    M(
        "layerwise_matrix_alias_ignored",
        "hessref/layerwise.py",
        '        return Curvature.parse(matrix, argument="matrix")\n',
        "",
        ["tests/test_dynamics_layerwise.py"],
        "deprecated matrix= silently ignored (falls back to kind=H)",
    ),
    M(
        "cli_internal_as_usage",
        "hessref/cli/__init__.py",
        "ENVIRONMENT_ERRORS = (OSError, MemoryError)",
        "ENVIRONMENT_ERRORS = (OSError, MemoryError, ValueError)",
        ["tests/test_cli.py"],
        "CLI reports an internal ValueError like an environment error",
    ),
    # --- science-framework ---
    M(
        "label_threshold_below_half",
        "hessref/experiments/stats.py",
        "    if low > MAJORITY:",
        "    if low > 0.45:",
        ["tests/test_counting_rules.py"],
        "a claim 'holds' when the Wilson lower end is above 0.45 instead of 1/2",
    ),
    M(
        "identity_label_tolerates_one_seed",
        "hessref/experiments/stats.py",
        'return "holds at every seed" if k == n else',
        'return "holds at every seed" if k >= n - 1 else',
        ["tests/test_counting_rules.py"],
        "an exact check labelled 'holds' with one failing seed",
    ),
    M(
        "count_within_one_strict",
        "hessref/experiments/counting.py",
        "return RuleCount(rule, n, n == target, abs(n - target) <= 1, margin, _finite(c.threshold))",
        "return RuleCount(rule, n, n == target, abs(n - target) < 1, margin, _finite(c.threshold))",
        ["tests/test_counting_rules.py"],
        "'within ±1' computed as '= target'",
    ),
    M(
        "strict_json_keeps_nan",
        "hessref/experiments/result.py",
        "return value if math.isfinite(value) else None",
        "return value",
        ["tests/test_experiment_framework.py"],
        "NaN written to results JSON (not strict)",
    ),
    M(
        "claims_table_lists_every_role",
        "hessref/cli/tables.py",
        'for v in by_role(r, "claim")',
        "for v in r.verdicts",
        ["tests/test_results_page.py"],
        "nulls and exact checks counted in the claims table",
    ),
    M(
        "bbp_threshold_alpha_for_sqrt",
        "hessref/experiments/random_matrix.py",
        "return 1 + np.sqrt(_check_alpha(alpha))",
        "return 1 + _check_alpha(alpha)",
        ["tests/test_random_matrix.py"],
        "BBP threshold 1 + α instead of 1 + √α (equal at α = 1)",
    ),
    M(
        "mp_edges_alpha_for_sqrt",
        "hessref/experiments/random_matrix.py",
        "s = np.sqrt(_check_alpha(alpha))",
        "s = _check_alpha(alpha)",
        ["tests/test_random_matrix.py"],
        "Marchenko–Pastur edges (1 ∓ α)² instead of (1 ∓ √α)² (equal at α = 1)",
    ),
    # --- approx ---
    M(
        "kfac_a_missing_1_over_n",
        "hessref/approx/kfac.py",
        "A_bar = A_in.T @ A_in / N",
        "A_bar = A_in.T @ A_in",
        ["tests/test_approx.py"],
        "K-FAC input factor without 1/N",
    ),
    M(
        "kfac_factors_swapped",
        "hessref/approx/structure.py",
        "Q = np.kron(U_B, U_A)\n        K = (Q * Lam.ravel()) @ Q.T",
        "Q = np.kron(U_B, U_A)\n        K = (Q * Lam.T.ravel()) @ Q.T",
        ["tests/test_approx.py"],
        "Kronecker eigenvalue grid in the wrong (input-major) order",
    ),
    M(
        "augmented_bias_first",
        "hessref/approx/structure.py",
        "weights = o * (d_in + 1) + i",
        "weights = o * (d_in + 1) + i + 1",
        ["tests/test_approx.py"],
        "θ ↔ augmented permutation puts the bias column first",
    ),
    M(
        "ekfac_refit_without_square",
        "hessref/approx/kfac.py",
        "((D @ U_B) ** 2).T @ ((A_rep @ U_A) ** 2)",
        "(D @ U_B).T @ (A_rep @ U_A)",
        ["tests/test_approx.py"],
        "EK-FAC eigenvalues not the diagonal of G in the K-FAC basis",
    ),
    M(
        "fgn_weight",
        "hessref/approx/seeds.py",
        "np.sqrt(q / np.where(rest > 0, rest, 1.0))",
        "np.sqrt(q)",
        ["tests/test_approx.py"],
        "FGN row scaled by √q instead of √(q/(1 − q))",
    ),
    M(
        "mc_fisher_true_label",
        "hessref/approx/seeds.py",
        "S = p[:, None, :] - np.eye(k)[classes]",
        "S = p[:, None, :] - np.eye(k)[np.broadcast_to(problem.y[:, None], classes.shape)]",
        ["tests/test_approx.py"],
        "Monte-Carlo Fisher samples the true label (an empirical Fisher)",
    ),
    M(
        "trap_softplus_threshold_silent",
        "hessref/oracle/traps.py",
        'if name in ("softplus", "softplus_torch") and above:',
        'if name in ("softplus", "softplus_torch") and above > 99:',
        ["tests/test_oracle_traps.py"],
        "thresholded softplus not named in the failure message",
    ),
    # --- engine-core ---
    M(
        "backprop_shared_sigma",
        "hessref/core/mlp.py",
        "delta = g * (dsig if g.ndim == 2 else dsig[:, None, :])",
        "delta = g",
        ["tests/test_backward.py", *ENGINE],
        "the one δ recursion drops σ′ (gradient, R-op, dense, Jacobian all at once)",
    ),
    M(
        "backprop_seed_axis",
        "hessref/core/mlp.py",
        "delta = g * (dsig if g.ndim == 2 else dsig[:, None, :])",
        "delta = g * (dsig if g.ndim == 2 else dsig[::-1, None, :])",
        ["tests/test_backward.py", "tests/test_papyan.py", "tests/test_core_autograd.py"],
        "seed axis: σ′ of another sample on the (N, M, d) path",
    ),
    M(
        "backward_g_order",
        "hessref/core/backward.py",
        "return deltas[::-1], gs[:0:-1]",
        "return deltas[::-1], gs[1:]",
        ["tests/test_backward.py", *ENGINE],
        "g_l listed in backprop order, not layer order (σ″ terms use the wrong g)",
    ),
    M(
        "loss_at_softmax_axis",
        "hessref/core/losses.py",
        "    p = e / total\n",
        "    p = e / e.sum(axis=0, keepdims=True)\n",
        ["tests/test_backward.py", *ENGINE],
        "the engine's once-per-F softmax normalised over samples (per-function API still right)",
    ),
    M(
        "mirror_first_block_row",
        "hessref/core/dense.py",
        "for l in range(2, model.num_layers + 1):\n        rows = model.layer_slice(l)",
        "for l in range(3, model.num_layers + 1):\n        rows = model.layer_slice(l)",
        ["tests/test_dense_blocks.py", *ENGINE],
        "dense mirroring skips the first block row above the diagonal",
    ),
    M(
        "mirror_tile_off_by_one",
        "hessref/core/dense.py",
        "r1 = min(r + _TILE, rows.stop)",
        "r1 = min(r + _TILE, rows.stop - 1)",
        ["tests/test_dense_blocks.py", *ENGINE],
        "dense mirroring: last row of each layer band not copied",
    ),
    M(
        "adjacent_T_scaling",
        "hessref/core/dense.py",
        "np.multiply(Wm.T[None, :, :], dsig[:, :, None], out=T)",
        "np.multiply(Wm.T[None, :, :], dsig[:, None, :], out=T)",
        ["tests/test_dense_blocks.py", *ENGINE],
        "T_{l+1,l} = W D_l scaled by σ′ on the wrong axis (wrong values for square layers)",
    ),
    M(
        "scalar_kind_value_error",
        "hessref/core/validation.py",
        'raise TypeError(f"{name}: expected a real number, got',
        'raise ValueError(f"{name}: expected a real number, got',
        VALID,
        "scalar checker: wrong kind ('0.1') reported as a bad value",
    ),
    M(
        "problem_at_unchecked",
        "hessref/core/problem.py",
        "return self._at_unchecked(check_theta(self.model, theta))",
        "return self._at_unchecked(np.asarray(theta, dtype=float))",
        ["tests/test_backward.py"],
        "Problem.at trusts an unchecked θ (NaN, wrong length)",
    ),
    # --- engine-ops ---
    M(
        "ops_chunk_sum_reversed",
        "hessref/operators/curvature.py",
        "    for part in parts:",
        "    for part in list(parts)[::-1]:",
        ["tests/test_operators.py"],
        "chunks summed last to first (same values to round-off, other bits)",
    ),
    M(
        "ops_last_chunk_dropped",
        "hessref/operators/curvature.py",
        "    for part in parts:",
        "    for part in (lambda ps: ps[: max(1, len(ps) - 1)])(list(parts)):",
        ["tests/test_operators.py"],
        "the last (ragged) chunk is left out of the sum",
    ),
    M(
        "ops_output_scan_skipped",
        "hessref/operators/curvature.py",
        "if not all_finite(total):",
        "if False:",
        ["tests/test_operators.py"],
        "non-finite products returned instead of a ChunkError naming the chunk",
    ),
    M(
        "ops_cache_key_ignores_chunking",
        "hessref/operators/cache.py",
        "key = (rows, index)",
        "key = (0, index)",
        ["tests/test_operators.py"],
        "kept state of another chunking reused (chunk of the wrong rows)",
    ),
    M(
        "ops_cache_stale_theta",
        "hessref/operators/curvature.py",
        "theta = problem.theta.copy()",
        "theta = problem.theta",
        ["tests/test_operators.py"],
        "operator shares the caller's theta: kept state goes stale when theta changes in place",
    ),
    M(
        "sign_descent_sign_zero",
        "hessref/train/optimizers.py",
        "return np.sign(m)",
        "return np.where(m >= 0, 1.0, -1.0)",
        ["tests/test_train_step.py", *TRAIN],
        "sign descent with sign(0) = +1 (moves coordinates whose gradient is exactly 0)",
    ),
    M(
        "ritz_residuals_unsorted",
        "hessref/spectrum/eigenpairs.py",
        "V[:, order], found[order], op.num_matvecs",
        "V[:, order], found, op.num_matvecs",
        ["tests/test_ritz_residuals.py", "tests/test_spectrum_start_both.py"],
        "Ritz residual estimates not permuted with their eigenpairs",
    ),
    M(
        "ritz_block_bounds_first_block",
        "hessref/spectrum/block.py",
        "bounds = np.linalg.norm(B @ S[n - bcur : n, wanted], axis=0)",
        "bounds = np.linalg.norm(B @ S[:bcur, wanted], axis=0)",
        ["tests/test_ritz_residuals.py", "tests/test_spectrum_block.py"],
        "block Lanczos residuals from the first block's rows of S instead of the last",
    ),
    # --- science-redesign ---
    M(
        "ell1_average_off_by_one",
        "hessref/experiments/sign_descent.py",
        "T = offset + np.arange(1, values.shape[1] + 1)",
        "T = offset + np.arange(0, values.shape[1])",
        ["tests/test_dynamics_experiments.py"],
        "iterations to target: running mean divided by T − 1",
    ),
    M(
        "folded_normal_no_erf",
        "hessref/experiments/sign_descent.py",
        "value = value + m * special.erf(m / (safe * np.sqrt(2.0)))",
        "value = value + np.abs(m)",
        ["tests/test_dynamics_experiments.py"],
        "E|N(m, s²)| without the erf factor (SGD's exact expectation)",
    ),
    M(
        "slope_interval_dof",
        "hessref/experiments/sign_descent.py",
        "half = float(sps.t.ppf(0.5 + level / 2, n - 2) * se)",
        "half = float(sps.t.ppf(0.5 + level / 2, n - 1) * se)",
        ["tests/test_dynamics_experiments.py"],
        "log–log slope interval with n − 1 degrees of freedom",
    ),
    M(
        "quadratic_model_half",
        "hessref/experiments/edge_of_stability.py",
        "terms = gi * delta + 0.5 * lam * delta**2",
        "terms = gi * delta + lam * delta**2",
        ["tests/test_dynamics_experiments.py"],
        "quadratic model without the ½ on the curvature term",
    ),
    M(
        "eos_eta_factor_two",
        "hessref/experiments/edge_of_stability.py",
        "eta = c * 2.0 / lam0",
        "eta = c / lam0",
        ["tests/test_dynamics_experiments.py"],
        "η = c/λ_max(θ₀) instead of c·2/λ_max(θ₀)",
    ),
    M(
        "bbp_detector_cut",
        "hessref/experiments/random_matrix.py",
        "cut = mp_edges(alpha)[1] + DETECT_TW * edge_scale(dim, num_samples)",
        "cut = mp_edges(alpha)[1] + edge_scale(dim, num_samples)",
        ["tests/test_random_matrix.py"],
        "detection power computed for a different detector than the one applied",
    ),
    # --- science-table1 ---
    M(
        "table1_within_two",
        "hessref/experiments/sagun2017_table1.py",
        'rule = AllOf(Compare(q, ">=", row.k - 1), Compare(q, "<=", row.k + 1))',
        'rule = AllOf(Compare(q, ">=", row.k - 1), Compare(q, "<=", row.k + 2))',
        ["tests/test_sagun2017_table1.py"],
        "Table 1 rule accepts k + 2 as within ±1",
    ),
    M(
        "table1_paper_cutoff",
        "hessref/experiments/sagun2017_table1.py",
        '_row("SGD", "ReLU", 1, 10, 4270, 2, 14, 15, 0.002),',
        '_row("SGD", "ReLU", 1, 10, 4270, 2, 14, 15, 0.003),',
        ["tests/test_sagun2017_table1.py"],
        "a cutoff of Table 1 mistranscribed",
    ),
    M(
        "table1_absolute_elbow",
        "hessref/experiments/sagun2017_table1.py",
        '"heur": _count(top, "threshold", relative_threshold * float(top[0])),',
        '"heur": _count(top, "threshold", relative_threshold),',
        ["tests/test_sagun2017_table1.py"],
        "elbow cutoff c used as an absolute value instead of c·λ_1",
    ),
    M(
        "box_blobs_unit_std",
        "hessref/data.py",
        "X = mu[y] + cluster_std * gen.standard_normal((num_samples, dim))",
        "X = mu[y] + gen.standard_normal((num_samples, dim))",
        ["tests/test_data_mnist1d.py"],
        "box_blobs ignores cluster_std",
    ),
    M(
        "mnist1d_global_state",
        "hessref/data.py",
        "np.random.set_state(self._states[0])  # noqa: NPY002",
        "pass",
        ["tests/test_data_mnist1d.py"],
        "mnist1d leaves NumPy's global generator reseeded",
    ),
    # --- papers-b ---
    M(
        "cusum_drift_sign",
        "hessref/experiments/memorization_traces.py",
        "prev = np.maximum(0.0, prev + x[..., j] - drift)",
        "prev = np.maximum(0.0, prev + x[..., j] + drift)",
        ["tests/test_memorization_local_sgd.py"],
        "CUSUM adds the drift instead of subtracting it",
    ),
    M(
        "layer_trace_mask_all_rows",
        "hessref/layerwise.py",
        "masked[s, (l - 1) * n : l * n] = Z[s]",
        "masked[:, (l - 1) * n : l * n] = Z",
        ["tests/test_memorization_local_sgd.py"],
        "Hutchinson layer probes not masked to the layer block (estimates tr H, not tr H_ll)",
    ),
    M(
        "subspace_overlap_over_p",
        "hessref/experiments/local_sgd_subspace.py",
        "return float(np.sum((U.T @ V) ** 2) / U.shape[1])",
        "return float(np.sum((U.T @ V) ** 2) / U.shape[0])",
        ["tests/test_memorization_local_sgd.py"],
        "subspace overlap divided by P instead of k",
    ),
    M(
        "local_sgd_gap_from_old_average",
        "hessref/experiments/local_sgd_subspace.py",
        "        theta = W.mean(axis=0)\n        gaps.append(W - theta)",
        "        gaps.append(W - theta)\n        theta = W.mean(axis=0)",
        ["tests/test_memorization_local_sgd.py"],
        "Local-SGD gaps taken from the round's starting point, not the new average",
    ),
    M(
        "gradient_covariance_uncentred",
        "hessref/experiments/local_sgd_subspace.py",
        "g = g - g.mean(axis=0)",
        "g = g - 0.0 * g.mean(axis=0)",
        ["tests/test_memorization_local_sgd.py"],
        "gradient covariance without removing the mean gradient (second moment)",
    ),
    M(
        "ky_dimension_denominator",
        "hessref/experiments/edge_of_stability.py",
        "return float(j + S[j] / abs(mu[j])) if np.isfinite(mu[j]) else float(j)",
        "return float(j + S[j] / abs(mu[j - 1])) if np.isfinite(mu[j]) else float(j)",
        ["tests/test_memorization_local_sgd.py"],
        "Kaplan-Yorke fraction divided by the last kept rate instead of the first dropped one",
    ),
    # --- kfac-exp ---
    M(
        "kfac_quality_identity_sign",
        "hessref/experiments/approx_quality.py",
        '"ekfac_minus_kfac": max(e - k for k, e in pairs),',
        '"ekfac_minus_kfac": max(k - e for k, e in pairs),',
        ["tests/test_approx_quality.py"],
        "kfac-quality: EK-FAC ≤ K-FAC identity computed with the difference reversed",
    ),
    M(
        "kfac_quality_mid_stage",
        "hessref/experiments/approx_quality.py",
        "j = int(np.argmax(recorded <= half))",
        "j = int(np.argmax(recorded >= half))",
        ["tests/test_approx_quality.py"],
        "kfac-quality: 'mid' taken at the first step above halfway (= init)",
    ),
    M(
        "kfac_quality_null_trace",
        "hessref/experiments/approx_quality.py",
        "M * (trace / np.trace(M))",
        "M / np.trace(M)",
        ["tests/test_approx_quality.py"],
        "kfac-quality: random-PSD null not scaled to tr G",
    ),
    M(
        "kfac_quality_vs_H_is_G",
        "hessref/experiments/approx_quality.py",
        'kfac_vs_H=float(np.linalg.norm(dense["kfac"] - H) / np.linalg.norm(H)),',
        'kfac_vs_H=float(np.linalg.norm(dense["kfac"] - G) / np.linalg.norm(G)),',
        ["tests/test_approx_quality.py"],
        "kfac-quality: K-FAC 'against H' compared with G instead",
    ),
    # --- engine-finish ---
    M(
        "spectrum_scan_trusts_everyone",
        "hessref/spectrum/_operator.py",
        'getattr(self._A, "checks_output", False) is not True',
        "False",
        ["tests/test_spectrum.py", "tests/test_operators.py"],
        "spectrum skips its NaN/inf scan for operators that never promised to check",
    ),
    M(
        "spectrum_scan_twice",
        "hessref/spectrum/_operator.py",
        'getattr(self._A, "checks_output", False) is not True',
        "True",
        ["tests/test_operators.py"],
        "spectrum scans products the curvature operator already scanned (two scans)",
    ),
    M(
        "top_eigenpairs_v0_ignored",
        "hessref/spectrum/eigenpairs.py",
        "gen.standard_normal(op.P) if v0 is None else _start_vector(v0, op.P)",
        "gen.standard_normal(op.P)",
        ["tests/test_spectrum_start_both.py"],
        "top_eigenpairs ignores the user's start vector",
    ),
    M(
        "both_low_end_shifted",
        "hessref/spectrum/eigenpairs.py",
        "idx = np.r_[0:n_low, j - n_top : j]",
        "idx = np.r_[1 : n_low + 1, j - n_top : j]",
        ["tests/test_spectrum_start_both.py"],
        "which='both' returns the second-smallest Ritz pair as the smallest",
    ),
    M(
        "both_restart_ignores_low_end",
        "hessref/spectrum/eigenpairs.py",
        "        n_low and np.min(block)",
        "        False and np.min(block)",
        ["tests/test_spectrum_start_both.py"],
        "after a restart, a block that improves the smallest end is not looked at",
    ),
    M(
        "tracking_cold_start",
        "hessref/train/tracking.py",
        "v0 = None if self.previous is None else warm_start(self.previous, self.gen)",
        "v0 = None",
        ["tests/test_dynamics_train.py"],
        "tracking restarts every record from a random vector (no warm start)",
    ),
    M(
        "bundle_R_is_G",
        "hessref/oracle/bundles.py",
        "H, G, R = dense_curvatures(p, (Curvature.H, Curvature.G, Curvature.R))",
        "H, G, R = dense_curvatures(p, (Curvature.H, Curvature.G, Curvature.G))",
        ["tests/test_oracle.py"],
        "the reference bundle's R is a second G",
    ),
    # --- papers-a ---
    M(
        "permutation_split_not_complementary",
        "hessref/experiments/permutation_saddles.py",
        "V[:, unit] = alpha * v",
        "V[:, unit] = (1.0 - alpha) * v",
        ["tests/test_permutation_saddles.py"],
        "unit duplication splits the outgoing weights (1 − α) / (1 − α): the function changes",
    ),
    M(
        "permutation_B_without_second_derivative",
        "hessref/experiments/permutation_saddles.py",
        "B = (abar * (d2 * (r @ v))[:, None]).T @ abar",
        "B = (abar * (d1 * (r @ v))[:, None]).T @ abar",
        ["tests/test_permutation_saddles.py"],
        "the split-curvature matrix B of (20.4) with σ′ instead of σ″",
    ),
    M(
        "surgery_margin_derivative_sign",
        "hessref/experiments/hessian_surgery.py",
        "D = -w / Z",
        "D = w / Z",
        ["tests/test_hessian_surgery.py"],
        "the derivative of the smooth margin with the wrong sign on the competing classes",
    ),
    # --- lead: CE at saturation ---
    M(
        "ce_rest_by_subtraction",
        "hessref/core/losses.py",
        "return rows, m, others.sum(axis=1)",
        "return rows, m, 1.0 - p[rows, m]",
        ["tests/test_losses.py"],
        "1 − p_m computed by subtraction: relative error ε/δ near a one-hot softmax",
    ),
]


def scratch_copy(dest: Path) -> None:
    """Copy the working tree's tracked and untracked (not ignored) files to ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")  # fmt: skip
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def anchor_status(root: Path, mut: Mutation) -> str:
    """ "ok", "file not found", "snippet not found" or "snippet ambiguous (n)"."""
    path = root / mut.file
    if not path.is_file():
        return "file not found"
    n = path.read_text().count(mut.original)
    return "ok" if n == 1 else ("snippet not found" if n == 0 else f"snippet ambiguous ({n})")


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, str]:
    """Run pytest in ``root``; return (outcome, first failing test or note)."""
    env = dict(os.environ, CI="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(root)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "caught (timeout)", f"no result within {timeout:.0f} s"
    out = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "SURVIVED", ""
    if proc.returncode in (1,):
        m = re.search(r"^(FAILED|ERROR) (\S+)", out, flags=re.M)
        return "caught", m.group(2) if m else "pytest failed"
    return "ERROR", f"pytest exit code {proc.returncode}: {out.strip().splitlines()[-1:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list mutations and anchor status")
    parser.add_argument("--only", nargs="*", help="run only these mutation ids")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation")
    args = parser.parse_args(argv)
    ids = [m.id for m in MUTATIONS]
    assert len(set(ids)) == len(ids), "duplicate mutation ids"
    selected = [m for m in MUTATIONS if not args.only or m.id in args.only]
    if args.list:
        for m in selected:
            print(f"{m.id:28} {m.file:36} {anchor_status(ROOT, m):20} {m.what}")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="hessref-mutations-") as tmp:
        root = Path(tmp)
        scratch_copy(root)
        for mut in selected:
            status = anchor_status(root, mut)
            if status != "ok":
                rows.append((mut, status, f"re-anchor in {mut.file}", 0.0))
                print(f"{mut.id:28} {status}  ({mut.file})", flush=True)
                continue
            path = root / mut.file
            original = path.read_text()
            path.write_text(original.replace(mut.original, mut.replacement))
            t0 = time.perf_counter()
            try:
                outcome, note = run_tests(root, list(mut.tests), args.timeout)
            finally:
                path.write_text(original)
            rows.append((mut, outcome, note, time.perf_counter() - t0))
            print(f"{mut.id:28} {outcome:9} {time.perf_counter() - t0:6.1f} s  {note}", flush=True)
    caught = sum(r[1].startswith("caught") for r in rows)
    print("\n| mutation | file | bug | result | caught by |\n|---|---|---|---|---|")
    for mut, outcome, note, _ in rows:
        print(f"| {mut.id} | {mut.file} | {mut.what} | {outcome} | {note} |")
    print(f"\ncaught {caught}/{len(rows)}")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
