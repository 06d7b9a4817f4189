"""The ``hessref`` command line (also ``python -m hessref``).

Commands
--------
``hessref demo``
    The main job: train an MLP on a Gaussian mixture, compute the exact Hessian and its
    Gauss-Newton split H = G + R, their spectra and the outlier count with its margin
    and null baselines; print a short summary and write a report folder (PNG figures,
    ``summary.json`` with every number, setting and seed, ``report.md``).
``hessref reproduce NAME | --all``
    Run experiments of :mod:`hessref.experiments` over seeds (``--seeds 0-19``) and
    write the same kind of report (``--all``: ``results.md`` with the claims table).
``hessref oracle``
    Write a reference fixture (``.npz``) of exact derivatives for another tool's test
    suite, or a whole catalogue of them.

Layout: :mod:`~hessref.cli.parser` (argument parsing), :mod:`~hessref.cli.commands`
(the commands), :mod:`~hessref.cli.report` (all prose), :mod:`~hessref.cli.output`
(atomic report folders), :mod:`~hessref.cli.figures` (the demo's figures).

Errors in the arguments or inputs exit with status 2 and one line on stderr; an
existing output is never overwritten without ``--force``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hessref.cli.output import UsageError
from hessref.cli.parser import PROG, build_parser

# Errors that mean "bad input or environment", reported as one line with status 2.
USER_ERRORS = (ValueError, TypeError, OSError, MemoryError)

__all__ = ["UsageError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hessref`` command line; returns the exit status (0 ok, 2 usage/input error)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.error("missing COMMAND (one of demo, reproduce, oracle)")
    if extra:  # report on the subcommand, so the hint is 'hessref demo --help'
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
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
