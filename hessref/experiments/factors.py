"""What moves the spectrum: data vs architecture, and the number of samples.

Registered experiments (Sagun et al. 2017, arXiv:1706.04454, §3: "the bulk depends on the
architecture, the outliers on the data"), both on the mixture of
:data:`hessref.experiments.common.MIXTURE`, every cell trained by full-batch GD to the
SAME loss target (so the loss level is not a confounder; cells that miss it are
counted and reported):

- ``data-vs-architecture``: a crossed 2 × 2 × 2 design, number of classes C × class
  separation × hidden width. For each factor, its main effect on λ_max (geometric mean
  over the other cells of the ratio high level / low level), on the near-zero share
  (mean difference, cutoff stated) and on the bulk width λ_{C+1} − λ_min.
- ``sample-size``: the same model on N samples, N over a factor ≥ 10.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from hessref.experiments.baselines import count_labels, count_rule
from hessref.experiments.common import MIXTURE_FAST, MIXTURE_FULL, fit_and_count, mixture_text
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Compare, Monotone, Verdict


def _cell(s: dict, sd: dict, progress: Progress, C: int, sep: float, width: int) -> dict:
    cs = dict(s, separation=sep, hidden=[width] * len(s["hidden"]))
    out = fit_and_count(cs, sd["data"], sd["init"], progress, classes=C)
    ev = np.asarray(out.pop("top_eigenvalues"))
    out["bulk_edge"] = float(ev[C]) if ev.size > C else float("nan")
    out["bulk_width"] = out["bulk_edge"] - out["lambda_min"]
    for pre in ("", "init_"):
        hit = out[f"{pre}count"] == C and out[f"{pre}margin"] >= s["min_margin"]
        out[f"{pre}count_is_C"] = bool(hit)
    return out


def _effect(cells: dict, axis: int, key: str, log: bool) -> float:
    """Main effect of factor ``axis``: mean over the other factors of (high − low)."""
    diffs = []
    for k, v in cells.items():
        if k[axis] == 1:
            lo = cells[k[:axis] + (0,) + k[axis + 1 :]][key]
            diffs.append(np.log(v[key] / lo) if log else v[key] - lo)
    m = float(np.mean(diffs))
    return float(np.exp(m)) if log else m


def _measure_dva(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init")
    levels = (s["class_levels"], s["separation_levels"], s["width_levels"])
    cells = {}
    for idx in itertools.product(range(2), repeat=3):
        C, sep, w = (lv[i] for lv, i in zip(levels, idx, strict=True))
        cells[idx] = _cell(s, sd, progress, C, sep, w)
    out: dict[str, Any] = {
        "cells_at_target": sum(c["reached_target"] for c in cells.values()),
        "cells_count_is_C": sum(c["count_is_C"] for c in cells.values()),
        "cells_init_count_is_C": sum(c["init_count_is_C"] for c in cells.values()),
        "cells": {"-".join(map(str, k)): v for k, v in cells.items()},
    }
    for axis, name in enumerate(("classes", "separation", "width")):
        out[f"{name}_lambda_max_ratio"] = _effect(cells, axis, "lambda_max", log=True)
        out[f"{name}_bulk_width_ratio"] = _effect(cells, axis, "bulk_width", log=True)
        out[f"{name}_near_zero_diff"] = _effect(cells, axis, "fraction_near_zero", log=False)
    width = abs(np.log(out["width_lambda_max_ratio"]))
    for f in ("classes", "separation"):  # one data effect against the width effect, each
        out[f"{f}_over_width_lambda_max"] = float(abs(np.log(out[f"{f}_lambda_max_ratio"])) / width)
    return out


_S17 = "Sagun et al. 2017 (arXiv:1706.04454), §3"


def _rules_dva(s: dict) -> list[Verdict]:
    k = s["effect_margin"]
    like = (
        f"each factor doubled (C {s['class_levels']}, separation {s['separation_levels']}, "
        f"width {s['width_levels']}): the |log λ_max| effect of the data factor is ≥ {k:g}× "
        "that of width"
    )
    return [
        Verdict(
            "every cell at the loss target",
            Compare("cells_at_target", "==", 8),
            "design check: every cell is compared at the same training loss",
            _S17,
            role="identity",
        ),
        Verdict(
            "count = C in every cell",
            Compare("cells_count_is_C", "==", 8),
            "the number of outliers equals the number of classes in every cell",
            _S17,
        ),
        Verdict(
            "null: init H count = C in some cell",
            Compare("cells_init_count_is_C", ">", 0),
            "null, expected to fail: H at initialisation (inputs clustered, so class signal is "
            "present through the data); controls for a count of C that needs no training",
            _S17,
            role="null",
        ),
        Verdict(
            "λ_max moves more with separation than with width",
            Compare("separation_over_width_lambda_max", ">=", k),
            f"the outliers depend on the data (class separation), not the width; {like}",
            _S17,
        ),
        Verdict(
            "λ_max moves more with the number of classes than with width",
            Compare("classes_over_width_lambda_max", ">=", k),
            f"the outliers depend on the data (number of classes), not the width; {like}",
            _S17,
        ),
        Verdict(
            "near-zero share grows with width",
            Compare("width_near_zero_diff", ">", 0.0),
            "the bulk (near-zero mass) depends on the architecture",
            _S17,
        ),
    ]


_DVA = {
    "class_levels": [2, 4],
    "separation_levels": [3.0, 6.0],
    "min_margin": 1.25,
    "effect_margin": 2.0,
}

register(
    Experiment(
        name="data-vs-architecture",
        paper="Sagun et al. 2017 (arXiv:1706.04454), §3",
        claim="the outliers depend on the data, the bulk on the architecture",
        fast={**MIXTURE_FAST, **_DVA, "width_levels": [8, 16], "target_loss": 1e-2},
        full={
            **MIXTURE_FULL,
            **_DVA,
            "width_levels": [15, 30],
            "target_loss": 1e-2,
            "max_steps": 5000,
        },
        measure=_measure_dva,
        rules=_rules_dva,
        quantities={
            **{
                f"{f}_lambda_max_ratio": f"λ_max(high {f}) / λ_max(low {f}), geometric mean"
                for f in ("classes", "separation", "width")
            },
            **{
                f"{f}_near_zero_diff": f"near-zero share(high {f}) − (low {f}), mean"
                for f in ("classes", "separation", "width")
            },
            **{
                f"{f}_bulk_width_ratio": f"bulk width (λ_(C+1) − λ_min) ratio, high/low {f}"
                for f in ("classes", "separation", "width")
            },
            **{
                f"{f}_over_width_lambda_max": f"|log λ_max effect| of {f} / that of width"
                for f in ("classes", "separation")
            },
            "cells_at_target": "cells that reached the loss target (of 8)",
            "cells_count_is_C": "cells whose count = C with margin (of 8)",
            "cells_init_count_is_C": "cells whose H at init has count = C with margin (of 8)",
        },
        setting_text=lambda s: (
            mixture_text(s).split(";", 1)[1].strip()
            + f"; crossed design C in {s['class_levels']} × separation in "
            f"{s['separation_levels']} × width in {s['width_levels']}; near-zero cutoff "
            f"{s['near_zero']}·max|λ|"
        ),
    )
)


# -------------------------------------------------------------------------- sample size
def _measure_n(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init", "shuffle")
    ends = (s["sample_sizes"][0], s["sample_sizes"][-1])
    rows = [
        fit_and_count(
            s,
            sd["data"],
            sd["init"],
            progress,
            samples=n,
            shuffle_seed=sd["shuffle"] if n in ends else None,
        )
        for n in s["sample_sizes"]
    ]
    keys = (
        "lambda_max",
        "count",
        "margin",
        "fraction_near_zero",
        "fraction_negative",
        "final_loss",
        "reached_target",
    )
    out: dict[str, Any] = {k: [r[k] for r in rows] for k in keys}
    for size, r in (("smallest", rows[0]), ("largest", rows[-1])):
        for pre in ("", "init_", "shuffled_", "unstructured_"):
            out[f"{size}_{pre}count"] = r[f"{pre}count"]
            out[f"{size}_{pre}margin"] = r[f"{pre}margin"]
        for pre in ("shuffled_", "unstructured_"):
            out[f"{size}_{pre}final_loss"] = r[f"{pre}final_loss"]
            out[f"{size}_{pre}reached"] = r[f"{pre}reached"]
    lam = out["lambda_max"]
    out["lambda_max_spread"] = float(max(lam) / min(lam))
    return out


_NULLS = (
    ("init_", "H at init", "no training; the inputs are clustered, so class signal is present"),
    (
        "shuffled_",
        "H on shuffled labels",
        "labels carry no class signal; trained to the real "
        "run's loss when the budget allows (loss reached: shuffled_final_loss)",
    ),
    (
        "unstructured_",
        "H on unclustered inputs with random labels",
        "neither inputs nor labels carry class structure",
    ),
)


_SN = "Sagun et al. 2017 (arXiv:1706.04454), §3 (rank G ≤ N(K − 1))"


def _rules_n(s: dict) -> list[Verdict]:
    C, m = s["classes"], s["min_margin"]
    rules = []
    for size in ("smallest", "largest"):
        rules.append(
            Verdict(
                f"count = C at the {size} N",
                count_rule(f"{size}_", C, m),
                f"the trained H has C outliers at the {size} sample size",
                _SN,
            )
        )
        rules += [
            Verdict(
                f"null at the {size} N: {what} count = C",
                count_rule(f"{size}_{pre}", C, m),
                f"null, expected to fail: {what} ({why})",
                _SN,
                role="null",
            )
            for pre, what, why in _NULLS
        ]
    return rules + [
        Verdict(
            "near-zero share falls with N",
            Monotone("fraction_near_zero", increasing=False, along="N"),
            "rank G ≤ N(K − 1): fewer samples, more flat directions",
            _SN,
        ),
        Verdict(
            "λ_max stable across N",
            Compare("lambda_max_spread", "<=", s["max_lambda_spread"]),
            "the outliers (λ_max) stay in place as the number of samples grows",
            _SN,
        ),
    ]


def _labels_n() -> dict[str, str]:
    out = {}
    for size in ("smallest", "largest"):
        out.update(count_labels(f"{size}_", f"the trained H at the {size} N"))
        for pre, what, _ in _NULLS:
            out.update(count_labels(f"{size}_{pre}", f"{what} at the {size} N"))
    return {
        **out,
        "lambda_max_spread": "max/min of λ_max over N",
        "fraction_near_zero": "the near-zero share for each N",
    }


register(
    Experiment(
        name="sample-size",
        paper="Sagun et al. 2017 (arXiv:1706.04454), §3 (rank G ≤ N(K − 1))",
        claim="more samples fill in flat directions; the outlier group stays",
        fast={**MIXTURE_FAST, "sample_sizes": [50, 150, 500], "max_lambda_spread": 2.0},
        full={**MIXTURE_FULL, "sample_sizes": [150, 300, 600, 1500], "max_lambda_spread": 2.0},
        measure=_measure_n,
        rules=_rules_n,
        quantities=_labels_n(),
        setting_text=lambda s: mixture_text(s) + f"; N in {s['sample_sizes']}",
    )
)
