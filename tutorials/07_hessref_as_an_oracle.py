# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# Runs in Colab or a fresh Jupyter: installs hessref if it is missing (a no-op otherwise).
# Course machine requirements: Python >= 3.10 and hessref installed once from the course's copy
# of the repository (`pip install .` in it brings numpy, scipy, matplotlib, autograd,
# scikit-learn, threadpoolctl); no network is needed after that. Set HESSREF_PIP to a wheel, a
# folder or a git URL to install hessref from somewhere else.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("hessref") is None:
    _checkout = os.path.abspath("..")  # a notebook opened from tutorials/ in a checkout
    _default = _checkout if os.path.exists(os.path.join(_checkout, "setup.cfg")) else "hessref"
    _source = os.environ.get("HESSREF_PIP", _default)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", _source])

# %% [markdown]
# # 07 — hessref as an oracle: checking another tool against the exact answer
#
# You wrote (or use) a tool that computes Hessians, Gauss-Newton matrices or eigenvalues —
# in PyTorch, JAX or NumPy. How do you know it is right? Build the **same MLP** in hessref,
# compute the exact float64 answer, and compare. Three things usually go wrong, and none of
# them is a numerical bug:
#
# 1. **layout** — parameters flattened in another order (dict keys sorted as strings:
#    `W1, W10, W2, ..., b1, ...`) or weights stored (in, out);
# 2. **scaling** — `nn.MSELoss` averages $(f-y)^2$ over all $N\cdot k$ entries without the ½, so
#    it is $2/k$ times hessref's mean MSE; a missing $1/N$; a per-batch average;
# 3. **precision** — float32 gives 6–7 correct digits, not 15.
#
# `hessref.oracle` computes every reference quantity at once, `hessref.conventions` maps it
# into another tool's layout and scaling, and `hessref.compare.compare` reports how far
# the numbers are from it — and, when they fail, which of the usual culprits fits.

# %%
import os
import tempfile

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import matplotlib.pyplot as plt
import numpy as np

import hessref as hr
from hessref.compare import compare
from hessref.conventions import to_state_dict, torch_module_spec
from hessref.oracle import in_convention, load_fixture, reference_bundle, write_fixture

try:
    import torch
except ImportError:  # the PyTorch cells below are skipped
    torch = None
if torch is None and os.environ.get("HESSREF_REQUIRE_TORCH") == "1":
    raise RuntimeError("HESSREF_REQUIRE_TORCH=1 but torch is not installed")  # CI: peers env

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "07"

# Figures: shown inline in Jupyter; as a script, each is also saved as PNG into the folder
# named by HESSREF_FIGURES, else figures/ beside this file. Constrained layout: no clipped labels.
plt.rcParams["figure.constrained_layout.use"] = True
_here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
FIGURES = os.environ.get("HESSREF_FIGURES") or (_here and os.path.join(_here, "figures"))


def show(fig, name):
    """Show ``fig``; save it as FIGURES/{TUTORIAL}_{name}.png when FIGURES is set."""
    if FIGURES:
        os.makedirs(FIGURES, exist_ok=True)
        fig.savefig(os.path.join(FIGURES, f"{TUTORIAL}_{name}.png"), dpi=110, bbox_inches="tight")
    plt.show()


rng = np.random.default_rng(0)
sizes = [4, 8, 8, 3]
model = hr.MLP(sizes, activation="tanh")
theta = model.init(rng)
N = 12 if FAST else 30
X = rng.standard_normal((N, sizes[0]))
y = rng.integers(0, sizes[-1], size=N)
ref = reference_bundle(model, theta, X, y, loss="cross_entropy")
print(f"P = {model.num_params}; reference quantities: {sorted(ref.quantities())}")

# %% [markdown]
# ## A tool under test: autograd on a dict of parameters
#
# A common NumPy/JAX style keeps parameters in a dict and flattens it with
# `autograd.misc.flatten`. Its Hessian is correct — but in which order are the parameters?

# %%
from autograd.misc import flatten

params = {f"W{l}": W for l, (W, _) in enumerate(model.unflatten(theta), start=1)}
params |= {f"b{l}": b for l, (_, b) in enumerate(model.unflatten(theta), start=1)}
flat, unflatten = flatten(params)


def their_loss(flat_params):
    p = unflatten(flat_params)
    A = X
    for l in range(1, len(sizes)):
        A = anp.dot(A, p[f"W{l}"].T) + p[f"b{l}"]
        if l < len(sizes) - 1:
            A = anp.tanh(A)
    logp = A - asp.logsumexp(A, axis=1, keepdims=True)
    return -anp.mean(logp[np.arange(N), y])


H_theirs = autograd.hessian(their_loss)(flat)
naive = compare(H_theirs, ref.H, model=model, kind="H")
print(naive)
assert not naive.passed

# %% [markdown]
# The report names the worst entry by parameter and suggests the cause. With the layout
# declared (`convention="autograd_dict"`: keys sorted as strings, so all weights come
# before all biases), the same numbers agree with the reference to rounding error:

# %%
mapped = compare(H_theirs, ref.H, model=model, kind="H", convention="autograd_dict")
print(mapped)
assert mapped.passed and mapped.max_rel_error < 1e-12

# %% [markdown]
# ## Precision: the same computation in float32
#
# Most deep-learning tools compute in float32. Against an exact reference that is a
# relative error around $10^{-7}$ — fine for training, not for testing a Hessian to 12 digits.
# Choose the tolerance for the precision you actually use.

# %%
H32 = autograd.hessian(their_loss)(flat.astype(np.float32)).astype(np.float32)
strict = compare(H32, ref.H, model=model, kind="H", convention="autograd_dict")
loose = compare(H32, ref.H, model=model, kind="H", convention="autograd_dict", rtol=1e-5)
print(
    f"float32: max relative error {strict.max_rel_error:.1e}; rtol=1e-10 passes: "
    f"{strict.passed}, rtol=1e-5 passes: {loose.passed}"
)
print("notes:", strict.notes)

# %% [markdown]
# (autograd promotes mixed operations to float64, so the error here mostly comes from the
# float32 inputs; a tool that computes throughout in float32 is usually worse.)
#
# ## Eigenvalues: the largest one, or the largest in magnitude?
#
# A classic slip (docs/theory.md §18): power iteration converges to the eigenvalue of largest
# **magnitude**. When the most negative eigenvalue is bigger in magnitude than the most
# positive one, "the top eigenvalue" reported is negative. `compare` with
# `kind="eigenvalues"` matches sorted spectra, also a top-k subset.


# %%
def power_iteration(M, iters=2000, seed=0):
    v = np.random.default_rng(seed).standard_normal(M.shape[0])
    for _ in range(iters):
        v = M @ v
        v /= np.linalg.norm(v)
    return v @ M @ v


lam = ref.eigenvalues_H
print(f"exact: lambda_max = {lam[0]:.5f}, lambda_min = {lam[-1]:.5f}")
# shift so that the most negative eigenvalue dominates in magnitude (as near a saddle)
shifted = ref.H - 2 * lam[0] * np.eye(model.num_params)
lam_shift = lam - 2 * lam[0]
power = power_iteration(shifted)
print(f"power iteration on H - 2·lambda_max·I: {power:.5f}; true lambda_max {lam_shift[0]:.5f}")
claimed_top = compare([power], lam_shift[:1], kind="eigenvalues")  # "the top eigenvalue"
assert not claimed_top.passed
located = compare([power], lam_shift, kind="eigenvalues")  # where in the spectrum is it?
print("matched against the whole spectrum:", located.notes)
assert located.passed  # it IS an eigenvalue: the bottom one

# %% [markdown]
# ## PyTorch: `torch.func.hessian` and a Gauss-Newton matrix
#
# These cells run only where PyTorch is installed (hessref never depends on it). The net
# is loaded from hessref's parameters through a PyTorch state dict, in float64; the flat
# order of `parameters_to_vector` is hessref's order, so only the **loss scaling**
# differs: `nn.CrossEntropyLoss()` equals hessref's mean cross-entropy, `nn.MSELoss()` is
# $2/k$ times hessref's mean MSE. `in_convention(ref, "torch")` applies that factor.

# %%
if torch is not None:
    torch.set_default_dtype(torch.float64)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 3),
    )
    net.load_state_dict({k: torch.from_numpy(v) for k, v in to_state_dict(model, theta).items()})
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def as_params(flat_t):
        out, pos = {}, 0
        for n, s in zip(names, shapes, strict=True):
            out[n] = flat_t[pos : pos + s.numel()].reshape(s)
            pos += s.numel()
        return out

    def torch_loss(flat_t, loss_fn, target):
        return loss_fn(torch.func.functional_call(net, as_params(flat_t), (Xt,)), target)

    flat_t = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    H_torch = torch.func.hessian(torch_loss)(flat_t, torch.nn.CrossEntropyLoss(), yt).numpy()
    report = compare(
        H_torch, in_convention(ref, "torch")["H"], model=model, kind="H", convention="torch"
    )
    print(
        "torch.func.hessian, cross-entropy:",
        "PASS" if report else "FAIL",
        f"(max rel error {report.max_rel_error:.1e})",
    )
    assert report.passed

    # Gauss-Newton from per-sample Jacobians: G = (1/N) sum_i J_i^T (diag p_i - p_i p_i^T) J_i
    def logits(flat_t):
        return torch.func.functional_call(net, as_params(flat_t), (Xt,))

    J = torch.func.jacrev(logits)(flat_t)  # (N, k, P)
    p = torch.softmax(logits(flat_t), dim=1).detach()
    A = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    G_torch = torch.einsum("nkp,nkl,nlq->pq", J, A, J).numpy() / N
    report = compare(G_torch, ref.G, model=model, kind="G")
    print(
        "GGN from torch.func.jacrev:",
        "PASS" if report else "FAIL",
        f"(max rel error {report.max_rel_error:.1e})",
    )
    assert report.passed

    # MSE: nn.MSELoss differs by a factor 2/k -- compare() spots the scale
    Y = rng.standard_normal((N, 3))
    ref_mse = reference_bundle(model, theta, X, Y, loss="mse")
    H_mse = torch.func.hessian(torch_loss)(flat_t, torch.nn.MSELoss(), torch.from_numpy(Y)).numpy()
    wrong = compare(H_mse, ref_mse.H, model=model, kind="H")
    print(f"nn.MSELoss vs hessref's MSE: best-fit scale {wrong.best_scale:.6f} (2/k = {2 / 3:.6f})")
    assert not wrong.passed and np.isclose(wrong.best_scale, 2 / 3)
    right = compare(H_mse, in_convention(ref_mse, "torch")["H"], model=model, kind="H")
    assert right.passed
else:
    print("PyTorch is not installed: skipping the PyTorch cells.")

# %% [markdown]
# ## In your test suite: `hessref.testing`
#
# `assert_curvature_close(theirs, model, theta, X, y, kind=..., convention=..., loss=...)`
# maps hessref's exact value into your layout and loss scaling and raises an
# `AssertionError` carrying the comparison report when they differ: the worst entry by
# parameter name, every weight block stored transposed, a missing or extra $1/N$.
# Here a Hessian with the second weight block stored (in, out) and a Gauss-Newton
# matrix summed instead of averaged over the samples:

# %%
from hessref.testing import assert_curvature_close, catalogue_cases

s2 = model.weight_slice(2)
q = np.arange(model.num_params)
q[s2] = s2.start + np.arange(64).reshape(8, 8).T.ravel()  # W2 (8, 8) stored (in, out)
for label, theirs, kind in (
    ("H, W2 transposed", ref.H[np.ix_(q, q)], "H"),
    ("N·G", N * ref.G, "G"),
):
    try:
        assert_curvature_close(theirs, model, theta, X, y, kind=kind, loss="cross_entropy")
        raise RuntimeError(f"{label}: should have failed")
    except AssertionError as err:
        print(f"{label}:", str(err).splitlines()[0])
ok = assert_curvature_close(ref.H, model, theta, X, y, kind="H", loss="cross_entropy", bundle=ref)
print("the exact H passes:", ok.passed)

# %% [markdown]
# The catalogue of hessref's test problems (activations × losses × depths, both reductions,
# ragged minibatches) comes as a pytest plugin, so another project runs its own code on
# every case in three lines:
#
# ```python
# pytest_plugins = ["hessref.testing"]                      # conftest.py
#
# def test_my_hessian(hessref_case):                        # test_mine.py
#     hessref_case.check(my_hessian(*hessref_case.args), kind="H", convention="torch")
# ```
#
# `hessref_case.batches()` yields the ragged minibatches for tools that batch. Below,
# "my_hessian" is `torch.func.hessian` of PyTorch's own loss on the same net, run over
# every catalogue case (this is what hessref's conformance suite does for torch.func,
# JAX, curvlinops, BackPACK and PyHessian; see docs/conformance.md).

# %%
if torch is not None:

    def my_hessian(case_model, case_theta, case_X, case_y, case):
        layers = []
        for l in range(1, case_model.num_layers + 1):
            layers.append(torch.nn.Linear(case_model.sizes[l - 1], case_model.sizes[l]))
            if l < case_model.num_layers:
                name, kwargs = torch_module_spec(case_model.activation.torch_name)
                layers.append(getattr(torch.nn, name)(**kwargs))
        net_c = torch.nn.Sequential(*layers)
        net_c.load_state_dict(
            {k: torch.from_numpy(v) for k, v in to_state_dict(case_model, case_theta).items()}
        )
        names_c = [n for n, _ in net_c.named_parameters()]
        shapes_c = [p.shape for p in net_c.parameters()]
        loss_c = (torch.nn.MSELoss if case.loss == "mse" else torch.nn.CrossEntropyLoss)(
            reduction=case.reduction
        )

        def L(flat_t):
            out, pos = {}, 0
            for n, s in zip(names_c, shapes_c, strict=True):
                out[n] = flat_t[pos : pos + s.numel()].reshape(s)
                pos += s.numel()
            F = torch.func.functional_call(net_c, out, (torch.from_numpy(case_X),))
            return loss_c(F, torch.from_numpy(case_y))

        flat_c = torch.nn.utils.parameters_to_vector(net_c.parameters()).detach()
        return torch.func.hessian(L)(flat_c).numpy()

    cases = catalogue_cases()[: 6 if FAST else None]
    worst = max(
        c.check(my_hessian(*c.args, c), kind="H", convention="torch").max_rel_error for c in cases
    )
    print(f"torch.func.hessian on {len(cases)} catalogue cases: worst relative error {worst:.1e}")
    assert worst < 1e-10

# %% [markdown]
# ## Fixtures: the reference without hessref
#
# To test a tool in its own CI without installing hessref, write a fixture once: a
# self-describing `.npz` that plain `np.load` reads (spec, θ, X, y, a PyTorch state dict,
# layout permutations, and every exact quantity). The command line does the same:
# `hessref oracle --sizes 4,8,8,3 --activation tanh --loss cross_entropy --out ref.npz`.

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = write_fixture(os.path.join(tmp, "ref.npz"), model, theta, X, y, loss="cross_entropy")
    with np.load(path, allow_pickle=False) as f:
        keys = sorted(f.files)
        assert np.array_equal(f["H"], ref.H)
    fixture = load_fixture(path)
print(len(keys), "arrays, e.g.", [k for k in keys if "/" not in k][:12])
print("spec:", fixture["metadata"]["spec"])

# %% [markdown]
# ## A picture of the errors
#
# Where in the matrix does float32 lose accuracy? If no layer block is "wrong" but all are
# imprecise, the error relative to the largest entry is of one size in every block (the
# printed per-block maxima below).

# %%
from hessref.conventions import to_convention

err32 = np.abs(H32 - to_convention(model, ref.H, "autograd_dict")) / np.abs(ref.H).max()
fig, ax = plt.subplots(figsize=(4.5, 4))
im = ax.imshow(np.log10(err32 + 1e-20), vmin=-12, vmax=-5, cmap="viridis")
ax.set(
    title="float32 Hessian error (autograd_dict layout)", xlabel="parameter j", ylabel="parameter i"
)
fig.colorbar(im, ax=ax, label="log$_{10}$ |H32 − H| / max|H|")
show(fig, "float32_error_map")

from hessref.conventions import from_convention

err_ours = from_convention(model, err32, "autograd_dict")  # back to hessref's layout
L = model.num_layers
per_block = {
    f"({l},{m})": err_ours[model.layer_slice(l), model.layer_slice(m)].max()
    for l in range(1, L + 1)
    for m in range(l, L + 1)
}
print("max relative float32 error per layer block:", {k: f"{v:.0e}" for k, v in per_block.items()})

# %% [markdown]
# ## Exercises
#
# 1. Store the weights (in, out) in `their_loss` (`A @ W` with W of shape (d_in, d_out)) and
#    let `compare` find the problem. Which convention fixes it?
# 2. Emulate loss-landscape, which drops every bias from its Hessian: compare the weight-only
#    block with `convention="loss_landscape"`.
# 3. Compute the empirical Fisher from `ref.per_sample_gradients` and compare it with `ref.G`
#    using `compare(..., kind="G")`. Which notes does the report give?
# 4. With PyTorch: check the eigenvalues of `H_torch` from `torch.linalg.eigvalsh` against
#    `ref.eigenvalues_H` with `kind="eigenvalues"`; then only the top 3.
