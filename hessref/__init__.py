"""hessref: exact, verified Hessians of small MLPs and their Gauss-Newton split.

Pure NumPy/SciPy reference implementation (float64 throughout). See README.md for
the conventions (parameter layout, losses, PyTorch equivalents) and
the docs/theory.md section cited in each module docstring.

>>> import hessref as hr
>>> model = hr.MLP([4, 8, 3], activation="tanh")
>>> model.num_params
67
"""

from importlib import metadata as _metadata

from hessref.core.activations import ACTIVATIONS, get_activation
from hessref.core.dense import hessian, layer_block
from hessref.core.derivatives import gradient, hvp, jacobian, loss, outputs
from hessref.core.ggn import gauss_newton
from hessref.core.losses import LOSSES, get_loss
from hessref.core.mlp import MLP
from hessref.operators import CurvatureOperator, ggn_operator, hessian_operator, residual_operator

try:  # the version lives in setup.cfg only
    __version__ = _metadata.version("hessref")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "unknown"

__all__ = [
    "ACTIVATIONS",
    "CurvatureOperator",
    "LOSSES",
    "MLP",
    "gauss_newton",
    "get_activation",
    "get_loss",
    "ggn_operator",
    "gradient",
    "hessian",
    "hessian_operator",
    "hvp",
    "jacobian",
    "layer_block",
    "loss",
    "outputs",
    "residual_operator",
]
