"""The ``hessref`` command line, driven as a user would: ``python -m hessref ...`` subprocesses.

Checks exit codes, the stdout summary, the report folder (valid PNGs, summary.json
with seeds and settings, report.md linking the figures), refusal to overwrite
without ``--force``, and one-line errors with status 2 (never a traceback).
The numbers in summary.json are checked against each other and against what they
claim (e.g. the outlier count against the eigenvalues it was computed from).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hessref.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEMO_FIGURES = ("spectrum", "split", "outliers", "training")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "hessref", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hessref") and "error:" in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "report"
    proc = run("demo", "--fast", "--seed", "0", "--out", str(out))
    return out, proc


def load_summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_demo_succeeds_and_prints_summary(demo):
    out, proc = demo
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in ("hessref demo", "outliers", "lambda_max", "P = ", "report"):
        assert needle in proc.stdout
    assert len(proc.stdout.splitlines()) <= 15  # short
    # progress went to stderr, with timestamps
    assert "exact Hessian" in proc.stderr and "[" in proc.stderr


def test_demo_report_folder(demo):
    out, _ = demo
    for name in DEMO_FIGURES:
        data = (out / f"{name}.png").read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        assert len(data) > 5000, name  # a drawn figure, not an empty canvas
    report = (out / "report.md").read_text()
    assert report.startswith("# hessref demo report")
    for name in DEMO_FIGURES:
        assert f"({name}.png)" in report
    assert "summary.json" in report


def test_demo_summary_json_has_settings_seeds_and_consistent_numbers(demo):
    out, _ = demo
    s = load_summary(out)
    assert s["seeds"]["seed"] == 0
    settings = s["settings"]
    for key in ("classes", "samples", "sizes", "activation", "loss", "learning_rate", "top"):
        assert key in settings
    sizes = settings["sizes"]
    P = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes[:-1], sizes[1:]))
    assert settings["num_params"] == P
    ev = {k: np.asarray(v) for k, v in s["eigenvalues"].items()}
    assert all(v.shape == (P,) for v in ev.values())
    assert all(np.all(np.diff(v) <= 0) for v in ev.values())  # descending
    H, G, R = (s["trained"][k] for k in "HGR")
    assert H["lambda_max"] == ev["H"][0] and H["lambda_min"] == ev["H"][-1]
    assert np.isclose(H["trace"], G["trace"] + R["trace"], rtol=1e-8, atol=1e-12)
    # the exact split: tiny error; G PSD; rank bound for cross-entropy min(P, N(K-1))
    assert s["checks"]["split_rel_error"] < 1e-10
    assert ev["G"][-1] >= -1e-10 * ev["G"][0]
    assert s["checks"]["rank_G"] <= min(P, settings["samples"] * (sizes[-1] - 1))
    # negative curvature only from R (docs/theory.md (5.6)): λ_min(H) >= λ_min(R)
    assert ev["H"][-1] >= ev["R"][-1] - 1e-12
    # outlier count = argmax of λ_i/λ_{i+1} over the positive top eigenvalues, recomputed here
    top = ev["H"][: settings["top"]]
    top = top[top > 0]
    assert H["outliers"]["count"] == int(np.argmax(top[:-1] / top[1:])) + 1
    # training reached its target with the recorded loss curve
    tr = s["training"]
    assert tr["final_loss"] <= settings["target_loss"]
    assert tr["loss_curve"][-1] == tr["final_loss"] and len(tr["loss_curve"]) == tr["steps"] + 1


def test_existing_folder_is_refused_then_force_overwrites_identically(demo, capsys):
    out, _ = demo
    before = (out / "summary.json").read_bytes()
    proc = run("demo", "--fast", "--out", str(out))
    line = assert_one_line_error(proc)
    assert "already exists" in line and "--force" in line
    assert (out / "summary.json").read_bytes() == before  # untouched

    # in-process (the subprocess path is covered above): saves an interpreter start-up
    assert main(["demo", "--fast", "--seed", "0", "--out", str(out), "--force", "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # --quiet
    after = json.loads((out / "summary.json").read_text())
    old = json.loads(before)
    old.pop("timings_seconds"), after.pop("timings_seconds")
    assert after == old  # same seed, bit-identical numbers


# A few bad invocations as real subprocesses; the pure argument-parsing cases in-process.
@pytest.mark.parametrize(
    "args",
    [[], ["demo", "--seed", "-1"], ["oracle", "--out", "x.txt"], ["demo", "--out", "/dev/null/r"]],
    ids=lambda a: " ".join(a) or "no-command",
)
def test_bad_arguments_exit_2_with_one_line(args, tmp_path):
    proc = run(*args, cwd=tmp_path)
    assert_one_line_error(proc)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["demo", "--no-such-option"],
        ["demo", "--seed", "abc"],
        ["demo", "--fast", "extra"],
        ["reproduce", "--seed", "1.5"],
        ["oracle", "--sizes", "4,x,3", "--out", "x.npz"],
        ["oracle", "--sizes", "4", "--out", "x.npz"],
        ["oracle", "--samples", "0", "--out", "x.npz"],
        ["oracle", "--loss", "hinge", "--out", "x.npz"],
        ["oracle", "--activation", "swish", "--out", "x.npz"],
        ["oracle"],
        ["reproduce"],
    ],
    ids=" ".join,
)
def test_bad_arguments_in_process(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(args)
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "error:" in err, err
    assert list(tmp_path.iterdir()) == []


def test_main_help_as_subprocess():
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: hessref" in proc.stdout and "examples:" in proc.stdout


@pytest.mark.parametrize("command", ["demo", "reproduce", "oracle"])
def test_command_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: hessref {command}")
    assert f"hessref {command}" in text.split("examples:")[1]


def test_oracle_fixture_matches_an_independent_hessian(tmp_path):
    from reference import hessian, rel_err

    out = tmp_path / "ref.npz"
    args = ["oracle", "--sizes", "3,5,2", "--activation", "tanh", "--loss", "cross_entropy"]
    proc = run(*args, "--samples", "6", "--seed", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    with np.load(out, allow_pickle=False) as f:
        theta, X, y, H = f["theta"], f["X"], f["y"], f["H"]
    H_ref = hessian([3, 5, 2], "tanh", theta, X, y, loss="cross_entropy")
    assert rel_err(H, H_ref) < 1e-10


def test_reproduce_list_names_every_experiment(capsys):
    from hessref.experiments import EXPERIMENTS

    assert main(["reproduce", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == list(EXPERIMENTS)


def test_reproduce_unknown_experiment_is_a_one_line_error(capsys):
    assert main(["reproduce", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "hessian-split" in err


def test_reproduce_writes_a_report(tmp_path):
    out = tmp_path / "split"
    proc = run("reproduce", "hessian-split", "--fast", "--seed", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "hessian-split" in proc.stdout and "report" in proc.stdout
    assert (out / "hessian-split.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = load_summary(out)
    assert summary["name"] == "hessian-split"
    assert summary["settings"]["fast"] is True and summary["seeds"]
    assert "(hessian-split.png)" in (out / "report.md").read_text()
    assert_one_line_error(run("reproduce", "hessian-split", "--fast", "--out", str(out)))


def test_oracle_catalogue_in_process(tmp_path, capsys):
    from hessref.oracle import fixture_catalogue

    out = tmp_path / "fixtures"
    assert main(["oracle", "--catalogue", str(out), "--quiet"]) == 0
    files = sorted(out.glob("*.npz"))
    assert len(files) == len(fixture_catalogue()) > 0
    with np.load(files[0], allow_pickle=False) as f:
        H, G, R = f["H"], f["G"], f["R"]
    assert np.allclose(H, G + R, rtol=0, atol=1e-12 * np.abs(H).max())
    assert main(["oracle", "--catalogue", str(out)]) == 2  # exists: refused
    assert "already exists" in capsys.readouterr().err
