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

Exit status: 0 on success; 2 for an error in the arguments (one line on stderr naming
the argument, with a pointer to the command's ``--help``; an existing output is never
overwritten without ``--force``); 1 when the work itself fails: the machine refused
(an OS error, out of memory: one plain line), or an internal failure of hessref, which
is reported as such (never as a usage error) with the exception, so it can be filed as
a bug; 130 when interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hessref.cli.output import UsageError
from hessref.cli.parser import PROG, build_parser

# Failures of the machine rather than of hessref or of the arguments: one line, status 1.
ENVIRONMENT_ERRORS = (OSError, MemoryError)

__all__ = ["UsageError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hessref`` command line; returns the exit status.

    0 ok; 2 an error in the arguments (:class:`UsageError`, raised only where the
    command checks what the user typed); 1 the work failed (environment, or an internal
    error, reported as such); 130 interrupted.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.error("missing COMMAND (one of demo, reproduce, oracle)")
    if extra:  # report on the subcommand, so the hint is 'hessref demo --help'
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except UsageError as exc:
        hint = f"see '{PROG} {args.command} --help'"
        print(f"{PROG}: error: {_one_line(exc)} ({hint})", file=sys.stderr)
        return 2
    except ENVIRONMENT_ERRORS as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - anything else is our failure, said plainly
        print(
            f"{PROG}: internal error in '{PROG} {args.command}' (a failure of hessref, not of "
            f"your arguments; please report it): {type(exc).__name__}: {_one_line(exc)}",
            file=sys.stderr,
        )
    return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
