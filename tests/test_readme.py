"""Everything in README.md is executed: its Python blocks run, its commands match CI."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_blocks_run_in_order(capsys):
    namespace: dict = {}
    code = blocks("python")
    assert len(code) >= 3
    for block in code:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
    assert "lambda_max(H)" in capsys.readouterr().out


def test_test_command_is_the_one_ci_runs():
    commands = [b.strip() for b in blocks("bash")]
    assert len(commands) == 2, "the README starts with exactly two commands"
    main_job, tests = commands
    assert main_job.endswith("hessref demo") and "pip install ." in main_job
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"TEST_COMMAND='{tests}'" in ci
    assert 'bash -c "$TEST_COMMAND"' in ci


def test_readme_lists_every_tutorial():
    for source in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        assert f"tutorials/{source.name}" in README, source.name


@pytest.mark.parametrize(
    "name", ["hessian_operator", "top_eigenpairs", "count_outliers", "compare"]
)
def test_documented_names_exist(name):
    import hessref.compare
    import hessref.operators
    import hessref.spectrum

    modules = (hessref.operators, hessref.spectrum, hessref.compare)
    assert any(hasattr(m, name) for m in modules)
