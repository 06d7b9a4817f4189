"""hessref's conformance suite: peer curvature tools checked against hessref's exact answers.

Runs in its own environment (``.ci/conformance.sh`` builds ``.venv-peers`` with torch CPU,
jax[cpu], curvlinops, BackPACK and PyHessian); hessref itself never imports these tools.
``python -m pytest conformance --conformance-json results.json`` records every comparison,
``python -m conformance.report results.json`` turns them into ``docs/conformance.md``.
"""

# tool label in the report → its distribution name (for the version)
TOOLS = {
    "torch.func": "torch",
    "jax": "jax",
    "curvlinops": "curvlinops-for-pytorch",
    "backpack": "backpack-for-pytorch",
    "pyhessian": "pyhessian",
}
