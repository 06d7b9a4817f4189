"""Cross-check hessref against PyTorch's torch.func and print the relative errors.

Run in an environment with torch (e.g. the .venv-peers that .ci/conformance.sh builds)::

    python benchmarks/crosscheck_torch.py

For every activation shared with PyTorch, both losses (nn.MSELoss with the documented
2/d_L or 2 factor, nn.CrossEntropyLoss) and both reductions, it prints the max-norm
relative error max|theirs - ref| / max|ref| of the loss, gradient, Hessian, GGN,
GGN-vector product, per-sample gradients and empirical Fisher (the same comparison as
tests/test_torch_crosscheck.py, which asserts <= 1e-10).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_torch_crosscheck import ACTIVATIONS, SIZES, crosscheck  # noqa: E402


def main() -> None:
    names = None
    worst = 0.0
    print(f"MLP {list(SIZES)}, float64; max-norm relative error of hessref vs torch.func")
    for loss in ("mse", "cross_entropy"):
        for reduction in ("mean", "sum"):
            for act in ACTIVATIONS:
                reports = crosscheck(act, loss, reduction)
                if names is None:
                    names = list(reports)
                    print(
                        f"{'activation':<11}{'loss':<14}{'red.':<6}"
                        + "".join(f"{n[:10]:>11}" for n in names)
                    )
                errs = [reports[n].max_rel_error for n in names]
                worst = max(worst, *errs)
                ok = all(r.passed for r in reports.values())
                print(
                    f"{act:<11}{loss:<14}{reduction:<6}"
                    + "".join(f"{e:>11.1e}" for e in errs)
                    + ("" if ok else "  FAIL")
                )
    print(f"worst relative error: {worst:.2e}")


if __name__ == "__main__":
    main()
