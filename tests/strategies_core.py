"""hypothesis strategies for random curvature problems (architecture, activation, loss, data)."""

import numpy as np
from hypothesis import strategies as st

import hessref as hr


@st.composite
def problems(draw, max_depth=4, max_width=8, max_samples=30, activations=None, losses=None):
    """Draw (model, theta, X, y, loss, reduction) with depth 1–4, widths 1–8, N 1–30."""
    depth = draw(st.integers(1, max_depth))
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1))
    activation = draw(st.sampled_from(activations or sorted(hr.ACTIVATIONS)))
    loss = draw(st.sampled_from(losses or ["mse", "cross_entropy"]))
    reduction = draw(st.sampled_from(["mean", "sum"]))
    N = draw(st.integers(1, max_samples))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    model = hr.MLP(sizes, activation=activation)
    theta = model.init(rng) * draw(st.sampled_from([1.0, 2.5]))
    X = rng.normal(size=(N, sizes[0]))
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], N)
    else:
        y = rng.normal(size=(N, sizes[-1]))
    return model, theta, X, y, loss, reduction
