"""The commands of ``hessref``: each turns parsed arguments into work and output.

Prose lives in :mod:`hessref.cli.report`, argument parsing in :mod:`hessref.cli.parser`,
output folders in :mod:`hessref.cli.output`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hessref.cli import report
from hessref.cli.output import (
    UsageError,
    os_reason,
    prepare_output,
    write_report_folder,
)

PROG = "hessref"


def make_progress(quiet: bool) -> Callable[[str], None]:
    """A progress callback printing timestamped lines to stderr (or nothing if quiet)."""
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    return progress


def command_line(argv: list[str]) -> str:
    """The exact command, shell-quoted, for the "Reproduce" section of reports."""
    return " ".join(shlex.quote(a) for a in [PROG, *argv])


def cmd_demo(args: argparse.Namespace) -> int:
    """``hessref demo``: one seed of the ``demo`` experiment, with figures and a report."""
    from hessref.cli.figures import demo_figures
    from hessref.experiments import run_experiment

    out = Path(args.out)
    prepare_output(out, args.force)
    progress = make_progress(args.quiet)
    progress("exact Hessian, Gauss-Newton split and spectra at init and after training ...")
    result = run_experiment("demo", fast=args.fast, seeds=[args.seed], progress=progress)
    progress("drawing figures ...")
    figures = demo_figures(result.per_seed[0], result.settings)
    argv = ["demo", "--seed", str(args.seed), *(["--fast"] if args.fast else []), "--out", "DIR"]
    texts = {
        "summary.json": result.to_json(indent=1) + "\n",
        "report.md": report.demo_markdown(result, list(figures), command_line(argv)),
    }
    write_report_folder(out, texts, figures, args.force)
    progress(f"done in {result.timings['total']:.1f}s")
    print(report.demo_text(result, str(out)))
    return 0


def _seeds(args: argparse.Namespace) -> list[int] | None:
    if args.seeds is not None and args.seed is not None:
        raise UsageError("reproduce: give either --seeds or --seed, not both")
    return args.seeds if args.seeds is not None else (None if args.seed is None else [args.seed])


def _run(name: str, args: argparse.Namespace, progress: Callable[[str], None]):
    from hessref.experiments import run_experiment

    mode = "fast" if args.fast else "full"
    progress(f"experiment {name} ({mode} settings, {args.workers} worker(s)) ...")
    return run_experiment(
        name, fast=args.fast, seeds=args.seeds, progress=progress, workers=args.workers
    )


def _reproduce_argv(args: argparse.Namespace, name: str | None) -> list[str]:
    argv = ["reproduce", name] if name else ["reproduce", "--all"]
    if args.seeds is not None:
        argv += ["--seeds", ",".join(map(str, args.seeds))]
    return argv + (["--fast"] if args.fast else []) + ["--out", "DIR"]


class _DeclaredFigure:
    """An experiment's own ``figure(result, path)``, saved like a matplotlib Figure."""

    def __init__(self, draw: Callable, result) -> None:
        self.draw, self.result = draw, result

    def savefig(self, path, **_: object) -> None:
        """Draw the figure into ``path`` (format and dpi are the experiment's)."""
        self.draw(self.result, Path(path))


def _result_files(result) -> tuple[dict, dict]:
    """The figure (the experiment's own if it declares one) and the strict JSON of a result."""
    from hessref import plot
    from hessref.experiments import get_experiment

    draw = get_experiment(result.name).figure
    fig = _DeclaredFigure(draw, result) if draw is not None else plot.plot_experiment(result)
    return {result.name: fig}, {f"{result.name}.json": result.to_json()}


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``hessref reproduce NAME`` / ``--all`` / ``--list``."""
    from hessref.experiments import EXPERIMENTS

    args.seeds = _seeds(args)
    if args.list:
        for name, exp in EXPERIMENTS.items():
            print(f"{name:22s} {exp.paper}: {exp.claim}")
        return 0
    if args.all:
        if args.name is not None:
            raise UsageError("reproduce: give either an experiment NAME or --all, not both")
        return _reproduce_all(args)
    if args.name is None:
        raise UsageError("reproduce: give an experiment NAME, --all or --list")
    if args.name not in EXPERIMENTS:
        raise UsageError(
            f"reproduce: unknown experiment {args.name!r}; choose one of {', '.join(EXPERIMENTS)}"
        )
    out = Path(args.out or f"hessref-{args.name}")
    prepare_output(out, args.force)
    progress = make_progress(args.quiet)
    result = _run(args.name, args, progress)
    figures, _ = _result_files(result)
    command = command_line(_reproduce_argv(args, args.name))
    texts = {
        "summary.json": result.to_json(),
        "report.md": report.experiment_markdown(result, list(figures), command),
    }
    write_report_folder(out, texts, figures, args.force)
    progress(f"done in {result.timings['total']:.1f}s")
    print(report.experiment_text(result, str(out)))
    return 0


def _reproduce_all(args: argparse.Namespace) -> int:
    """Every registered experiment; one folder with results.md, figures and JSON."""
    from hessref.experiments import EXPERIMENTS

    out = Path(args.out or "hessref-results")
    prepare_output(out, args.force)
    progress = make_progress(args.quiet)
    t0 = time.perf_counter()
    results, figures, texts = [], {}, {}
    for name in sorted(EXPERIMENTS, key=lambda n: (EXPERIMENTS[n].paper, n)):
        res = _run(name, args, progress)
        fig, txt = _result_files(res)
        results.append(res)
        figures.update(fig)
        texts.update(txt)
    total = time.perf_counter() - t0
    command = command_line(_reproduce_argv(args, None))
    texts["results.md"] = report.results_markdown(results, list(figures), command, total)
    write_report_folder(out, texts, figures, args.force)
    print(report.results_text(results, str(out), total))
    return 0


def cmd_oracle(args: argparse.Namespace) -> int:
    """``hessref oracle --out FILE.npz`` / ``hessref oracle --catalogue DIR``."""
    from hessref import oracle

    if args.catalogue is not None:
        if args.out is not None:
            raise UsageError("oracle: give either --out FILE.npz or --catalogue DIR, not both")
        out = Path(args.catalogue)
        prepare_output(out, args.force)
        make_progress(args.quiet)(f"writing the fixture catalogue to {out}/ ...")
        try:
            paths = oracle.write_catalogue(out, overwrite=args.force)
        except OSError as exc:
            raise UsageError(f"cannot write the catalogue '{out}': {os_reason(exc)}") from None
        print(f"wrote {len(paths)} fixtures to {out}/ (read them with hessref.oracle.load_fixture)")
        return 0
    if args.out is None:
        raise UsageError("oracle: give --out FILE.npz (one fixture) or --catalogue DIR")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"oracle: --out must be a file name ending in .npz, got '{out}'")
    prepare_output(out, args.force, kind="file")
    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
        path = oracle.write_random_fixture(
            out, sizes=args.sizes, activation=args.activation, loss=args.loss,
            num_samples=args.samples, rng=args.seed, reduction=args.reduction,
            overwrite=args.force,
        )  # fmt: skip
    except OSError as exc:
        raise UsageError(f"cannot write the output file '{out}': {os_reason(exc)}") from None
    print(
        f"wrote {path}: MLP {'-'.join(map(str, args.sizes))} {args.activation}, {args.loss} "
        f"({args.reduction}), N = {args.samples}, seed {args.seed} "
        "(read it with numpy.load or hessref.oracle.load_fixture)"
    )
    return 0
