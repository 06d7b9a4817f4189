"""The tutorials: every jupytext source is paired with an in-sync, output-free notebook,
starts with a cell that installs hessref where it is missing, and runs end to end as a
script (fast mode, Agg backend), saving every figure it draws; every exercise has a worked
solution in tutorials/solutions/ that runs too.

Each tutorial checks its own key numbers with asserts against exact matrices, so a
successful run is a real test of both the prose's claims and the library.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
SOLUTIONS = TUTORIALS / "solutions"


def run_script(path, tmp_path, **env_extra):
    """Run ``path`` as a script from an empty folder in fast mode; return (cwd, process)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = dict(os.environ, HESSREF_FAST="1", MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return cwd, proc


def exercises(source) -> list[int]:
    """The numbers of the exercises listed under '## Exercises' in a tutorial."""
    text = source.read_text(encoding="utf-8").split("## Exercises", 1)[1]
    return [int(n) for n in re.findall(r"^# (\d+)\. ", text, flags=re.M)]


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
    first_kind, first = py_cells[0]
    assert (
        first_kind == "code" and 'find_spec("hessref")' in first and '"pip", "install"' in first
    ), (
        f"{source.name}: the first cell must install hessref when it is missing "
        "(copy the first cell of 01_backprop_by_hand.py)"
    )
    kinds = {kind for kind, _ in py_cells}
    assert {"markdown", "code"} <= kinds
    text = source.read_text(encoding="utf-8")
    # each tutorial explains (markdown + math), draws, checks its numbers and ends with exercises
    assert "$" in text and "plt.show()" in text and "assert " in text
    assert "## Exercises" in text and 'os.environ.get("HESSREF_FAST")' in text


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_tutorial_runs_and_saves_every_figure(source, tmp_path):
    # run from an empty folder, so a tutorial that writes files cannot touch the repository
    figures = tmp_path / "figures"
    cwd, _ = run_script(source, tmp_path, HESSREF_FIGURES=str(figures))
    assert list(cwd.iterdir()) == [], "a tutorial wrote files outside HESSREF_FIGURES"
    names = re.findall(r'^\s*show\(fig, "(\w+)"\)', source.read_text(encoding="utf-8"), re.M)
    assert names, "draw figures with show(fig, name) (defined after FAST, as in 01), not plt.show()"
    expected = {f"{source.name[:2]}_{name}.png" for name in names}
    saved = {p.name for p in figures.iterdir()}
    assert saved == expected
    for png in figures.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_exercise_has_a_worked_solution(source):
    numbers = exercises(source)
    assert numbers == list(range(1, len(numbers) + 1)) and numbers, source.name
    solution = SOLUTIONS / source.name
    assert solution.exists(), (
        f"missing tutorials/solutions/{source.name}: one '# ## Exercise N' section per exercise, "
        "each printing 'Exercise N' (see tutorials/solutions/01_backprop_by_hand.py)"
    )
    text = solution.read_text(encoding="utf-8")
    found = [int(n) for n in re.findall(r"^# ## Exercise (\d+)\b", text, flags=re.M)]
    assert found == numbers, f"{solution.name}: solutions for {found}, exercises {numbers}"


SOLUTION_SOURCES = sorted(SOLUTIONS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("solution", SOLUTION_SOURCES, ids=lambda p: p.stem)
def test_solution_runs(solution, tmp_path):
    cwd, proc = run_script(solution, tmp_path, HESSREF_FIGURES=str(tmp_path / "figures"))
    assert list(cwd.iterdir()) == [], "a solution wrote files outside HESSREF_FIGURES"
    assert "Exercise 1" in proc.stdout
