"""Papyan's class / cross-class decomposition of the Gauss-Newton matrix (cross-entropy).

References: V. Papyan, "Measurements of three-level hierarchical structure in the outliers
in the spectrum of deepnet Hessians", ICML 2019 (arXiv:1901.08244); V. Papyan, "Traces of
class/cross-class structure pervade deep learning spectra", JMLR 21(252), 2020
(arXiv:2008.11865). The algebra is written out in docs/theory.md, section "Papyan's
class/cross-class decomposition of G".

For mean cross-entropy with C = d_L classes, p_i = softmax(f_i) and J_i = ∂f_i/∂θ:

* δ_{i,c′} = √p_{i,c′} J_iᵀ(e_{c′} − p_i), so that G = (1/N) Σ_i Σ_{c′} δ_{i,c′} δ_{i,c′}ᵀ
  (because diag(p) − ppᵀ = Σ_{c′} p_{c′}(e_{c′} − p)(e_{c′} − p)ᵀ);
* δ_{c,c′} = mean of δ_{i,c′} over the n_c samples of true class c; the class mean
  δ_c = (1/(C−1)) Σ_{c′≠c} δ_{c,c′}; the cross-class means ν_{c,c′} = δ_{c,c′} − δ_c (c′ ≠ c);
* with class weights w_c = n_c / N (= 1/C for balanced classes)::

      G₀ = Σ_c w_c δ_{c,c} δ_{c,c}ᵀ                       rank ≤ C
      G₁ = Σ_c w_c (C−1) δ_c δ_cᵀ                          rank ≤ C
      G₂ = Σ_c w_c Σ_{c′≠c} ν_{c,c′} ν_{c,c′}ᵀ              rank ≤ C(C−2)
      G₃ = (1/N) Σ_i Σ_{c′} (δ_{i,c′} − δ_{y_i,c′})(…)ᵀ     within-class covariance

  and G = G₀ + G₁ + G₂ + G₃ exactly; every part is PSD. The rank bound on G₂ holds
  because each class's C−1 vectors ν_{c,c′} sum to zero.
* Each low-rank part is A Aᵀ for a P×m matrix A of weighted means, so its nonzero
  eigenvalues are those of the m×m Gram matrix AᵀA (m = C for G₀ and G₁, C(C−1) for G₂,
  C² for G₀+G₁+G₂): the "small Gram matrices".

Interlacing (G − G₁ and G₃ are PSD): λ_j(G) ≥ λ_j(G₀+G₁+G₂) ≥ λ_j(G₁) and
λ_j(G) ≤ λ_j(G₀+G₁+G₂) + λ_max(G₃) for every j. :func:`outlier_bounds` uses these to
bracket the top eigenvalues of G without forming any P×P matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import LinearOperator
from scipy.special import softmax

from hessref import spectrum
from hessref.core.derivatives import jacobian, outputs
from hessref.core.mlp import MLP, backprop_seed_sums, forward
from hessref.core.problem import make_problem
from hessref.core.validation import check_dense_fits, check_positive_int
from hessref.operators import ggn_operator

Array = NDArray[np.float64]

#: Floats held by one chunk of δ vectors (rows × C × P, :func:`class_decomposition`) or of
#: backpropagated seeds (rows × C × Σ d_l, the class means); about 128 MB.
_CHUNK_FLOATS = 2**24


@dataclass(frozen=True)
class ClassDecomposition:
    """Result of :func:`class_decomposition` (cross-entropy, mean reduction).

    Attributes
    ----------
    G0, G1, G2, G3 : ndarray, shape (P, P)
        The four PSD parts; G = G0 + G1 + G2 + G3.
    class_counts : ndarray of int, shape (C,)
        n_c, samples per true class.
    weights : ndarray, shape (C,)
        w_c = n_c / N.
    logit_means : ndarray, shape (C, C, P)
        δ_{c,c′}: ``logit_means[c, c2]`` is the mean of δ_{i,c2} over samples of class c.
    class_means : ndarray, shape (C, P)
        δ_c = (1/(C−1)) Σ_{c′≠c} δ_{c,c′}.
    cross_means : ndarray, shape (C, C, P)
        ν_{c,c′} = δ_{c,c′} − δ_c for c′ ≠ c; the diagonal c′ = c is not part of the
        definition and is stored as zeros.
    gram_eigenvalues : dict of str to ndarray
        Descending eigenvalues of the small Gram matrices: ``"G0"`` (C), ``"G1"`` (C),
        ``"G2"`` (C(C−1)), ``"G012"`` (C², for G0 + G1 + G2). Their positive values are
        the nonzero eigenvalues of the corresponding dense parts.
    """

    G0: Array
    G1: Array
    G2: Array
    G3: Array
    class_counts: NDArray[np.int64]
    weights: Array
    logit_means: Array
    class_means: Array
    cross_means: Array
    gram_eigenvalues: dict[str, Array]

    @property
    def G(self) -> Array:
        """G0 + G1 + G2 + G3, shape (P, P): the Gauss-Newton matrix."""
        return self.G0 + self.G1 + self.G2 + self.G3

    @property
    def num_classes(self) -> int:
        """C."""
        return int(self.class_counts.size)


def _check_inputs(model, theta, X, y, loss, batch_size):
    """Validate once; return (problem, class counts, rows per chunk)."""
    if loss != "cross_entropy":
        raise ValueError(
            f"loss: Papyan's class decomposition is defined for cross-entropy only, got "
            f"{loss!r}; use loss='cross_entropy' with integer labels (for MSE, G = (1/N) Σ JᵢᵀJᵢ "
            "has no class/cross-class split of this form)"
        )
    p = make_problem(model, theta, X, y, "cross_entropy", "mean")
    C = p.model.sizes[-1]
    if C < 2:
        raise ValueError(f"model: need d_L = C ≥ 2 output classes, got d_L = {C}")
    counts = np.bincount(p.y, minlength=C)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"y: every class 0..{C - 1} (C = d_L = {C}) needs at least one sample, but "
            f"class(es) {empty.tolist()} have none; the class means δ_c are undefined. "
            "Use a model whose d_L equals the number of classes present, or add samples"
        )
    if batch_size is None:
        batch_size = max(1, _CHUNK_FLOATS // (C * p.model.num_params))
    check_positive_int("batch_size", batch_size)
    return p, counts, int(batch_size)


def _delta_chunks(p, batch_size: int) -> Iterator[tuple[NDArray, Array]]:
    """Yield (labels, δ) per row chunk; δ[i, c′] = √p_{i,c′} J_iᵀ(e_{c′} − p_i), shape (n, C, P).

    J_i comes from :func:`hessref.jacobian` (backprop of the d_L unit covectors for all
    rows of the chunk at once), p_i from the network outputs: no loop over samples.
    """
    for start in range(0, p.num_samples, batch_size):
        X, y = p.X[start : start + batch_size], p.y[start : start + batch_size]
        J = jacobian(p.model, p.theta, X)  # (n, C, P)
        prob = softmax(outputs(p.model, p.theta, X), axis=1)  # (n, C)
        pJ = np.einsum("nc,ncp->np", prob, J)  # J_iᵀ p_i
        yield y, np.sqrt(prob)[:, :, None] * (J - pJ[:, None, :])


def _logit_means(p, counts: NDArray) -> Array:
    """δ_{c,c′}, shape (C, C, P): per-class means of the δ vectors (one pass over the data).

    Σ_{i ∈ class c} δ_{i,c′} = Σ_{i ∈ c} J_iᵀ s_{i,c′} with seeds
    s_{i,c′} = √p_{i,c′}(e_{c′} − p_i), so each class's C sums are ONE backprop of C seeds
    over its rows (:func:`~hessref.core.mlp.backprop_seed_sums`; docs/theory.md (10.5)):
    no per-sample (n, C, P) array, GEMM work C·(4·N·P) flops. Rows per forward pass keep
    the seeds near ``_CHUNK_FLOATS``.
    """
    model, C = p.model, counts.size
    rows = max(1, _CHUNK_FLOATS // (C * sum(model.sizes)))
    sums = np.zeros((C, C, model.num_params))
    for c in range(C):
        members = np.flatnonzero(p.y == c)
        for start in range(0, members.size, rows):
            X = p.X[members[start : start + rows]]
            cache = forward(model, p.params, X)
            # the loss's factor B at F (one softmax): row c′ = √p_{c′}(e_{c′} − p), (n, c′, C)
            seeds = p.loss.at(cache.F, p.y[members[start : start + rows]]).hessian_factor()
            sums[c] += backprop_seed_sums(model, p.params, cache, seeds)
    return sums / counts[:, None, None]


def _means(logit_means: Array) -> tuple[Array, Array]:
    """Class means δ_c (C, P) and cross-class means ν_{c,c′} (C, C, P; zero diagonal)."""
    C = logit_means.shape[0]
    off = ~np.eye(C, dtype=bool)
    class_means = (logit_means * off[:, :, None]).sum(axis=1) / (C - 1)
    cross = (logit_means - class_means[:, None, :]) * off[:, :, None]
    return class_means, cross


def _factors(weights: Array, logit_means: Array, class_means: Array, cross: Array) -> dict:
    """P×m factors A with part = A Aᵀ: keys "G0", "G1", "G2", "G012"."""
    C = weights.size
    sw = np.sqrt(weights)
    off = ~np.eye(C, dtype=bool)
    diag = logit_means[np.arange(C), np.arange(C)]  # δ_{c,c}, (C, P)
    return {
        "G0": (sw[:, None] * diag).T,
        "G1": (np.sqrt(weights * (C - 1))[:, None] * class_means).T,
        "G2": (sw[:, None, None] * cross)[off].T,  # C(C−1) columns, c′ ≠ c
        "G012": (sw[:, None, None] * logit_means).reshape(C * C, -1).T,
    }


def _gram_eigenvalues(A: Array) -> Array:
    """Descending eigenvalues of the Gram matrix AᵀA (m×m)."""
    gram = A.T @ A
    return spectrum.eigenvalues(0.5 * (gram + gram.T))


def class_decomposition(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "cross_entropy",
    batch_size: int | None = None,
) -> ClassDecomposition:
    """Papyan's exact split G = G₀ + G₁ + G₂ + G₃ of the cross-entropy Gauss-Newton matrix.

    G is that of the mean cross-entropy L = (1/N) Σ_i −log softmax(f_i)[y_i], the same
    matrix as ``hessref.gauss_newton(model, theta, X, y, loss="cross_entropy")[0]``.
    Formulas in the module docstring; classes may be unbalanced (weights n_c / N).

    Parameters
    ----------
    model : MLP
        C = d_L = ``model.sizes[-1]`` ≥ 2 classes.
    theta : array_like, shape (P,)
    X : array_like, shape (N, d_0)
    y : array_like of int, shape (N,)
        Labels in [0, C); every class needs at least one sample.
    loss : {"cross_entropy"}
        Only cross-entropy has this decomposition; anything else raises.
    batch_size : int, optional
        Rows per chunk of δ vectors (memory rows × C × P floats); default keeps a chunk
        near 128 MB.

    Returns
    -------
    ClassDecomposition

    Raises
    ------
    ValueError
        ``loss`` not cross-entropy, labels outside [0, C), a class with no sample, d_L < 2.
    MemoryError
        If five P×P matrices do not fit.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> from hessref.papyan import class_decomposition
    >>> model = hr.MLP([2, 4, 3], activation="tanh"); theta = model.init(rng=0)
    >>> X = np.random.default_rng(1).normal(size=(9, 2)); y = np.arange(9) % 3
    >>> dec = class_decomposition(model, theta, X, y)
    >>> G, _ = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
    >>> bool(np.abs(dec.G - G).max() < 1e-12 * np.abs(G).max())
    True
    """
    p, counts, rows = _check_inputs(model, theta, X, y, loss, batch_size)
    check_dense_fits("class_decomposition", p.model.num_params, 5)
    N, P = p.num_samples, p.model.num_params
    weights = counts / N
    logit_means = _logit_means(p, counts)
    class_means, cross = _means(logit_means)
    A = _factors(weights, logit_means, class_means, cross)
    G3 = np.zeros((P, P))
    for yc, delta in _delta_chunks(p, rows):
        D = (delta - logit_means[yc]).reshape(-1, P)  # centred within the true class
        G3 += D.T @ D
    G3 = 0.5 * (G3 + G3.T) / N
    parts = {k: A[k] @ A[k].T for k in ("G0", "G1", "G2")}
    return ClassDecomposition(
        G0=parts["G0"],
        G1=parts["G1"],
        G2=parts["G2"],
        G3=G3,
        class_counts=counts.astype(np.int64),
        weights=weights,
        logit_means=logit_means,
        class_means=class_means,
        cross_means=cross,
        gram_eigenvalues={k: _gram_eigenvalues(a) for k, a in A.items()},
    )


@dataclass(frozen=True)
class OutlierBounds:
    """Result of :func:`outlier_bounds`: brackets on the top eigenvalues of G.

    Attributes
    ----------
    class_estimate : ndarray, shape (C,)
        eig of the C×C Gram matrix of G₁ (descending): λ_j(G) ≥ class_estimate[j].
    lower : ndarray, shape (C²,)
        eig of the C²×C² Gram matrix of G₀+G₁+G₂ (descending): λ_j(G) ≥ lower[j] ≥
        class_estimate[j].
    g3_max : float or None
        λ_max(G₃) from Lanczos on the operator G − (G₀+G₁+G₂); None if not requested.
    upper : ndarray, shape (C²,) or None
        lower + g3_max: λ_j(G) ≤ upper[j] (Weyl), up to the Lanczos tolerance.
    """

    class_estimate: Array
    lower: Array
    g3_max: float | None
    upper: Array | None


def outlier_bounds(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "cross_entropy",
    batch_size: int | None = None,
    upper: bool = True,
    rng=None,
) -> OutlierBounds:
    """Bracket the top eigenvalues of G with C×C and C²×C² Gram matrices, never P×P.

    Memory O(C² P); time C backprops over the data (C·4·N·P flops, GEMMs), plus (if
    ``upper``) a Lanczos run of Gauss-Newton products (:func:`hessref.ggn_operator`,
    chunks of ``batch_size`` rows).

    Validity: the lower bounds hold for every θ and data set, because G − G₁ and
    G − (G₀+G₁+G₂) = G₃ are PSD (Courant-Fischer). ``class_estimate`` is the usual
    "outliers = class means" estimate (Papyan 2019, arXiv:1901.08244); it is *close* to the
    top-C eigenvalues of G only when the within-class and cross-class parts are small
    next to them, which the bracket [lower, upper] measures: its width is λ_max(G₃).
    ``upper`` is exact up to the Lanczos residual (:func:`hessref.spectrum.top_eigenpairs`,
    ARPACK on the shifted operator, residual ≲ 1e-10·‖G₃‖).

    Parameters
    ----------
    model, theta, X, y, loss
        As in :func:`class_decomposition`; no P×P matrix is formed.
    batch_size : int, optional
        Rows per data chunk of the Gauss-Newton products behind ``upper`` (default:
        the operator's own choice, :func:`hessref.ggn_operator`).
    upper : bool
        Also estimate λ_max(G₃) and the Weyl upper bounds.
    rng : None, int or numpy.random.Generator
        Seeds the Lanczos start vector.

    Returns
    -------
    OutlierBounds
    """
    p, counts, _ = _check_inputs(model, theta, X, y, loss, batch_size)
    weights = counts / p.num_samples
    logit_means = _logit_means(p, counts)
    class_means, cross = _means(logit_means)
    A = _factors(weights, logit_means, class_means, cross)
    low = _gram_eigenvalues(A["G012"])
    cls = _gram_eigenvalues(A["G1"])
    if not upper:
        return OutlierBounds(cls, low, None, None)
    g3 = _g3_max(p, A["G012"], batch_size, rng)
    return OutlierBounds(cls, low, g3, low + g3)


def _g3_max(p, A: Array, rows: int | None, rng) -> float:
    """λ_max(G₃) = λ_max(G − A Aᵀ) by Lanczos on the matrix-free Gauss-Newton operator."""
    G = ggn_operator(p.model, p.theta, p.X, p.y, loss="cross_entropy", batch_size=rows)
    P = p.model.num_params

    def matmat(V):
        V = V.reshape(P, -1)
        return G.matmat(V) - A @ (A.T @ V)

    op = LinearOperator((P, P), matvec=matmat, matmat=matmat, dtype=np.float64)
    if P == 1:  # top_eigenpairs needs k < P
        return float(op.matmat(np.ones((1, 1)))[0, 0])
    return float(spectrum.top_eigenpairs(op, 1, tol=1e-10, rng=rng).values[0])
