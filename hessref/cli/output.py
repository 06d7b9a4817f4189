"""Output paths of the command line: checks before work, atomic report folders.

A report folder is written into a temporary sibling and then swapped into place, so a
reader sees either the old folder or the complete new one, never a mix, and with
``--force`` no file of the old folder survives. Errors name the user's path, never an
internal temporary name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """A problem with the command-line arguments or outputs, reported as one line (status 2)."""


def os_reason(exc: OSError) -> str:
    """The OS reason of ``exc`` without the file name it carries (may be a temp name)."""
    return exc.strerror or type(exc).__name__


def prepare_output(path: Path, force: bool, kind: str = "folder") -> None:
    """Check an output path before any work is done.

    Refuses an existing output unless ``force`` (a folder must not be a file and vice
    versa), and a location that cannot be created or written (probed by creating and
    removing a temporary file in the nearest existing parent).
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
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    try:  # a real probe: os.access says yes to root even on read-only file systems
        if not parent.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write the output {kind} '{path}': {os_reason(exc)}") from None


def _fill(folder: Path, texts: Mapping[str, str], figures: Mapping[str, Any]) -> None:
    for name, fig in figures.items():  # matplotlib Figure: no pyplot, no GUI backend
        fig.savefig(folder / f"{name}.png", format="png", dpi=100)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")


def write_report_folder(
    out: Path, texts: Mapping[str, str], figures: Mapping[str, Any], force: bool
) -> None:
    """Atomically create (or, with ``force``, replace) the folder ``out``.

    Writes ``<name>.png`` per figure and each ``texts[name]`` into a temporary sibling
    folder, then renames it to ``out`` (after moving an existing ``out`` aside, removed
    once the swap succeeded). On any failure the old folder is left as it was.
    """
    prepare_output(out, force)  # again: the folder may have appeared while we computed
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=parent))
    except OSError as exc:
        raise UsageError(f"cannot write the output folder '{out}': {os_reason(exc)}") from None
    old = None
    try:
        _fill(tmp, texts, figures)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.replace(out, old / "x")
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None and (old / "x").exists() and not out.exists():
            os.replace(old / "x", out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"cannot write the output folder '{out}': {os_reason(exc)}") from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
