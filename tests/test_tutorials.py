"""The tutorials: every jupytext source is paired with an in-sync, output-free notebook,
and every tutorial runs end to end as a script (fast mode, Agg backend).

Each tutorial checks its own key numbers with asserts against exact matrices, so a
successful run is a real test of both the prose's claims and the library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def cells(notebook) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_tutorials_exist():
    numbers = [p.name[:2] for p in SOURCES]
    assert numbers == [f"{i:02d}" for i in range(1, len(SOURCES) + 1)], numbers
    assert len(SOURCES) >= 7


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_paired_in_sync_and_has_no_outputs(source):
    jupytext = pytest.importorskip("jupytext")  # in the [test] extra
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"run: jupytext --to ipynb {source.name}"
    py_cells = cells(jupytext.read(source))
    nb = jupytext.read(ipynb)
    assert cells(nb) == py_cells, f"{ipynb.name} is out of sync: jupytext --to ipynb {source.name}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, ipynb.name
    kinds = {kind for kind, _ in py_cells}
    assert {"markdown", "code"} <= kinds
    text = source.read_text(encoding="utf-8")
    # each tutorial explains (markdown + math), draws, checks its numbers and ends with exercises
    assert "$" in text and "plt.show()" in text and "assert " in text
    assert "## Exercises" in text and 'os.environ.get("HESSREF_FAST")' in text


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_tutorial_runs(source, tmp_path):
    # run from an empty folder, so a tutorial that writes files cannot touch the repository
    env = dict(os.environ, HESSREF_FAST="1", MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(source)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert list(tmp_path.iterdir()) == [], "a tutorial wrote files"
