"""The training loop: GD/SGD, sign descent and Muon with a constant step, seeded.

Update: θ_{t+1} = θ_t − η Δ_t, where Δ_t is the optimizer's step direction
(:mod:`hessref.train.optimizers`) computed from g_t = ∇L(θ_t) (full batch) or
g_t = ∇L_{B_t}(θ_t), the gradient on a minibatch B_t of ``batch_size`` rows (stochastic
variants), optionally plus injected noise ξ_t (:class:`GradientNoise`). Minibatches
walk through successive random permutations of the N samples (sampling without
replacement within an epoch; an epoch boundary may fall inside a batch; docs/theory.md,
section "Minibatch SGD sampling"), drawn from ``rng`` — the same seed gives bit-identical
trajectories. GD on a quadratic is stable iff λ_max(H) ≤ 2/η (docs/theory.md, section
"Gradient descent on a quadratic").

Every step also records the full-batch loss L(θ_t) and gradient norm ‖∇L(θ_t)‖, so
runs are compared on the same objective. Training stops early when the full-batch
loss or gradient norm reaches a target, and raises :class:`TrainingDivergedError` (a
``FloatingPointError``) instead of returning garbage when the loss becomes non-finite
or explodes. ``track=Tracking(...)`` records the Hessian's extreme eigenvalues along
the way (:mod:`hessref.train.tracking`).

Inputs are validated once (:func:`hessref.core.problem.make_problem`); each step calls
the engine's unchecked :func:`hessref.core.derivatives.problem_loss_and_gradient` at
``Problem._at_unchecked(θ_t)`` (one forward pass, the loss and δ_L from one evaluation at F,
one backprop; no validation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.derivatives import problem_loss_and_gradient
from hessref.core.mlp import MLP
from hessref.core.problem import Problem, make_problem
from hessref.core.validation import (
    check_nonnegative_float,
    check_positive_float,
    check_positive_int,
)
from hessref.train.optimizers import Optimizer, UpdateRule, get_optimizer
from hessref.train.tracking import SharpnessTrajectory, Tracker, Tracking

Array = NDArray[np.float64]

#: Loss growth factor over max(L(θ_0), 1) that counts as divergence.
EXPLOSION_FACTOR = 1e6

STOP_REASONS = ("steps", "stop_loss", "stop_grad_norm")


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite or exploding loss; the message names the step."""


@dataclass(frozen=True)
class GradientNoise:
    """Noise ξ_t added to every gradient estimate, with controllable sparsity.

    ξ_t has ``sparsity`` = s nonzero coordinates, chosen uniformly without replacement,
    each ±σ·√(P/s) with equal probability, so E ξ = 0 and E ξξᵀ = σ² I for every s:
    the sparsity changes the shape of the noise, not its covariance. s = P (None) is
    dense Rademacher noise, s = 1 the sparsest.

    Parameters
    ----------
    scale : float
        σ ≥ 0.
    sparsity : int, optional
        s, 1 ≤ s ≤ P; None means s = P.
    """

    scale: float
    sparsity: int | None = None

    def __post_init__(self) -> None:
        check_nonnegative_float("noise.scale", self.scale)
        if self.sparsity is not None:
            check_positive_int("noise.sparsity", self.sparsity)

    def sample(self, P: int, gen: np.random.Generator) -> Array:
        """One draw of ξ, shape (P,)."""
        s = P if self.sparsity is None else self.sparsity
        if s > P:
            raise ValueError(f"noise.sparsity: expected 1 <= sparsity <= P = {P}, got {s}")
        xi = np.zeros(P)
        idx = np.arange(P) if s == P else gen.choice(P, size=s, replace=False)
        signs = gen.integers(0, 2, size=s).astype(np.float64) * 2.0 - 1.0
        xi[idx] = self.scale * np.sqrt(P / s) * signs
        return xi


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
        The training arguments (loss, reduction, lr, steps, batch_size, optimizer, …).
    tracking : SharpnessTrajectory or None
        The curvature recorded with ``track=``.
    """

    theta: Array
    losses: Array
    grad_norms: Array
    recorded_steps: NDArray[np.int64]
    recorded_thetas: Array
    stopped_reason: str
    settings: dict = field(default_factory=dict)
    tracking: SharpnessTrajectory | None = None

    @property
    def num_steps(self) -> int:
        """T, the number of parameter updates performed."""
        return len(self.losses) - 1


def _minibatches(num_samples: int, batch_size: int, gen: np.random.Generator) -> Iterator:
    """Endless stream of index batches from successive random permutations."""
    buffer = np.empty(0, dtype=np.int64)
    while True:
        while buffer.size < batch_size:
            buffer = np.concatenate([buffer, gen.permutation(num_samples)])
        yield buffer[:batch_size]
        buffer = buffer[batch_size:]


def _check_optional_positive(name: str, value: float | None) -> float | None:
    return None if value is None else check_nonnegative_float(name, value)


def _check_batch_size(batch_size: int | None, N: int) -> int | None:
    if batch_size is None:
        return None
    batch_size = check_positive_int("batch_size", batch_size)
    if batch_size > N:
        raise ValueError(
            f"batch_size: expected 1 <= batch_size <= N = {N}, got {batch_size}; "
            "use batch_size=None for full-batch GD"
        )
    return None if batch_size == N else batch_size


def _diverged(t: int, value: float, first: float, lr: float) -> TrainingDivergedError:
    what = "non-finite" if not np.isfinite(value) else "exploding"
    return TrainingDivergedError(
        f"training diverged at step {t}: {what} full-batch loss {value!r} "
        f"(initial loss {first!r}) with lr = {lr}; "
        "use a smaller lr (GD on a quadratic diverges iff λ_max(H) > 2/lr)"
    )


@dataclass
class _Run:
    """Mutable state of one run (keeps :func:`train` short)."""

    problem: Problem
    lr: float
    rule: UpdateRule
    gen: np.random.Generator
    batches: Iterator | None
    batch_scale: float | None
    noise: GradientNoise | None
    losses: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)
    limit: float | None = None

    def evaluate(self, t: int, theta: Array) -> Array:
        """Full-batch L, ‖∇L‖ at θ_t (stored; divergence checked); returns ∇L."""
        value, grad = problem_loss_and_gradient(self.problem._at_unchecked(theta))
        gnorm = float(np.linalg.norm(grad))
        if self.limit is None:
            self.limit = EXPLOSION_FACTOR * max(value, 1.0) if np.isfinite(value) else 0.0
        if not (np.isfinite(value) and np.isfinite(gnorm)) or value > self.limit:
            raise _diverged(t, value, self.losses[0] if self.losses else value, self.lr)
        self.losses.append(value)
        self.grad_norms.append(gnorm)
        return grad

    def step(self, theta: Array, grad: Array) -> Array:
        """θ_{t+1} from θ_t and the full-batch gradient (replaced by a minibatch one for SGD)."""
        if self.batches is not None:
            idx = next(self.batches)
            p = self.problem
            batch = replace(p._at_unchecked(theta), X=p.X[idx], y=p.y[idx], scale=self.batch_scale)
            grad = problem_loss_and_gradient(batch)[1]
        if self.noise is not None:
            grad = grad + self.noise.sample(grad.shape[0], self.gen)
        return theta - self.lr * self.rule.direction(grad)


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
    optimizer: str | Optimizer = "gd",
    track: Tracking | None = None,
    noise: GradientNoise | None = None,
    rng: int | np.random.Generator | None = None,
    record_every: int | None = None,
    stop_loss: float | None = None,
    stop_grad_norm: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``model`` from ``theta0`` with a constant step (full batch or minibatches).

    Parameters
    ----------
    model : MLP
    theta0 : array_like, shape (P,)
        Starting point (not modified).
    X, y : array_like
        Training data, as for :func:`hessref.loss`.
    loss : {"mse", "cross_entropy"}
    lr : float
        Constant step η > 0 (finite).
    steps : int
        Maximum number of updates T ≥ 0.
    batch_size : int, optional
        Minibatch size B (1 ≤ B ≤ N); None or N means full-batch gradients.
    reduction : {"mean", "sum"}
        Objective L. For ``"sum"`` the minibatch gradient is rescaled by N/B so it is
        an unbiased estimate of ∇L.
    optimizer : {"gd", "sgd", "sign", "signsgd", "muon"} or Optimizer
        Update rule (:mod:`hessref.train.optimizers`); ``Optimizer("muon", momentum=0.9)``
        for momentum or a choice of Muon layers.
    track : Tracking, optional
        Record λ_max(H) (and optionally more) every ``track.every`` steps into
        ``result.tracking``.
    noise : GradientNoise, optional
        Noise added to every gradient estimate (drawn from ``rng``).
    rng : None, int or numpy.random.Generator
        Minibatches and noise (unused by noiseless full-batch training).
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
    run = _Run(
        problem,
        check_positive_float("lr", lr),
        UpdateRule(get_optimizer(optimizer), problem.model),
        np.random.default_rng(rng),
        None,
        None,
        _check_noise(noise),
    )
    steps = check_positive_int("steps", steps, minimum=0)
    batch_size = _check_batch_size(batch_size, problem.num_samples)
    if batch_size is not None:
        run.batches = _minibatches(problem.num_samples, batch_size, run.gen)
        # minibatch weight: mean over the batch (mean), or N/B times the batch sum (sum)
        run.batch_scale = problem.scale * problem.num_samples / batch_size
    if record_every is not None:
        record_every = check_positive_int("record_every", record_every)
    stops = (
        _check_optional_positive("stop_loss", stop_loss),
        _check_optional_positive("stop_grad_norm", stop_grad_norm),
    )
    tracker = _make_tracker(track, problem, loss, reduction)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        theta, reason, recorded = _loop(run, steps, stops, record_every, tracker, progress)
    settings = {
        "loss": loss,
        "reduction": reduction,
        "lr": run.lr,
        "steps": steps,
        "batch_size": batch_size,
        "optimizer": run.rule.optimizer.name,
        "momentum": run.rule.optimizer.momentum,
        "noise": None if noise is None else {"scale": noise.scale, "sparsity": noise.sparsity},
        "stop_loss": stops[0],
        "stop_grad_norm": stops[1],
    }
    return TrainResult(
        theta=theta,
        losses=np.array(run.losses),
        grad_norms=np.array(run.grad_norms),
        recorded_steps=np.array([t for t, _ in recorded], dtype=np.int64),
        recorded_thetas=np.array([th for _, th in recorded]),
        stopped_reason=reason,
        settings=settings,
        tracking=None if tracker is None else tracker.result(),
    )


def _check_noise(noise: Any) -> GradientNoise | None:
    if noise is not None and not isinstance(noise, GradientNoise):
        raise TypeError(
            f"noise: expected None or hessref.train.GradientNoise, got {type(noise).__name__}"
        )
    return noise


def _make_tracker(track: Any, problem: Problem, loss: str, reduction: str) -> Tracker | None:
    if track is None:
        return None
    if not isinstance(track, Tracking):
        raise TypeError(
            f"track: expected None or hessref.train.Tracking(every=..., ...), "
            f"got {type(track).__name__}"
        )
    args = {
        "model": problem.model,
        "X": problem.X,
        "y": problem.y,
        "loss": loss,
        "reduction": reduction,
    }
    return Tracker(track, args, problem.model.num_params)


def _loop(
    run: _Run,
    steps: int,
    stops: tuple,
    record_every: int | None,
    tracker: Tracker | None,
    progress: Callable | None,
) -> tuple[Array, str, list]:
    """The steps of :func:`train`; returns θ_T, the stop reason and the recorded (t, θ_t)."""
    theta = run.problem.theta.copy()
    recorded = [(0, theta.copy())]
    report_every = max(1, steps // 10)
    reason = "steps"
    for t in range(steps + 1):
        grad = run.evaluate(t, theta)
        value, gnorm = run.losses[-1], run.grad_norms[-1]
        if stops[0] is not None and value <= stops[0]:
            reason = "stop_loss"
        elif stops[1] is not None and gnorm <= stops[1]:
            reason = "stop_grad_norm"
        done = reason != "steps" or t == steps
        if tracker is not None and (tracker.due(t) or done):
            tracker.record(t, theta)
        if done:
            break
        theta = run.step(theta, grad)
        if record_every is not None and (t + 1) % record_every == 0:
            recorded.append((t + 1, theta.copy()))
        if progress is not None and (t + 1) % report_every == 0:
            progress(f"step {t + 1}/{steps}: loss {value:.3e}, |grad| {gnorm:.3e}")
    if recorded[-1][0] != len(run.losses) - 1:
        recorded.append((len(run.losses) - 1, theta.copy()))
    return theta, reason, recorded
