"""Training: GD/SGD, sign descent and Muon, with sharpness tracking along the way.

``train`` (the loop, :mod:`hessref.train.loop`), its update rules
(:mod:`hessref.train.optimizers`) and the Hessian tracking it can do every n steps
(:mod:`hessref.train.tracking`).
"""

from hessref.train.loop import (
    EXPLOSION_FACTOR,
    STOP_REASONS,
    GradientNoise,
    TrainingDivergedError,
    TrainResult,
    interpolate_loss,
    train,
)
from hessref.train.optimizers import OPTIMIZERS, Optimizer, polar_factor
from hessref.train.tracking import SharpnessTrajectory, Tracking

__all__ = [
    "EXPLOSION_FACTOR",
    "OPTIMIZERS",
    "STOP_REASONS",
    "GradientNoise",
    "Optimizer",
    "SharpnessTrajectory",
    "TrainResult",
    "Tracking",
    "TrainingDivergedError",
    "interpolate_loss",
    "polar_factor",
    "train",
]
