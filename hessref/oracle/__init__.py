"""hessref as a reference oracle: exact bundles, fixture files, conventions, comparisons.

One concept per module (all public names are importable from ``hessref.oracle``):

- :mod:`hessref.oracle.bundles`: :func:`reference_bundle` computes every exact quantity
  another tool may want to test (loss, gradient, H, G, R, empirical Fisher, per-sample
  gradients, Jacobian, spectra, traces, smoothed densities) in float64 and hessref's
  layout; :func:`in_convention` re-expresses it in another tool's layout and scaling.
- :mod:`hessref.oracle.conventions`: other tools' parameter layouts and loss scalings,
  and the exact maps to and from hessref's (:mod:`hessref.oracle.state_dict` for
  PyTorch ``nn.Sequential`` state dicts).
- :mod:`hessref.oracle.compare`: :func:`~hessref.oracle.compare.compare` says how far
  another tool's numbers are from the reference, and why (scale, layout, precision).
- :mod:`hessref.oracle.fixtures`: :func:`write_fixture` / :func:`load_fixture`,
  self-describing ``.npz`` files a PyTorch or JAX project can test against without
  installing hessref (byte-reproducible).
- :mod:`hessref.oracle.catalogue`: :func:`fixture_catalogue`, a small deterministic set
  of cases (activations × losses × depths, both reductions, ragged batch sizes, nets on
  ReLU kinks and on softplus inputs above 20), and :func:`write_catalogue`.
- :mod:`hessref.oracle.traps`: other tools' activation conventions (JAX's leaky-ReLU slope
  at 0, the tanh GELU, PyTorch's softplus threshold), named when a comparison fails.
- :mod:`hessref.oracle.approximations`: ``assert_approximation_close`` for K-FAC, EK-FAC
  and the Fisher variants against :mod:`hessref.approx`, naming the usual K-FAC mistakes.

:mod:`hessref.testing` builds on these for other projects' test suites.
"""

from hessref.oracle.bundles import (
    ParameterInfo,
    ReferenceBundle,
    in_convention,
    layer_map,
    reference_bundle,
)
from hessref.oracle.catalogue import (
    FixtureCase,
    fixture_catalogue,
    random_problem,
    write_catalogue,
    write_random_fixture,
)
from hessref.oracle.conventions import (
    CONVENTIONS,
    Convention,
    get_convention,
    loss_factor,
    per_sample_factor,
    permutation,
    tensor_names,
    to_convention,
    to_state_dict,
)
from hessref.oracle.fixtures import (
    FIXTURE_FORMAT,
    FIXTURE_FORMAT_VERSION,
    load_fixture,
    write_fixture,
)

__all__ = [
    "CONVENTIONS",
    "FIXTURE_FORMAT",
    "FIXTURE_FORMAT_VERSION",
    "Convention",
    "FixtureCase",
    "ParameterInfo",
    "ReferenceBundle",
    "fixture_catalogue",
    "get_convention",
    "in_convention",
    "layer_map",
    "load_fixture",
    "loss_factor",
    "per_sample_factor",
    "permutation",
    "random_problem",
    "reference_bundle",
    "tensor_names",
    "to_convention",
    "to_state_dict",
    "write_catalogue",
    "write_fixture",
    "write_random_fixture",
]
