"""Seeded synthetic and small real datasets for the Hessian experiments.

The settings follow Sagun et al. 2016 (arXiv:1611.07476) and Papyan 2019 (arXiv:1901.08244).

Every generator returns float64 inputs ``X`` of shape (N, d) with samples as rows, takes
``rng`` (None, int or ``numpy.random.Generator``) and does no I/O beyond reading the
scikit-learn ``digits`` data that ships inside the scikit-learn package (nothing is
downloaded). The number of classes of a dataset is a property of the *data*; it is
independent of the number of outputs of any network trained on it (docs/theory.md §14).

- :func:`gaussian_mixture` — C Gaussian clusters in ℝ^d (Sagun et al. 2017, App. A;
  Papyan 2019), integer labels.
- :func:`two_blobs` — the 2-D two-blob set of Sagun, Bottou, LeCun 2016.
- :func:`teacher_student` — regression targets produced by a random "teacher" MLP.
- :func:`digits` — scikit-learn's 8×8 handwritten digits (1797 images, 64 features,
  10 classes). This is **not MNIST** (28×28, 70,000 images): a small real substitute.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.mlp import MLP, forward
from hessref.core.validation import (
    as_float_array,
    check_choice,
    check_nonnegative_float,
    check_positive_float,
    check_positive_int,
)

Array = NDArray[np.float64]
Labels = NDArray[np.int64]

MEAN_LAYOUTS = ("normal", "simplex")


def _class_counts(num_samples: int, num_classes: int, balance: ArrayLike | None) -> NDArray:
    """Samples per class: equal (remainder to the first classes) or ∝ ``balance``."""
    if balance is None:
        weights = np.full(num_classes, 1.0 / num_classes)
    else:
        weights = as_float_array("balance", balance, ndim=1)
        if weights.shape != (num_classes,) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                f"balance: expected {num_classes} non-negative class weights with a positive "
                f"sum (one per class), got {np.asarray(balance)!r}"
            )
        weights = weights / weights.sum()
    # largest-remainder rounding so the counts sum exactly to num_samples
    raw = weights * num_samples
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: num_samples - counts.sum()]] += 1
    return counts


def _class_means(num_classes: int, dim: int, separation: float, layout: str, gen) -> Array:
    """Cluster centres (C, d): N(0, separation² I), or a randomly rotated regular simplex
    whose vertices lie at distance ``separation`` from the origin (all pairwise equal).
    """
    if layout == "normal":
        return separation * gen.standard_normal((num_classes, dim))
    if num_classes > dim + 1:
        raise ValueError(
            f"means: a regular simplex of {num_classes} vertices needs dim >= "
            f"{num_classes - 1}, got dim = {dim}; use means='normal' or a larger dim"
        )
    if num_classes == 1:
        return np.zeros((1, dim))
    # the centred basis vectors e_c − 1/C are equidistant and span C − 1 dimensions:
    # express them in an orthonormal basis U of that span, then rotate into ℝ^dim at random
    E = np.eye(num_classes) - 1.0 / num_classes
    U = np.linalg.svd(E)[0][:, : num_classes - 1]
    coords = E @ U / np.sqrt((num_classes - 1) / num_classes)  # unit norm rows
    Q, _ = np.linalg.qr(gen.standard_normal((dim, num_classes - 1)))
    return separation * coords @ Q.T


def gaussian_mixture(
    num_samples: int,
    num_classes: int,
    dim: int,
    separation: float = 3.0,
    spread: float = 1.0,
    balance: ArrayLike | None = None,
    means: str = "normal",
    standardize: bool = True,
    rng: int | np.random.Generator | None = None,
) -> tuple[Array, Labels]:
    """C-class Gaussian mixture in ℝ^d with integer labels.

    Sample i of class c is x_i = μ_c + spread · z_i, z_i ~ N(0, I_d). The means are
    μ_c ~ N(0, separation² I_d) (``means="normal"``) or the vertices of a regular
    simplex at distance ``separation`` from the origin (``means="simplex"``, needs
    C ≤ d + 1). With ``standardize`` the whole set is then globally standardised
    (each feature centred and divided by its standard deviation over all samples),
    as in Sagun et al. 2017, App. A. Rows are shuffled.

    Parameters
    ----------
    num_samples : int
        N ≥ num_classes.
    num_classes : int
        C ≥ 1, the number of clusters (= classes). Independent of any network's
        number of outputs K: train a K-output network with K ≥ C on it.
    dim : int
        Input dimension d ≥ 1.
    separation : float
        Scale of the class means (> 0).
    spread : float
        Within-class standard deviation (> 0).
    balance : array_like of shape (C,), optional
        Relative class sizes; equal (to within one sample) if None.
    means : {"normal", "simplex"}
    standardize : bool
    rng : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray, shape (N, d), float64
    y : ndarray, shape (N,), int64 labels in [0, C)

    Examples
    --------
    >>> X, y = gaussian_mixture(60, 3, 5, rng=0)
    >>> X.shape, X.dtype, np.bincount(y).tolist()
    ((60, 5), dtype('float64'), [20, 20, 20])
    """
    num_classes = check_positive_int("num_classes", num_classes)
    num_samples = check_positive_int("num_samples", num_samples)
    dim = check_positive_int("dim", dim)
    if num_samples < num_classes:
        raise ValueError(
            f"num_samples: expected at least one sample per class (>= num_classes = "
            f"{num_classes}), got {num_samples}"
        )
    separation = check_positive_float("separation", separation)
    spread = check_positive_float("spread", spread)
    check_choice("means", means, MEAN_LAYOUTS)
    gen = np.random.default_rng(rng)
    counts = _class_counts(num_samples, num_classes, balance)
    mu = _class_means(num_classes, dim, separation, means, gen)
    y = np.repeat(np.arange(num_classes, dtype=np.int64), counts)
    X = mu[y] + spread * gen.standard_normal((num_samples, dim))
    perm = gen.permutation(num_samples)
    X, y = X[perm], y[perm]
    if standardize:
        X = _standardize(X)
    return X, y


def _standardize(X: Array) -> Array:
    """Centre each feature and divide by its std; constant features are only centred."""
    X = X - X.mean(axis=0)
    std = X.std(axis=0)
    return X / np.where(std > 0, std, 1.0)


def two_blobs(
    num_per_blob: int = 100, std: float = 0.1, rng: int | np.random.Generator | None = None
) -> tuple[Array, Labels]:
    """Two isotropic 2-D Gaussian blobs at (1, 1) (label 0) and (−1, −1) (label 1).

    The data set of Sagun, Bottou, LeCun 2016 (§3 of arXiv:1611.07476); ``std`` is the
    per-coordinate standard deviation (0.1 in the main figures, 0.2–1.0 in the
    data-complexity figure). Not standardised. Rows are shuffled.

    Returns
    -------
    X : ndarray, shape (2·num_per_blob, 2)
    y : ndarray, shape (2·num_per_blob,), int64 labels in {0, 1}

    Examples
    --------
    >>> X, y = two_blobs(5, rng=0)
    >>> X.shape, np.bincount(y).tolist()
    ((10, 2), [5, 5])
    """
    num_per_blob = check_positive_int("num_per_blob", num_per_blob)
    std = check_positive_float("std", std)
    gen = np.random.default_rng(rng)
    centres = np.array([[1.0, 1.0], [-1.0, -1.0]])
    y = np.repeat(np.array([0, 1], dtype=np.int64), num_per_blob)
    X = centres[y] + std * gen.standard_normal((2 * num_per_blob, 2))
    perm = gen.permutation(2 * num_per_blob)
    return X[perm], y[perm]


def teacher_student(
    num_samples: int,
    sizes: Sequence[int],
    activation: str = "tanh",
    noise: float = 0.0,
    rng: int | np.random.Generator | None = None,
) -> tuple[Array, Array, Array]:
    """Regression data labelled by a random teacher MLP: Y = f(θ*, X) + noise · E.

    X ~ N(0, I_{d_0}) and E ~ N(0, I_{d_L}) entrywise; θ* is drawn with
    :meth:`hessref.MLP.init` (PyTorch default init). With ``noise = 0`` a student of the
    teacher's architecture can interpolate (then R = 0 at θ*, docs/theory.md §5).

    Parameters
    ----------
    num_samples : int
    sizes : sequence of int
        Teacher architecture [d_0, ..., d_L].
    activation : str
    noise : float
        Standard deviation of additive Gaussian label noise (≥ 0).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray, shape (N, d_0)
    Y : ndarray, shape (N, d_L), MSE targets
    teacher_theta : ndarray, shape (P_teacher,)

    Examples
    --------
    >>> X, Y, theta = teacher_student(8, [3, 4, 2], rng=0)
    >>> X.shape, Y.shape, theta.shape
    ((8, 3), (8, 2), (26,))
    """
    num_samples = check_positive_int("num_samples", num_samples)
    noise = check_nonnegative_float("noise", noise)
    teacher = MLP(sizes, activation=activation)
    gen = np.random.default_rng(rng)
    theta = teacher.init(gen)
    X = gen.standard_normal((num_samples, teacher.sizes[0]))
    Y = forward(teacher, teacher.unflatten(theta), X).F
    if noise > 0:
        Y = Y + noise * gen.standard_normal(Y.shape)
    return X, Y, theta


def _load_digits() -> tuple[Array, Labels]:
    """The 1797 × 64 pixel values and labels shipped with scikit-learn.

    Reads scikit-learn's own ``datasets/data/digits.csv.gz`` (the file behind
    ``sklearn.datasets.load_digits``) without importing scikit-learn, which takes
    seconds; falls back to ``load_digits`` if the file is not where it is expected.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1].copy(), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # pragma: no cover - fallback

    bunch = load_digits()  # pragma: no cover
    X = np.asarray(bunch.data, np.float64)  # pragma: no cover
    return X, np.asarray(bunch.target, np.int64)  # pragma: no cover


def digits(
    num_samples: int | None = None,
    rng: int | np.random.Generator | None = None,
    standardize: bool = True,
) -> tuple[Array, Labels]:
    """scikit-learn's handwritten digits: 8×8 images flattened to 64 features, 10 classes.

    The data of :func:`sklearn.datasets.load_digits`, read from the file shipped inside
    scikit-learn (no download). 1797 samples. **This is not MNIST** (28×28, 784 features,
    70,000 images); it is the small real dataset hessref uses in place of MNIST, so
    results on it are not numbers from the papers.

    Parameters
    ----------
    num_samples : int, optional
        Take a random subset of this size (without replacement, drawn with ``rng``);
        all 1797 samples in file order if None.
    rng : None, int or numpy.random.Generator
    standardize : bool
        Centre each pixel and divide by its std over the selected samples (constant
        pixels, e.g. the always-blank corners, are only centred). Otherwise pixel
        values are scaled to [0, 1] (raw values are 0–16).

    Returns
    -------
    X : ndarray, shape (N, 64), float64
    y : ndarray, shape (N,), int64 labels in [0, 10)

    Examples
    --------
    >>> X, y = digits(100, rng=0)
    >>> X.shape, y.dtype
    ((100, 64), dtype('int64'))
    """
    X, y = _load_digits()
    if num_samples is not None:
        num_samples = check_positive_int("num_samples", num_samples)
        if num_samples > X.shape[0]:
            raise ValueError(
                f"num_samples: digits has {X.shape[0]} samples, got num_samples = {num_samples}"
            )
        idx = np.random.default_rng(rng).choice(X.shape[0], size=num_samples, replace=False)
        X, y = X[idx], y[idx]
    return (_standardize(X) if standardize else X / 16.0), y


def box_blobs(
    num_samples: int,
    num_classes: int,
    dim: int,
    cluster_std: float = 1.0,
    center_box: float = 10.0,
    standardize: bool = True,
    rng: int | np.random.Generator | None = None,
) -> tuple[Array, Labels]:
    """Isotropic Gaussian clusters with centres uniform in a box (the likely Table 1 data).

    The recipe of scikit-learn's ``make_blobs(centers=k, cluster_std=s)``, which the public
    code of Sagun et al. 2017 (arXiv:1706.04454, App. A) uses: centres
    μ_c ~ U(−b, b)^d, sample i of class c is x_i = μ_c + s · z_i, z_i ~ N(0, I_d); class
    sizes equal to within one sample (the first N mod k classes get one more); rows
    shuffled; then, with ``standardize``, each feature centred and divided by its std.
    Drawn with NumPy's ``default_rng``, so it is the same *distribution* as
    ``make_blobs``, not the same numbers.

    Parameters
    ----------
    num_samples : int
        N ≥ num_classes.
    num_classes : int
        k ≥ 1 clusters (= classes).
    dim : int
        d ≥ 1.
    cluster_std : float
        s > 0, the within-cluster standard deviation (Table 1's "cov" factor 1 or 10).
    center_box : float
        b > 0, the half-width of the box of centres (scikit-learn's default is 10).
    standardize : bool
    rng : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray, shape (N, d), float64
    y : ndarray, shape (N,), int64 labels in [0, k)

    Examples
    --------
    >>> X, y = box_blobs(10, 3, 4, rng=0)
    >>> X.shape, np.bincount(y).tolist()
    ((10, 4), [4, 3, 3])
    """
    num_classes = check_positive_int("num_classes", num_classes)
    num_samples = check_positive_int("num_samples", num_samples, minimum=num_classes)
    dim = check_positive_int("dim", dim)
    cluster_std = check_positive_float("cluster_std", cluster_std)
    center_box = check_positive_float("center_box", center_box)
    gen = np.random.default_rng(rng)
    mu = gen.uniform(-center_box, center_box, size=(num_classes, dim))
    y = np.repeat(
        np.arange(num_classes, dtype=np.int64), _class_counts(num_samples, num_classes, None)
    )
    X = mu[y] + cluster_std * gen.standard_normal((num_samples, dim))
    perm = gen.permutation(num_samples)
    X, y = X[perm], y[perm]
    return (_standardize(X) if standardize else X), y


#: MNIST-1D generator arguments (Greydanus 2020, the package's ``get_dataset_args``
#: defaults, without the download URL): 12-point templates, padding 36–60, scale ±20%,
#: translation < 48, correlated noise 0.25, i.i.d. noise 0.02, shear 0.75, 40 points.
MNIST1D_ARGS = {
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
}


def mnist1d(
    num_samples: int = 4000, rng: int | np.random.Generator | None = None, **overrides
) -> tuple[Array, Labels]:
    """MNIST-1D (Greydanus 2020): 10 classes of 40-point 1-D signals, generated procedurally.

    Calls the PyPI package ``mnist1d``'s ``make_dataset`` with explicit arguments
    (:data:`MNIST1D_ARGS`, changed by ``overrides``); never ``get_dataset``, which
    downloads a pickle from GitHub and writes a cache file. No network access, no file
    written. ``make_dataset`` seeds NumPy's *global* generator (``np.random.seed``) and
    Python's ``random``; their states are restored afterwards, so calling this function
    changes no global state. The package standardises the whole set globally
    (one mean and one std over all values).

    Parameters
    ----------
    num_samples : int
        N, a positive multiple of 10 (``make_dataset`` draws N / 10 samples per class).
    rng : None, int or numpy.random.Generator
        The generator's seed is drawn from ``np.random.default_rng(rng)``; the same seed
        gives the same bits.
    **overrides
        Keys of :data:`MNIST1D_ARGS` to change (e.g. ``iid_noise_scale=0.1``).

    Returns
    -------
    X : ndarray, shape (N, 40), float64
    y : ndarray, shape (N,), int64 labels in [0, 10)

    Raises
    ------
    ImportError
        If ``mnist1d`` is not installed (``pip install hessref[mnist1d]``).
    """
    num_samples = check_positive_int("num_samples", num_samples, minimum=10)
    if num_samples % 10:
        raise ValueError(f"num_samples: expected a multiple of 10 (10 classes), got {num_samples}")
    unknown = sorted(set(overrides) - set(MNIST1D_ARGS))
    if unknown:
        raise ValueError(
            f"overrides: unknown MNIST-1D arguments {unknown}; expected keys of "
            f"MNIST1D_ARGS {sorted(MNIST1D_ARGS)}"
        )
    try:
        from mnist1d.data import make_dataset
        from mnist1d.utils import ObjectView
    except ImportError as exc:
        raise ImportError(
            "mnist1d: the MNIST-1D generator needs the package 'mnist1d'; install it with "
            "`pip install hessref[mnist1d]` (or `pip install mnist1d`)"
        ) from exc
    seed = int(np.random.default_rng(rng).integers(2**32 - 1))
    args = {**MNIST1D_ARGS, **overrides, "num_samples": num_samples, "train_split": 1.0}
    args["seed"] = seed
    with _global_random_state_kept():
        made = make_dataset(ObjectView(args))
    return np.asarray(made["x"], np.float64), np.asarray(made["y"], np.int64)


class _global_random_state_kept:
    """Context manager restoring NumPy's global and Python's ``random`` states on exit."""

    def __enter__(self) -> None:
        import random

        # the package seeds the legacy global generator; saving its state is the point here
        self._states = (np.random.get_state(), random.getstate())  # noqa: NPY002

    def __exit__(self, *exc) -> None:
        import random

        np.random.set_state(self._states[0])  # noqa: NPY002
        random.setstate(self._states[1])
