"""Training: GD/SGD, sign descent and Muon, with sharpness tracking along the way.

``train`` (the loop, :mod:`hessref.train.loop`), its update rules
(:mod:`hessref.train.optimizers`) and the Hessian tracking it can do every n steps
(:mod:`hessref.train.tracking`).

``hessref.train.interpolate_loss`` moved to :func:`hessref.landscape.interpolate_loss`
(next to the other loss slices); the old name still works with a DeprecationWarning.
"""

import warnings
from typing import Any

from hessref.train.loop import (
    EXPLOSION_FACTOR,
    STOP_REASONS,
    GradientNoise,
    TrainingDivergedError,
    TrainResult,
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
    "polar_factor",
    "train",
]


def __getattr__(name: str) -> Any:
    """Deprecated names: ``interpolate_loss`` lives in :mod:`hessref.landscape` now."""
    if name == "interpolate_loss":
        warnings.warn(
            "hessref.train.interpolate_loss moved to hessref.landscape.interpolate_loss; "
            "import it from there (the old name will be removed in a later release)",
            DeprecationWarning,
            stacklevel=2,
        )
        from hessref.landscape import interpolate_loss

        return interpolate_loss
    raise AttributeError(f"module 'hessref.train' has no attribute {name!r}")
