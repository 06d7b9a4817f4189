"""Full-batch gradient descent and minibatch SGD with a constant step, seeded.

Update (docs/theory.md §15, §16): θ_{t+1} = θ_t − η g_t with g_t = ∇L(θ_t) (full batch, GD)
or g_t = ∇L_{B_t}(θ_t), the mean-loss gradient on a minibatch B_t of ``batch_size`` rows
(SGD). Minibatches walk through successive random permutations of the N samples
(sampling without replacement within an epoch; an epoch boundary may fall inside a
batch), drawn from ``rng`` — the same seed gives bit-identical trajectories.

Every step also records the full-batch loss L(θ_t) and gradient norm ‖∇L(θ_t)‖, so
GD and SGD runs are compared on the same objective. Training stops early when the
full-batch loss or gradient norm reaches a target, and raises
:class:`TrainingDivergedError` (a ``FloatingPointError``) instead of returning garbage
when the loss becomes non-finite or explodes.

The inputs are validated once (:func:`hessref.core.problem.make_problem`); each step then
calls the engine's forward pass and backprop directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.mlp import MLP, backprop_gradient, forward
from hessref.core.problem import Problem, make_problem
from hessref.core.validation import as_float_array, check_positive_int

Array = NDArray[np.float64]

#: Loss growth factor over max(L(θ_0), 1) that counts as divergence.
EXPLOSION_FACTOR = 1e6

STOP_REASONS = ("steps", "stop_loss", "stop_grad_norm")


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite or exploding loss; the message names the step."""


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    theta : ndarray (P,)
        Final parameters θ_T (T = number of updates performed).
    losses : ndarray (T + 1,)
        Full-batch loss L(θ_t) for t = 0..T.
    grad_norms : ndarray (T + 1,)
        Full-batch ‖∇L(θ_t)‖ for t = 0..T.
    recorded_steps : ndarray of int (M,)
        Steps t at which θ_t was recorded (always includes 0 and T).
    recorded_thetas : ndarray (M, P)
        The recorded θ_t, rows in the order of ``recorded_steps``.
    stopped_reason : str
        ``"steps"`` (ran all steps), ``"stop_loss"`` or ``"stop_grad_norm"``.
    settings : dict
        The training arguments (loss, reduction, lr, steps, batch_size, stop targets).
    """

    theta: Array
    losses: Array
    grad_norms: Array
    recorded_steps: NDArray[np.int64]
    recorded_thetas: Array
    stopped_reason: str
    settings: dict = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        """T, the number of parameter updates performed."""
        return len(self.losses) - 1


def _loss_and_gradient(problem: Problem, theta: Array, X: Array, y: NDArray, scale: float):
    """L and ∇L over rows (X, y) with per-sample weight ``scale``, via the engine."""
    model = problem.model
    params = model.unflatten(theta)
    cache = forward(model, params, X)
    value = scale * float(problem.loss.value(cache.F, y).sum())
    grads = backprop_gradient(params, cache, scale * problem.loss.gradient(cache.F, y))
    return value, model.flatten(grads)


def _minibatches(num_samples: int, batch_size: int, gen: np.random.Generator) -> Iterator:
    """Endless stream of index batches from successive random permutations."""
    buffer = np.empty(0, dtype=np.int64)
    while True:
        while buffer.size < batch_size:
            buffer = np.concatenate([buffer, gen.permutation(num_samples)])
        yield buffer[:batch_size]
        buffer = buffer[batch_size:]


def _check_optional_positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected None or a finite number >= 0, got {value!r}")
    return float(value)


def train(
    model: MLP,
    theta0: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str,
    lr: float,
    steps: int,
    batch_size: int | None = None,
    reduction: str = "mean",
    rng: int | np.random.Generator | None = None,
    record_every: int | None = None,
    stop_loss: float | None = None,
    stop_grad_norm: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``model`` from ``theta0`` by GD (``batch_size=None``) or minibatch SGD.

    Parameters
    ----------
    model : MLP
    theta0 : array_like, shape (P,)
        Starting point (not modified).
    X, y : array_like
        Training data, as for :func:`hessref.loss`.
    loss : {"mse", "cross_entropy"}
    lr : float
        Constant step η > 0.
    steps : int
        Maximum number of updates T ≥ 0.
    batch_size : int, optional
        Minibatch size B (1 ≤ B ≤ N); None or N means full-batch GD.
    reduction : {"mean", "sum"}
        Objective L. For ``"sum"`` the minibatch gradient is rescaled by N/B so it is
        an unbiased estimate of ∇L.
    rng : None, int or numpy.random.Generator
        Minibatch sampling (unused by GD).
    record_every : int, optional
        Also record θ_t every this many steps (θ_0 and θ_T are always recorded).
    stop_loss, stop_grad_norm : float, optional
        Stop as soon as the full-batch L(θ_t) ≤ stop_loss, or ‖∇L(θ_t)‖ ≤ stop_grad_norm.
    progress : callable(str), optional
        Receives about ten status lines per run.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError
        (a ``FloatingPointError``) if L(θ_t) is NaN/inf or exceeds
        ``EXPLOSION_FACTOR · max(L(θ_0), 1)``; the message names the step and suggests
        a smaller ``lr``.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 1], activation="identity")
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]]); Y = np.array([[1.0], [2.0]])
    >>> res = train(model, np.zeros(3), X, Y, loss="mse", lr=0.5, steps=200)
    >>> bool(res.losses[-1] < 1e-12), res.stopped_reason
    (True, 'steps')
    """
    problem = make_problem(model, theta0, X, y, loss, reduction)
    lr = _check_optional_positive("lr", lr)
    if lr is None or lr == 0:
        raise ValueError(f"lr: expected a finite step size > 0, got {lr!r}")
    steps = check_positive_int("steps", steps, minimum=0)
    N = problem.num_samples
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size > N:
            raise ValueError(
                f"batch_size: expected 1 <= batch_size <= N = {N}, got {batch_size}; "
                "use batch_size=None for full-batch GD"
            )
        if batch_size == N:
            batch_size = None
    if record_every is not None:
        record_every = check_positive_int("record_every", record_every)
    stop_loss = _check_optional_positive("stop_loss", stop_loss)
    stop_grad_norm = _check_optional_positive("stop_grad_norm", stop_grad_norm)

    gen = np.random.default_rng(rng)
    batches = _minibatches(N, batch_size, gen) if batch_size is not None else None
    # minibatch weight: mean over the batch (mean), or N/B times the batch sum (sum)
    batch_scale = None if batch_size is None else problem.scale * N / batch_size
    report_every = max(1, steps // 10)

    theta = problem.theta.copy()
    losses, grad_norms = [], []
    rec_steps, rec_thetas = [0], [theta.copy()]
    reason = "steps"
    limit = None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(steps + 1):
            value, grad = _loss_and_gradient(problem, theta, problem.X, problem.y, problem.scale)
            gnorm = float(np.linalg.norm(grad))
            if limit is None:
                limit = EXPLOSION_FACTOR * max(value, 1.0) if np.isfinite(value) else 0.0
            if not (np.isfinite(value) and np.isfinite(gnorm)) or value > limit:
                what = "non-finite" if not np.isfinite(value) else "exploding"
                raise TrainingDivergedError(
                    f"training diverged at step {t}: {what} full-batch loss {value!r} "
                    f"(initial loss {losses[0] if losses else value!r}) with lr = {lr}; "
                    "use a smaller lr (GD on a quadratic diverges iff λ_max(H) > 2/lr)"
                )
            losses.append(value)
            grad_norms.append(gnorm)
            if stop_loss is not None and value <= stop_loss:
                reason = "stop_loss"
                break
            if stop_grad_norm is not None and gnorm <= stop_grad_norm:
                reason = "stop_grad_norm"
                break
            if t == steps:
                break
            if batches is not None:
                idx = next(batches)
                _, grad = _loss_and_gradient(
                    problem, theta, problem.X[idx], problem.y[idx], batch_scale
                )
            theta = theta - lr * grad
            if record_every is not None and (t + 1) % record_every == 0:
                rec_steps.append(t + 1)
                rec_thetas.append(theta.copy())
            if progress is not None and (t + 1) % report_every == 0:
                progress(f"step {t + 1}/{steps}: loss {value:.3e}, |grad| {gnorm:.3e}")
    T = len(losses) - 1
    if rec_steps[-1] != T:
        rec_steps.append(T)
        rec_thetas.append(theta.copy())
    settings = {
        "loss": loss,
        "reduction": reduction,
        "lr": lr,
        "steps": steps,
        "batch_size": batch_size,
        "stop_loss": stop_loss,
        "stop_grad_norm": stop_grad_norm,
    }
    return TrainResult(
        theta=theta,
        losses=np.array(losses),
        grad_norms=np.array(grad_norms),
        recorded_steps=np.array(rec_steps, dtype=np.int64),
        recorded_thetas=np.array(rec_thetas),
        stopped_reason=reason,
        settings=settings,
    )


def interpolate_loss(
    model: MLP,
    theta_a: ArrayLike,
    theta_b: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    loss: str,
    alphas: ArrayLike,
    *,
    reduction: str = "mean",
) -> Array:
    """Loss along the straight line θ(α) = (1 − α) θ_a + α θ_b (Sagun et al. 2016, 2017).

    Parameters
    ----------
    theta_a, theta_b : array_like, shape (P,)
    alphas : array_like, shape (M,)
        Line coordinates; 0 gives θ_a, 1 gives θ_b, values outside [0, 1] extrapolate.

    Returns
    -------
    ndarray, shape (M,)
        L(θ(α_m)).

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([1, 1], activation="identity")
    >>> X = np.array([[1.0]]); Y = np.array([[0.0]])
    >>> interpolate_loss(model, [1.0, 0.0], [-1.0, 0.0], X, Y, loss="mse", alphas=[0, 0.5, 1])
    array([0.5, 0. , 0.5])
    """
    problem = make_problem(model, theta_a, X, y, loss, reduction)
    theta_b = make_problem(model, theta_b, problem.X[:1], problem.y[:1], loss, reduction).theta
    alphas = as_float_array("alphas", alphas, ndim=1)
    out = np.empty(alphas.shape[0])
    for m, alpha in enumerate(alphas):
        theta = (1.0 - alpha) * problem.theta + alpha * theta_b
        params = problem.model.unflatten(theta)
        F = forward(problem.model, params, problem.X).F
        out[m] = problem.scale * problem.loss.value(F, problem.y).sum()
    return out
