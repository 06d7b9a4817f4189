"""Argument parsing of ``hessref``: the argparse tree, argument types, help texts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from hessref.core.activations import ACTIVATIONS

PROG = "hessref"
DEFAULT_REPORT = "hessref-report"
#: Settings profiles of ``demo`` and ``reproduce`` (``--fast`` is ``--profile fast``).
PROFILES = ("fast", "full")


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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


def seed_list(text: str) -> list[int]:
    """'0-19', '0,3,7' or '0-4,10' -> list of seeds (argparse type)."""
    from hessref.experiments.stats import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("seeds: ")) from None


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

MAIN_EPILOG = """\
examples:
  hessref demo                      # the main job: ~10-30 s, writes hessref-report/
  hessref demo --fast --out /tmp/r  # a few seconds, smaller sizes
  hessref reproduce --list
  hessref reproduce outliers-vs-classes --fast --seeds 0-4
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
H, G and R) and report.md (the result in words and tables, figures linked).
The outlier count is reported with its margin and the null baselines
(H at initialisation, H after training on shuffled labels); rates over
seeds: 'hessref reproduce demo --seeds 0-9'. An existing folder is only
replaced with --force (atomically: never a mix of old and new files).
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


def reproduce_epilog() -> str:
    """Help epilog of ``reproduce``: examples and the registered experiment names."""
    from hessref.experiments import EXPERIMENTS

    names = "\n".join(f"  {n:22s} {e.paper}" for n, e in EXPERIMENTS.items())
    return f"""\
experiments:
{names}

examples:
  hessref reproduce --list
  hessref reproduce outliers-vs-classes --fast
  hessref reproduce init-vs-trained --seeds 0-19 --workers 2 --out ivt
  hessref reproduce --all --out docs/results        # every experiment, results.md

Writes <NAME>.png, summary.json and report.md into --out (default:
hessref-<NAME>/); --all writes results.md, one <NAME>.json and <NAME>.png
per experiment (default: hessref-results/). Without --fast the full settings
run (minutes) over 10 seeds by default; --fast uses 3 seeds.
"""


def _common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="full",
        help="settings: 'fast' (small sizes, seconds; used by tests) or 'full' (default)",
    )
    p.add_argument(
        "--fast", dest="profile", action="store_const", const="fast", help="--profile fast"
    )
    if seed:
        p.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def _add_demo(sub, fmt) -> None:
    from hessref.cli.commands import cmd_demo

    demo = sub.add_parser(
        "demo",
        help="train an MLP, exact Hessian, G/R split, spectrum, outliers; write a report",
        description="The main job: train an MLP on a Gaussian mixture by full-batch GD,\n"
        "compute the exact Hessian H and its Gauss-Newton split H = G + R, their\n"
        "spectra and outlier counts, print a summary and write a report folder.",
        epilog=DEMO_EPILOG,
        formatter_class=fmt,
    )
    demo.add_argument("--out", default=DEFAULT_REPORT, help=f"report folder ({DEFAULT_REPORT})")
    _common(demo)
    demo.set_defaults(func=cmd_demo)


def _add_reproduce(sub, fmt) -> None:
    from hessref.cli.commands import cmd_reproduce

    rep = sub.add_parser(
        "reproduce",
        help="run paper experiments over seeds and write a report",
        description="Run an experiment of hessref.experiments (Sagun et al. 2016, 2017, and\n"
        "every other registered one) over seeds: verdict rules with rates and Wilson\n"
        "95% intervals, null baselines, key numbers; write a report folder.",
        epilog=reproduce_epilog(),
        formatter_class=fmt,
    )
    rep.add_argument("name", nargs="?", metavar="NAME", help="experiment name (see --list)")
    rep.add_argument("--list", action="store_true", help="list the experiments and exit")
    rep.add_argument("--all", action="store_true", help="run every experiment; write results.md")
    rep.add_argument("--out", help="report folder (default: hessref-NAME or hessref-results)")
    rep.add_argument("--seeds", type=seed_list, help="seeds, e.g. 0-19 or 0,3,7 (default: 0-9)")
    rep.add_argument("--seed", type=seed_int, help="a single seed (same as --seeds N)")
    rep.add_argument("--workers", type=positive_int, default=1, help="processes (default: 1)")
    _common(rep, seed=False)
    rep.set_defaults(func=cmd_reproduce)


def _add_oracle(sub, fmt) -> None:
    from hessref.cli.commands import cmd_oracle

    ora = sub.add_parser(
        "oracle",
        help="write exact reference fixtures (.npz) for other tools' tests",
        description="Write an exact float64 reference fixture for one MLP problem,\n"
        "or a catalogue of fixtures covering activations and losses.",
        epilog=ORACLE_EPILOG,
        formatter_class=fmt,
    )
    add = ora.add_argument
    add("--sizes", type=parse_sizes, default=[4, 8, 3], help="layer widths (default: 4,8,3)")
    add(
        "--activation",
        default="tanh",
        choices=ACTIVATIONS,
        metavar="NAME",
        help=f"hidden activation, one of {', '.join(ACTIVATIONS)} (default: tanh)",
    )
    add("--loss", default="mse", choices=["mse", "cross_entropy"], help="loss (default: mse)")
    add("--reduction", default="mean", choices=["mean", "sum"], help="reduction (default: mean)")
    add("--samples", type=positive_int, default=10, help="number of samples N (default: 10)")
    add("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    add("--out", help="fixture file to write (.npz)")
    add("--catalogue", metavar="DIR", help="write a catalogue of fixtures to DIR")
    add("--force", action="store_true", help="overwrite an existing output")
    add("--quiet", action="store_true", help="no progress messages on stderr")
    ora.set_defaults(func=cmd_oracle)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the ``hessref`` command (``parser.subcommands`` by name)."""
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
    _add_demo(sub, fmt)
    _add_reproduce(sub, fmt)
    _add_oracle(sub, fmt)
    parser.subcommands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser
