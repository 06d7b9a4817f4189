"""The MLP: specification, flat parameter layout, forward pass and first-order backprop.

Model (samples are rows, docs/theory.md §1, equations (1.1)-(1.2))::

    Z_l = A_{l-1} @ W_l.T + b_l,   A_0 = X,   A_l = σ(Z_l) for l < L,   F = Z_L (linear output)

Layout of θ (length P), identical to ``torch.nn.utils.parameters_to_vector`` of
``nn.Sequential(nn.Linear(d_0, d_1), act, ..., nn.Linear(d_{L-1}, d_L))``::

    θ = [W_1.ravel(), b_1, W_2.ravel(), b_2, ...],   W_l of shape (d_l, d_{l-1}), row-major

so W_l[o, i] sits at offset o·d_{l-1} + i inside its block, and each layer's
(W_l, b_l) occupies one contiguous slice of θ.

Everything downstream (gradient, Jacobian, HVP, H, G, R, operators) uses the
``forward`` cache and the one δ back-recursion :func:`backpropagate` of this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.activations import Activation, get_activation
from hessref.core.losses import LossAt
from hessref.core.validation import as_float_array

Array = NDArray[np.float64]
Params = list[tuple[Array, Array]]


class MLP:
    """A fully connected network ``sizes = [d_0, ..., d_L]`` with one hidden activation.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, at least two entries (d_0 inputs, d_L outputs), each ≥ 1.
    activation : str
        Hidden activation name (see ``hessref.core.activations.ACTIVATIONS``); the output is linear.

    Attributes
    ----------
    sizes : tuple of int
    activation : Activation
    num_layers : int
        L, the number of affine maps.
    num_params : int
        P = Σ_l d_l (d_{l-1} + 1).

    Examples
    --------
    >>> model = MLP([3, 4, 2], activation="tanh")
    >>> model.num_params
    26
    >>> [W.shape for W, b in model.unflatten(model.init(rng=0))]
    [(4, 3), (2, 4)]
    >>> model.layer_slice(2)
    slice(16, 26, None)
    """

    def __init__(self, sizes: Sequence[int], activation: str = "tanh") -> None:
        try:
            sizes_t = tuple(int(d) for d in sizes)
            ok = len(sizes_t) >= 2 and all(
                d >= 1 and d == s for d, s in zip(sizes_t, sizes, strict=True)
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"sizes: expected a sequence of at least two positive integers "
                f"[d_0, ..., d_L], got {sizes!r}"
            )
        self.sizes = sizes_t
        self.activation: Activation = get_activation(activation)
        self.num_layers = len(sizes_t) - 1
        offsets = [0]
        for d_in, d_out in zip(sizes_t[:-1], sizes_t[1:], strict=True):
            offsets.append(offsets[-1] + d_out * d_in + d_out)
        self._offsets = offsets
        self.num_params = offsets[-1]

    def __repr__(self) -> str:
        return f"MLP({list(self.sizes)}, activation={self.activation.name!r})"

    # --- layout -------------------------------------------------------------------------

    def weight_slice(self, layer: int) -> slice:
        """Slice of θ holding W_layer (1-based layer index, as in docs/theory.md §1)."""
        self._check_layer(layer)
        start = self._offsets[layer - 1]
        return slice(start, start + self.sizes[layer] * self.sizes[layer - 1])

    def bias_slice(self, layer: int) -> slice:
        """Slice of θ holding b_layer (1-based)."""
        w = self.weight_slice(layer)
        return slice(w.stop, w.stop + self.sizes[layer])

    def layer_slice(self, layer: int) -> slice:
        """Slice of θ holding (W_layer, b_layer), which are contiguous (1-based)."""
        self._check_layer(layer)
        return slice(self._offsets[layer - 1], self._offsets[layer])

    def parameter_names(self) -> list[str]:
        """Names of the 2L parameter tensors in θ order: ``W1, b1, W2, b2, ...``."""
        return [f"{p}{l}" for l in range(1, self.num_layers + 1) for p in ("W", "b")]

    def locate(self, index: int) -> str:
        """Human-readable position of flat index ``index``, e.g. ``"W2[3, 0]"``.

        Examples
        --------
        >>> MLP([3, 4, 2]).locate(17)
        'W2[0, 1]'
        """
        if not 0 <= index < self.num_params:
            raise ValueError(f"index: expected 0 <= index < P = {self.num_params}, got {index}")
        for layer in range(1, self.num_layers + 1):
            w, b = self.weight_slice(layer), self.bias_slice(layer)
            if index < w.stop:
                o, i = divmod(index - w.start, self.sizes[layer - 1])
                return f"W{layer}[{o}, {i}]"
            if index < b.stop:
                return f"b{layer}[{index - b.start}]"
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_layer(self, layer: int) -> None:
        if not (isinstance(layer, (int, np.integer)) and 1 <= layer <= self.num_layers):
            raise ValueError(
                f"layer: expected an integer in 1..{self.num_layers} (1-based), got {layer!r}"
            )

    # --- parameters -----------------------------------------------------------------------

    def init(self, rng: int | np.random.Generator | None = None) -> Array:
        """Random θ with PyTorch's default ``nn.Linear`` scheme.

        Every entry of W_l and b_l is drawn from U(−1/√d_{l-1}, 1/√d_{l-1}),
        layer by layer in θ order, from ``np.random.default_rng(rng)``.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Source of randomness; the same seed gives bit-identical θ.

        Returns
        -------
        theta : ndarray, shape (P,)
        """
        gen = np.random.default_rng(rng)
        theta = np.empty(self.num_params)
        for layer in range(1, self.num_layers + 1):
            bound = 1.0 / np.sqrt(self.sizes[layer - 1])
            s = self.layer_slice(layer)
            theta[s] = gen.uniform(-bound, bound, size=s.stop - s.start)
        return theta

    def unflatten(self, theta: ArrayLike) -> Params:
        """Split θ (P,) into ``[(W_1, b_1), ...]`` of float64 arrays.

        θ is checked like every public input (real, finite; float32/int converted to
        float64, complex/object/string refused). The arrays are views into θ when θ is
        already a finite float64 vector, else into its float64 copy.
        """
        theta = as_float_array("theta", theta)
        if theta.shape != (self.num_params,):
            raise ValueError(
                f"theta: expected shape ({self.num_params},) for {self!r}, got {theta.shape}"
            )
        return self._unflatten_unchecked(theta)

    def _unflatten_unchecked(self, theta: Array) -> Params:
        """:meth:`unflatten` for a θ already checked at the boundary (finite float64 (P,)).

        The engine's fast path: views into θ, no validation pass.
        """
        return [
            (
                theta[self.weight_slice(l)].reshape(self.sizes[l], self.sizes[l - 1]),
                theta[self.bias_slice(l)],
            )
            for l in range(1, self.num_layers + 1)
        ]

    def flatten(self, params: Sequence[tuple[ArrayLike, ArrayLike]]) -> Array:
        """Inverse of :meth:`unflatten`: ``[(W_1, b_1), ...]`` → θ (P,), a new float64 array.

        Each W_l and b_l must be real and finite (float32/int/bool converted; complex,
        object, string or NaN/inf entries raise ``TypeError``/``ValueError``).
        """
        if len(params) != self.num_layers:
            raise ValueError(f"params: expected {self.num_layers} (W, b) pairs, got {len(params)}")
        checked = []
        for l, (W, b) in enumerate(params, start=1):
            W, b = as_float_array(f"params[{l - 1}] (W{l})", W), as_float_array(f"b{l}", b)
            shape_w = (self.sizes[l], self.sizes[l - 1])
            if W.shape != shape_w or b.shape != (self.sizes[l],):
                raise ValueError(
                    f"params[{l - 1}]: expected W{l} {shape_w} and b{l} ({self.sizes[l]},), "
                    f"got {W.shape} and {b.shape}"
                )
            checked.append((W, b))
        return self._flatten_unchecked(checked)

    def _flatten_unchecked(self, params: Sequence[tuple[Array, Array]]) -> Array:
        """:meth:`flatten` for float64 (W_l, b_l) of the right shapes (engine results)."""
        theta = np.empty(self.num_params)
        for l, (W, b) in enumerate(params, start=1):
            theta[self.weight_slice(l)] = W.ravel()
            theta[self.bias_slice(l)] = b
        return theta


@dataclass
class ForwardCache:
    """Everything backprop and the R-op need from one forward pass.

    Attributes
    ----------
    A : list of ndarray
        ``A[l]`` (N, d_l) for l = 0..L-1: inputs to layer l+1 (A[0] = X).
    Z : list of ndarray
        ``Z[l-1]`` (N, d_l) for l = 1..L: pre-activations; ``Z[-1]`` is F.
    dsigma, d2sigma : list of ndarray
        σ′(Z_l) and σ″(Z_l) for hidden layers l = 1..L-1 (σ″ only when requested).
    backward : tuple of two lists, optional
        The loss's backward pass at these activations, ``(δ, g)`` from
        :func:`hessref.core.backward.backward_deltas`, when a caller keeps it with the
        cache (it does not depend on the directions of an R-op product).
    output : LossAt, optional
        The loss evaluated at F (ℓ, r, softmax) for the data of the pass, stored by
        :func:`hessref.core.backward.loss_at` the first time an engine needs it.
    """

    A: list[Array]
    Z: list[Array]
    dsigma: list[Array]
    d2sigma: list[Array] | None
    backward: tuple[list[Array], list[Array]] | None = None
    output: LossAt | None = None

    @property
    def F(self) -> Array:
        """Network outputs F = Z_L, shape (N, d_L)."""
        return self.Z[-1]


def forward(model: MLP, params: Params, X: Array, second_order: bool = False) -> ForwardCache:
    """Forward pass ``Z_l = A_{l-1} W_lᵀ + b_l``, keeping what backprop needs.

    Parameters
    ----------
    model : MLP
    params : list of (W_l, b_l)
    X : ndarray, shape (N, d_0)
    second_order : bool
        Also store σ″(Z_l) (needed by the Hessian/residual R-op).
    """
    act = model.activation
    A, Z, dsig, d2sig = [X], [], [], []
    for l, (W, b) in enumerate(params, start=1):
        z = A[-1] @ W.T + b
        Z.append(z)
        if l < model.num_layers:
            A.append(act.f(z))
            dsig.append(act.df(z))
            if second_order:
                d2sig.append(act.d2f(z))
    return ForwardCache(A, Z, dsig, d2sig if second_order else None)


def backpropagate(
    params: Params, cache: ForwardCache, delta_L: Array
) -> Iterator[tuple[int, Array, Array | None]]:
    """THE δ back-recursion (docs/theory.md (4.1)): yield ``(l, δ_l, g_l)`` for l = L, ..., 1.

    δ_L = ``delta_L``; g_l = W_{l+1}ᵀ δ_{l+1} and δ_l = σ′(z_l) ⊙ g_l, with g_L = None.
    ``delta_L`` is (N, d_L) (one covector per sample: s r for the loss) or (N, M, d_L)
    (M seeds per sample: the Jacobian, Papyan's class sums); the recursion acts on the
    last axis, so δ_l and g_l are (N, d_l) or (N, M, d_l). Every engine path that
    backpropagates (gradient, R-op, dense blocks, Jacobian, seed sums) iterates this.
    Each step is one GEMM over all samples (and seeds): (N·M, d_{l+1}) @ W_{l+1}.
    """
    delta, g = delta_L, None
    for l in range(len(params), 0, -1):
        yield l, delta, g
        if l == 1:
            return
        W = params[l - 1][0]  # W_l (d_l, d_{l-1})
        g = (delta.reshape(-1, W.shape[0]) @ W).reshape(*delta.shape[:-1], W.shape[1])
        dsig = cache.dsigma[l - 2]  # σ′(z_{l-1}) (N, d_{l-1}), broadcast over seeds
        delta = g * (dsig if g.ndim == 2 else dsig[:, None, :])


def backprop_gradient(
    params: Params, cache: ForwardCache, delta: Array
) -> list[tuple[Array, Array]]:
    """Backpropagate output gradients ``delta`` (N, d_L) and sum over samples.

    Returns ``[(Σ_i δ_{l,i} a_{l-1,i}ᵀ, Σ_i δ_{l,i}) for l = 1..L]``, i.e. ∂/∂(W_l, b_l)
    of Σ_i delta_i · f_i (docs/theory.md (4.2)). With delta = scale · r this is the loss
    gradient.
    """
    grads: list[tuple[Array, Array]] = [None] * len(params)  # type: ignore[list-item]
    for l, delta_l, _ in backpropagate(params, cache, delta):
        grads[l - 1] = (delta_l.T @ cache.A[l - 1], delta_l.sum(axis=0))
    return grads


def backprop_seeds(model: MLP, params: Params, cache: ForwardCache, S: Array) -> Array:
    """Per-sample vector-Jacobian products ``S_{i,m} · J_i`` for M seeds per sample.

    Parameters
    ----------
    S : ndarray, shape (N, M, d_L)
        Row m of sample i is an output-space covector s_{i,m}.

    Returns
    -------
    out : ndarray, shape (N, M, P)
        ``out[i, m] = J_iᵀ s_{i,m}``. With S = I this is the Jacobian (N, d_L, P);
        with S = B (the loss Hessian factor) it is the scaled Jacobian whose Gram
        matrix is G (docs/theory.md (5.2)).
    """
    N, M, _ = S.shape
    out = np.empty((N, M, model.num_params))
    for l, delta, _ in backpropagate(params, cache, S):
        a = cache.A[l - 1]
        # ∂(s·f)/∂W_l[o, i] = δ_l[o] a_{l-1}[i], one outer product per sample and seed
        outer = delta[:, :, :, None] * a[:, None, None, :]
        out[:, :, model.weight_slice(l)] = outer.reshape(N, M, -1)
        out[:, :, model.bias_slice(l)] = delta
    return out


def backprop_seed_sums(model: MLP, params: Params, cache: ForwardCache, S: Array) -> Array:
    """Sums over samples of vector-Jacobian products, ``Σ_i J_iᵀ s_{i,m}`` for each seed m.

    Equals ``backprop_seeds(model, params, cache, S).sum(axis=0)`` without forming the
    (N, M, P) array: per layer, ∂/∂W_l = Σ_i δ_{l,i,m} a_{l-1,i}ᵀ is one GEMM over the
    samples, (M·d_l, N) @ (N, d_{l-1}), as in the gradient.

    Parameters
    ----------
    S : ndarray, shape (N, M, d_L)
        Row m of sample i is an output-space covector s_{i,m}.

    Returns
    -------
    out : ndarray, shape (M, P)
    """
    N, M, _ = S.shape
    out = np.empty((M, model.num_params))
    for l, delta, _ in backpropagate(params, cache, S):
        d_out = delta.shape[2]
        # rows (m, o) of the product are θ's row-major (o, i) layout of W_l, per seed m
        rows = delta.transpose(1, 2, 0).reshape(M * d_out, N)
        out[:, model.weight_slice(l)] = (rows @ cache.A[l - 1]).reshape(M, -1)
        out[:, model.bias_slice(l)] = delta.sum(axis=0)
    return out
