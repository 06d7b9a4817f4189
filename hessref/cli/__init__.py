"""The ``hessref`` command line (also ``python -m hessref``).

Commands
--------
``hessref demo``
    The main job: train an MLP on a Gaussian mixture, compute the exact Hessian
    and its Gauss-Newton split H = G + R, their spectra and the outlier count,
    print a short summary and write a report folder (PNG figures,
    ``summary.json`` with every number, setting and seed, ``report.md``).
``hessref reproduce NAME``
    Run one of the paper experiments of :mod:`hessref.experiments` and write
    the same kind of report.
``hessref oracle``
    Write a reference fixture (``.npz``) of exact derivatives for another tool's
    test suite, or a whole catalogue of them.

Errors in the arguments or inputs exit with status 2 and one line on stderr;
an existing output is never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

PROG = "hessref"
DEFAULT_REPORT = "hessref-report"

# Errors that mean "bad input or environment", reported as one line with status 2.
USER_ERRORS = (ValueError, TypeError, OSError, MemoryError)


class UsageError(Exception):
    """A problem with the command-line arguments, reported as one line (status 2)."""


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- progress


def make_progress(quiet: bool) -> Callable[[str], None]:
    """A progress callback printing timestamped lines to stderr (or nothing if quiet)."""
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    return progress


# --------------------------------------------------------------------------- output


def prepare_output(path: Path, force: bool, kind: str = "folder") -> None:
    """Check an output path before any work is done.

    Refuses an existing output unless ``force`` (a folder must not be a file and vice
    versa), and a location that cannot be created or written.
    """
    if path.exists() or path.is_symlink():
        if not force:
            raise UsageError(
                f"output {kind} '{path}' already exists; choose another with --out "
                "or pass --force to overwrite it"
            )
        if kind == "folder" and not path.is_dir():
            raise UsageError(f"output folder '{path}' exists and is not a folder")
        if kind == "file" and path.is_dir():
            raise UsageError(f"output file '{path}' is a folder, expected a file name")
    parent = path.absolute().parent if kind == "file" or not path.exists() else path
    while not parent.exists():
        parent = parent.parent
    try:  # a real probe: os.access says yes to root even on read-only file systems
        if not parent.is_dir():
            raise NotADirectoryError(f"'{parent}' is not a folder")
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write the output {kind} '{path}': {exc}") from None


def to_jsonable(value: Any) -> Any:
    """Recursively convert NumPy scalars/arrays (and tuples) into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib Figure as PNG (no pyplot, so no GUI backend is touched)."""
    fig.savefig(path, format="png", dpi=100)


# --------------------------------------------------------------------------- demo

DEMO_SETTINGS = {
    "full": {
        "classes": 3,
        "input_dim": 20,
        "samples": 600,
        "separation": 3.0,
        "spread": 1.0,
        "means": "normal",
        "standardize": True,
        "hidden": [30, 30],
        "activation": "relu",
        "loss": "cross_entropy",
        "learning_rate": 0.5,
        "max_steps": 2000,
        "target_loss": 1e-3,
        "top": 60,
        "outlier_rule": "log_gap",
    },
    "fast": {
        "classes": 3,
        "input_dim": 8,
        "samples": 150,
        "separation": 3.0,
        "spread": 1.0,
        "means": "normal",
        "standardize": True,
        "hidden": [12, 12],
        "activation": "relu",
        "loss": "cross_entropy",
        "learning_rate": 0.5,
        "max_steps": 1000,
        "target_loss": 1e-3,
        "top": 40,
        "outlier_rule": "log_gap",
    },
}


def count_outliers(eigenvalues: np.ndarray, s: dict) -> dict:
    """Outlier count of a spectrum with :func:`hessref.spectrum.count_outliers` (rule, top in s)."""
    from hessref.spectrum import count_outliers as count

    oc = count(eigenvalues, rule=s["outlier_rule"], top=s["top"])
    return {"count": int(oc.count), "rule": oc.rule, "threshold": oc.threshold, **oc.details}


def spectrum_summary(eig: np.ndarray, s: dict) -> dict:
    """Key numbers of a descending spectrum: extremes, inertia, rank, outliers, top values."""
    lam_max = float(eig[0])
    tol = 1e-10 * max(abs(eig[0]), abs(eig[-1]))
    return {
        "lambda_max": lam_max,
        "lambda_min": float(eig[-1]),
        "num_positive": int((eig > tol).sum()),
        "num_zero": int((np.abs(eig) <= tol).sum()),
        "num_negative": int((eig < -tol).sum()),
        "trace": float(eig.sum()),
        "outliers": count_outliers(eig, s),
        "top": eig[: s["top"]].tolist(),
    }


def environment() -> dict[str, str]:
    """Versions that the numbers may depend on (rounding differs across BLAS builds)."""
    import platform

    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def run_demo(fast: bool, seed: int, progress: Callable[[str], None]) -> dict:
    """Compute everything the demo reports; returns a JSON-able dict (spectra included)."""
    import hessref as hr
    from hessref.data import gaussian_mixture
    from hessref.spectrum import eigenvalues
    from hessref.train import train

    s = dict(DEMO_SETTINGS["fast" if fast else "full"])
    data_rng, init_rng = (np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(2))
    sizes = [s["input_dim"], *s["hidden"], s["classes"]]
    X, y = gaussian_mixture(
        s["samples"],
        s["classes"],
        s["input_dim"],
        separation=s["separation"],
        spread=s["spread"],
        means=s["means"],
        standardize=s["standardize"],
        rng=data_rng,
    )
    model = hr.MLP(sizes, activation=s["activation"])
    theta0 = model.init(init_rng)
    P = model.num_params
    progress(f"data: {s['classes']}-class Gaussian mixture, N={len(y)}, d={s['input_dim']}")
    progress(f"model: MLP {'-'.join(map(str, sizes))} ({s['activation']}), P={P}")

    timings = {}
    t = time.perf_counter()
    progress(f"exact Hessian at initialisation (P×P = {P}×{P}) ...")
    H0 = hr.hessian(model, theta0, X, y, loss=s["loss"])
    G0, _ = hr.gauss_newton(model, theta0, X, y, loss=s["loss"])
    eig_H0, eig_G0 = eigenvalues(H0), eigenvalues(G0)
    timings["init_curvature"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(
        f"training: full-batch GD, step {s['learning_rate']}, until loss <= {s['target_loss']}"
    )
    run = train(
        model,
        theta0,
        X,
        y,
        loss=s["loss"],
        lr=s["learning_rate"],
        steps=s["max_steps"],
        stop_loss=s["target_loss"],
        progress=lambda msg: progress(f"  {msg}"),
    )
    theta, losses = run.theta, run.losses
    timings["training"] = time.perf_counter() - t
    F = hr.outputs(model, theta, X)
    accuracy = float((F.argmax(axis=1) == y).mean())
    progress(f"trained: {len(losses) - 1} steps, loss {losses[-1]:.3e}, accuracy {accuracy:.1%}")

    t = time.perf_counter()
    progress("exact Hessian H and Gauss-Newton split G, R at the trained point ...")
    H = hr.hessian(model, theta, X, y, loss=s["loss"])
    G, R = hr.gauss_newton(model, theta, X, y, loss=s["loss"])
    progress("eigenvalues of H, G and R ...")
    eig_H, eig_G, eig_R = eigenvalues(H), eigenvalues(G), eigenvalues(R)
    timings["trained_curvature"] = time.perf_counter() - t

    k = sizes[-1]
    rank_bound = min(P, len(y) * (k - 1))
    return {
        "command": "demo",
        "hessref_version": hr.__version__,
        "mode": "fast" if fast else "full",
        "environment": environment(),
        "seeds": {
            "seed": seed,
            "derivation": "np.random.SeedSequence(seed).spawn(2) -> (data rng, init rng)",
        },
        "settings": {
            **s,
            "sizes": sizes,
            "num_params": P,
            "reduction": "mean",
            "init": "MLP.init: PyTorch nn.Linear default U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
            "optimizer": "full-batch gradient descent, constant step (hessref.train.train)",
        },
        "training": {
            "steps": len(losses) - 1,
            "initial_loss": losses[0],
            "final_loss": losses[-1],
            "reached_target": bool(losses[-1] <= s["target_loss"]),
            "train_accuracy": accuracy,
            "stopped_reason": run.stopped_reason,
            "gradient_norm": run.grad_norms[-1],
            "loss_curve": losses,
        },
        "init": {"H": spectrum_summary(eig_H0, s), "G": spectrum_summary(eig_G0, s)},
        "trained": {
            "H": spectrum_summary(eig_H, s),
            "G": spectrum_summary(eig_G, s),
            "R": spectrum_summary(eig_R, s),
        },
        "checks": {
            "split_rel_error": float(np.linalg.norm(H - (G + R)) / np.linalg.norm(H)),
            "G_min_eigenvalue": float(eig_G[-1]),
            "rank_G": int((eig_G > 1e-10 * eig_G[0]).sum()),
            "rank_G_bound": rank_bound,
            "R_over_G_norm": float(np.abs(eig_R).max() / eig_G[0]),
            "weyl_lambda_min_H_ge_lambda_min_R": bool(eig_H[-1] >= eig_R[-1] - 1e-12 * eig_H[0]),
        },
        "eigenvalues": {
            "H_init": eig_H0,
            "G_init": eig_G0,
            "H": eig_H,
            "G": eig_G,
            "R": eig_R,
        },
        "timings_seconds": timings,
    }


def demo_figures(result: dict) -> dict[str, Any]:
    """Figures of the demo (drawn by :mod:`hessref.plot`, which computes nothing)."""
    from matplotlib.figure import Figure

    from hessref import plot

    ev = {k: np.asarray(v) for k, v in result["eigenvalues"].items()}
    s = result["settings"]
    trained = result["trained"]
    figs = {}

    fig = Figure(figsize=(15, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    plot.plot_ordered(
        ev["H"],
        count=trained["H"]["outliers"]["count"],
        top=s["top"],
        title=f"Trained H: top {s['top']} eigenvalues ({s['classes']} classes)",
        ax=ax1,
    )
    plot.plot_histogram(ev["H"], title="Trained H: all eigenvalues", ax=ax2)
    plot.plot_histogram(ev["H_init"], title="H at initialisation: all eigenvalues", ax=ax3)
    figs["spectrum"] = fig

    figs["split"] = plot.plot_split(
        ev["H"], ev["G"], ev["R"], title="Gauss-Newton split H = G + R at the trained point"
    )
    figs["outliers"] = plot.plot_ordered(
        ev["G"],
        count=trained["G"]["outliers"]["count"],
        top=s["top"],
        title=f"Trained G: top {s['top']} eigenvalues",
    )
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.semilogy(result["training"]["loss_curve"])
    ax.axhline(s["target_loss"], color="0.4", ls=":", lw=1, label="target")
    ax.set(xlabel="GD step", ylabel="training loss (log scale)", title="Full-batch GD")
    ax.legend(fontsize="small")
    figs["training"] = fig
    return figs


def demo_text(result: dict, out: Path) -> str:
    """The short human-readable summary printed on stdout."""
    s, tr, ck = result["settings"], result["training"], result["checks"]
    H, G, R = (result["trained"][k] for k in "HGR")
    H0, G0 = result["init"]["H"], result["init"]["G"]
    P = s["num_params"]
    top5 = ", ".join(f"{v:.3g}" for v in H["top"][: H["outliers"]["count"] + 2])
    return "\n".join(
        [
            f"hessref demo ({result['mode']} mode, seed {result['seeds']['seed']})",
            f"  data   : {s['classes']}-class Gaussian mixture, N = {s['samples']}, "
            f"d = {s['input_dim']}",
            f"  model  : MLP {'-'.join(map(str, s['sizes']))} {s['activation']}, "
            f"{s['loss']}, P = {P}",
            f"  trained: {tr['steps']} full-batch GD steps (step {s['learning_rate']}), "
            f"loss {tr['initial_loss']:.3g} -> {tr['final_loss']:.3g}, "
            f"train accuracy {tr['train_accuracy']:.1%}",
            f"  H      : lambda_max = {H['lambda_max']:.4g}, lambda_min = {H['lambda_min']:.3g}, "
            f"{H['num_negative'] / P:.1%} negative",
            f"  top eigenvalues of H: {top5}, ...",
            f"  outliers (largest log-gap in the top {s['top']}): H {H['outliers']['count']}, "
            f"G {G['outliers']['count']}   (classes C = {s['classes']})",
            f"  at init: H {H0['outliers']['count']} (winning ratio "
            f"{H0['outliers']['score']:.2f}; trained {H['outliers']['score']:.2f}), "
            f"G {G0['outliers']['count']} (K = {s['sizes'][-1]} outputs), "
            f"{H0['num_negative'] / P:.1%} of H negative",
            f"  split  : ||H - (G + R)||/||H|| = {ck['split_rel_error']:.1e}, "
            f"lambda_min(G) = {ck['G_min_eigenvalue']:.1e}, "
            f"rank G = {ck['rank_G']} <= {ck['rank_G_bound']}, "
            f"||R||/||G|| = {ck['R_over_G_norm']:.3g}, R has {R['num_negative']} negative",
            f"  report : {out}/report.md (summary.json, figures)",
        ]
    )


def demo_markdown(result: dict, figures: Sequence[str]) -> str:
    """report.md: the result in words, with the figures linked."""
    s, tr, ck = result["settings"], result["training"], result["checks"]
    H, G, R = (result["trained"][k] for k in "HGR")
    H0, G0 = result["init"]["H"], result["init"]["G"]
    P, C = s["num_params"], s["classes"]
    nH = H["outliers"]["count"]
    K = s["sizes"][-1]
    weak_init = H0["outliers"]["score"] < 1.5
    verdict = (
        f"equals the number of classes C = {C}"
        if nH == C
        else f"differs from the number of classes C = {C}; docs/theory.md §14 explains why "
        "this count is an empirical, rule-dependent observation and not a theorem"
    )
    lines = [
        "# hessref demo report",
        "",
        f"Mode `{result['mode']}`, seed {result['seeds']['seed']} "
        f"({result['seeds']['derivation']}), hessref {result['hessref_version']}. "
        "Every number below, with all settings and the full spectra, is in "
        "[`summary.json`](summary.json).",
        "",
        "## Setting",
        "",
        f"A balanced {C}-class Gaussian mixture in {s['input_dim']} dimensions "
        f"(N = {s['samples']}, class means drawn from N(0, {s['separation']}² I), "
        f"within-class std {s['spread']}, inputs globally standardised) is fitted by an MLP "
        f"{'-'.join(map(str, s['sizes']))} with {s['activation']} activations "
        f"(P = {P} parameters) under mean softmax cross-entropy, by full-batch gradient "
        f"descent with constant step {s['learning_rate']} until the loss is at most "
        f"{s['target_loss']} (at most {s['max_steps']} steps).",
        "",
        "## Result",
        "",
        f"- Training took {tr['steps']} steps: loss {tr['initial_loss']:.3g} → "
        f"{tr['final_loss']:.3g}, training accuracy {tr['train_accuracy']:.1%}, "
        f"‖∇L‖ = {tr['gradient_norm']:.2e}.",
        f"- The exact Hessian at the trained point has λ_max = {H['lambda_max']:.4g} and "
        f"λ_min = {H['lambda_min']:.3g}; {H['num_negative']} of its {P} eigenvalues are "
        f"negative and {H['num_zero']} are zero to 1e-10·|λ|_max.",
        f"- **Bulk and outliers.** Counting outliers by the largest ratio λ_i/λ_(i+1) among "
        f"the top {s['top']} eigenvalues gives {nH} for H and {G['outliers']['count']} for "
        f"G; this {verdict}. Top eigenvalues of H: "
        + ", ".join(f"{v:.3g}" for v in H["top"][: nH + 3])
        + ", …",
        f"- **At initialisation** the same rule returns {H0['outliers']['count']} for H with a "
        f"winning ratio of {H0['outliers']['score']:.2f} (after training: "
        f"{H['outliers']['score']:.2f})"
        + (": a ratio this close to 1 means no clean outlier group" if weak_init else "")
        + f"; {H0['num_negative']} eigenvalues ({H0['num_negative'] / P:.0%}) are negative. "
        f"G at initialisation has {G0['outliers']['count']} outlier(s)"
        + (
            f", about the number of outputs (K − 1 = {K - 1} for cross-entropy), not of "
            "classes: before training, outliers reflect the network's outputs, not the data."
            if G0["outliers"]["count"] in (K - 1, K)
            else "."
        ),
        f"- **Gauss-Newton split H = G + R.** ‖H − (G + R)‖_F/‖H‖_F = "
        f"{ck['split_rel_error']:.1e}; G is positive semi-definite "
        f"(λ_min(G) = {ck['G_min_eigenvalue']:.1e}) with rank {ck['rank_G']} ≤ "
        f"min(P, N(K − 1)) = {ck['rank_G_bound']}; all negative curvature comes from R "
        f"(λ_min(R) = {R['lambda_min']:.3g} ≤ λ_min(H)); ‖R‖₂/‖G‖₂ = "
        f"{ck['R_over_G_norm']:.3g}.",
        "",
        "## Figures",
        "",
    ]
    captions = {
        "spectrum": "Left: the top eigenvalues of the trained H, outliers highlighted. "
        "Middle and right: histograms (log counts) of all eigenvalues of H after training "
        "and at initialisation.",
        "split": "Histograms of the spectra of H, G and R: G is PSD, the negative "
        "eigenvalues of H come from R.",
        "outliers": "The top eigenvalues of the trained G with its outlier count.",
        "training": "Training loss of full-batch gradient descent.",
    }
    for name in figures:
        lines += [f"![{name}]({name}.png)", "", captions.get(name, name), ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        f"hessref demo --seed {result['seeds']['seed']}"
        + (" --fast" if result["mode"] == "fast" else "")
        + " --out DIR",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_report(
    out: Path, figures: dict[str, Any], summary_json: str, markdown: str, force: bool
) -> None:
    """Create the report folder: ``<name>.png`` per figure, summary.json, report.md."""
    prepare_output(out, force)  # again: the folder may have appeared while we computed
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        save_figure(fig, out / f"{name}.png")
    (out / "summary.json").write_text(summary_json + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown, encoding="utf-8")


def cmd_demo(args: argparse.Namespace) -> int:
    """``hessref demo``."""
    out = Path(args.out)
    prepare_output(out, args.force)
    progress = make_progress(args.quiet)
    t0 = time.perf_counter()
    result = run_demo(args.fast, args.seed, progress)
    progress("drawing figures ...")
    figures = demo_figures(result)
    result["timings_seconds"]["total"] = time.perf_counter() - t0
    summary = json.dumps(to_jsonable(result), indent=1)
    write_report(out, figures, summary, demo_markdown(result, list(figures)), args.force)
    progress(f"done in {time.perf_counter() - t0:.1f}s")
    print(demo_text(result, out))
    return 0


# --------------------------------------------------------------------------- reproduce


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``hessref reproduce NAME`` / ``hessref reproduce --list``."""
    from hessref import experiments

    names = list(experiments.EXPERIMENTS)
    if args.list:
        for name in names:
            doc = (experiments.EXPERIMENTS[name].__doc__ or "").strip().splitlines()
            print(f"{name:22s} {doc[0] if doc else ''}")
        return 0
    if args.name is None:
        raise UsageError("reproduce: give an experiment NAME or --list")
    if args.name not in experiments.EXPERIMENTS:
        raise UsageError(
            f"reproduce: unknown experiment {args.name!r}; choose one of {', '.join(names)}"
        )
    out = Path(args.out or f"hessref-{args.name}")
    prepare_output(out, args.force)
    progress = make_progress(args.quiet)
    t0 = time.perf_counter()
    progress(f"experiment {args.name} ({'fast' if args.fast else 'full'} settings) ...")
    result = experiments.EXPERIMENTS[args.name](fast=args.fast, rng=args.seed, progress=progress)
    progress("drawing figure ...")
    from hessref import plot

    figures = {args.name: plot.plot_experiment(result)}
    text = result.summary()
    markdown = "\n".join(
        [
            f"# hessref reproduce {args.name}",
            "",
            f"{'Fast' if args.fast else 'Full'} settings, seed {args.seed}; every number, "
            "setting and seed is in [`summary.json`](summary.json).",
            "",
            text,
            "",
            f"![{args.name}]({args.name}.png)",
            "",
            "## Reproduce",
            "",
            "```",
            f"hessref reproduce {args.name} --seed {args.seed}"
            + (" --fast" if args.fast else "")
            + " --out DIR",
            "```",
            "",
        ]
    )
    write_report(out, figures, result.to_json(), markdown, args.force)
    progress(f"done in {time.perf_counter() - t0:.1f}s")
    print(text)
    print(f"report: {out}/report.md")
    return 0


# --------------------------------------------------------------------------- oracle


def parse_sizes(text: str) -> list[int]:
    """'4,8,3' -> [4, 8, 3] (argparse type)."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 4,8,3, got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive layer widths like 4,8,3, got {text!r}"
        )
    return sizes


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type parsing an integer ≥ ``minimum``, described as ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
seed_int = _int_at_least(0, "a non-negative integer")


def cmd_oracle(args: argparse.Namespace) -> int:
    """``hessref oracle --out FILE.npz`` / ``hessref oracle --catalogue DIR``."""
    from hessref import oracle

    if args.catalogue is not None:
        if args.out is not None:
            raise UsageError("oracle: give either --out FILE.npz or --catalogue DIR, not both")
        out = Path(args.catalogue)
        prepare_output(out, args.force)
        progress = make_progress(args.quiet)
        progress(f"writing the fixture catalogue to {out}/ ...")
        paths = oracle.write_catalogue(out, overwrite=args.force)
        print(f"wrote {len(paths)} fixtures to {out}/ (read them with hessref.oracle.load_fixture)")
        return 0
    if args.out is None:
        raise UsageError("oracle: give --out FILE.npz (one fixture) or --catalogue DIR")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"oracle: --out must be a file name ending in .npz, got '{out}'")
    prepare_output(out, args.force, kind="file")
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    path = oracle.write_random_fixture(
        out,
        sizes=args.sizes,
        activation=args.activation,
        loss=args.loss,
        num_samples=args.samples,
        rng=args.seed,
        reduction=args.reduction,
        overwrite=args.force,
    )
    print(
        f"wrote {path}: MLP {'-'.join(map(str, args.sizes))} {args.activation}, {args.loss} "
        f"({args.reduction}), N = {args.samples}, seed {args.seed} "
        "(read it with numpy.load or hessref.oracle.load_fixture)"
    )
    return 0


# --------------------------------------------------------------------------- parser

MAIN_EPILOG = """\
examples:
  hessref demo                      # the main job: ~10-30 s, writes hessref-report/
  hessref demo --fast --out /tmp/r  # a few seconds, smaller sizes
  hessref reproduce --list
  hessref reproduce outliers-vs-classes --fast
  hessref oracle --sizes 4,8,3 --activation tanh --loss cross_entropy --out ref.npz

Run 'hessref COMMAND --help' for the options of each command.
"""

DEMO_EPILOG = """\
examples:
  hessref demo                         # full settings (under a minute on 2 cores)
  hessref demo --fast --out /tmp/demo  # small sizes, a few seconds
  hessref demo --seed 3 --out run3 --force

The report folder holds spectrum.png, split.png, outliers.png, training.png,
summary.json (every number, setting and seed, plus the full spectra of
H, G and R) and report.md (the result in words, figures linked).
An existing folder is only overwritten with --force.
"""

REPRODUCE_EPILOG = """\
examples:
  hessref reproduce --list
  hessref reproduce outliers-vs-classes --fast
  hessref reproduce bulk-vs-width --seed 1 --out width-report

Writes <NAME>.png, summary.json and report.md into --out
(default: hessref-<NAME>/). Without --fast the paper-size settings run (minutes).
"""

ORACLE_EPILOG = """\
examples:
  hessref oracle --sizes 4,8,3 --activation tanh --loss cross_entropy \\
                 --samples 10 --seed 0 --out ref.npz
  hessref oracle --catalogue fixtures/

A fixture is a self-describing .npz (numpy.load(path, allow_pickle=False)
reads it without hessref): the model spec, theta, X, y, a PyTorch state dict,
layout permutations, and the exact loss, gradient, Jacobian, H, G, R,
eigenvalues and traces in float64 (see hessref.oracle.write_fixture).
The catalogue covers every activation x loss x depth, both reductions and
ragged batch sizes.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the ``hessref`` command."""
    from hessref import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = OneLineParser(
        prog=PROG,
        description="Exact, verified Hessians of small MLPs and their Gauss-Newton split.",
        epilog=MAIN_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"hessref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--fast", action="store_true", help="small sizes (seconds; used by tests)")
        p.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
        p.add_argument("--force", action="store_true", help="overwrite an existing output")
        p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")

    demo = sub.add_parser(
        "demo",
        help="train an MLP, exact Hessian, G/R split, spectrum, outliers; write a report",
        description="The main job: train an MLP on a Gaussian mixture by full-batch GD,\n"
        "compute the exact Hessian H and its Gauss-Newton split H = G + R, their\n"
        "spectra and outlier counts, print a summary and write a report folder.",
        epilog=DEMO_EPILOG,
        formatter_class=fmt,
    )
    demo.add_argument(
        "--out", default=DEFAULT_REPORT, help=f"report folder (default: {DEFAULT_REPORT})"
    )
    common(demo)
    demo.set_defaults(func=cmd_demo)

    rep = sub.add_parser(
        "reproduce",
        help="run one of the paper experiments and write a report",
        description="Run one of the paper experiments of hessref.experiments (Sagun et al.\n"
        "2016/2017, Papyan) and write a report folder.",
        epilog=REPRODUCE_EPILOG,
        formatter_class=fmt,
    )
    rep.add_argument("name", nargs="?", metavar="NAME", help="experiment name (see --list)")
    rep.add_argument("--list", action="store_true", help="list the experiments and exit")
    rep.add_argument("--out", help="report folder (default: hessref-NAME)")
    common(rep)
    rep.set_defaults(func=cmd_reproduce)

    ora = sub.add_parser(
        "oracle",
        help="write exact reference fixtures (.npz) for other tools' tests",
        description="Write an exact float64 reference fixture for one MLP problem,\n"
        "or a catalogue of fixtures covering activations and losses.",
        epilog=ORACLE_EPILOG,
        formatter_class=fmt,
    )
    ora.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[4, 8, 3],
        help="layer widths d_0,...,d_L (default: 4,8,3)",
    )
    ora.add_argument("--activation", default="tanh", help="hidden activation (default: tanh)")
    ora.add_argument(
        "--loss", default="mse", choices=["mse", "cross_entropy"], help="loss (default: mse)"
    )
    ora.add_argument(
        "--reduction",
        default="mean",
        choices=["mean", "sum"],
        help="loss reduction (default: mean)",
    )
    ora.add_argument(
        "--samples", type=positive_int, default=10, help="number of samples N (default: 10)"
    )
    ora.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    ora.add_argument("--out", help="fixture file to write (.npz)")
    ora.add_argument("--catalogue", metavar="DIR", help="write a catalogue of fixtures to DIR")
    ora.add_argument("--force", action="store_true", help="overwrite an existing output")
    ora.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    ora.set_defaults(func=cmd_oracle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hessref`` command line; returns the exit status (0 ok, 2 usage/input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("missing COMMAND (one of demo, reproduce, oracle)")
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    except USER_ERRORS as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 2
