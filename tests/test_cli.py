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


def _refuse_constant(name: str):
    raise ValueError(f"summary.json is not strict JSON: {name}")


def load_summary(out: Path) -> dict:
    """summary.json, read as STRICT JSON (NaN/Infinity are rejected)."""
    return json.loads((out / "summary.json").read_text(), parse_constant=_refuse_constant)


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
    assert s["name"] == "demo" and s["seeds"] == [0] and s["mode"] == "fast"
    settings = s["settings"]
    for key in ("classes", "samples", "hidden", "activation", "loss", "learning_rate", "top"):
        assert key in settings
    m = s["per_seed"][0]
    sizes = m["sizes"]
    P = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes[:-1], sizes[1:]))
    assert m["num_params"] == P
    ev = {k: np.asarray(v) for k, v in m["eigenvalues"].items()}
    assert all(v.shape == (P,) for v in ev.values())
    assert all(np.all(np.diff(v) <= 0) for v in ev.values())  # descending
    assert m["lambda_max"] == ev["H"][0] and m["lambda_min"] == ev["H"][-1]
    st = m["statistics"]
    assert np.isclose(st["H"]["trace"], st["G"]["trace"] + st["R"]["trace"], rtol=1e-8, atol=1e-12)
    # the exact split: tiny error; G PSD; rank bound for cross-entropy min(P, N(K-1))
    assert m["split_rel_error"] < 1e-10
    assert ev["G"][-1] >= -1e-10 * ev["G"][0]
    assert m["rank_G"] <= min(P, settings["samples"] * (sizes[-1] - 1))
    # negative curvature only from R: G ⪰ 0 gives λ_min(H) >= λ_min(R)
    assert ev["H"][-1] >= ev["R"][-1] - 1e-12
    # outlier count and margin = argmax of λ_i/λ_{i+1} over the positive top, recomputed here
    top = ev["H"][: settings["top"]]
    top = top[top > 0]
    ratios = top[:-1] / top[1:]
    assert m["count"] == int(np.argmax(ratios)) + 1
    assert m["margin"] == pytest.approx(np.sort(ratios)[-1] / np.sort(ratios)[-2])
    for null in ("init_", "shuffled_"):
        assert isinstance(m[f"{null}count"], int) and m[f"{null}margin"] >= 1.0
    # training reached its target with the recorded loss curve
    assert m["final_loss"] <= settings["target_loss"]
    assert m["loss_curve"][-1] == m["final_loss"] and len(m["loss_curve"]) == m["steps"] + 1
    rule = next(v for v in s["verdicts"] if v["name"] == "trained H: count = C")
    holds = m["count"] == settings["classes"] and m["margin"] >= settings["min_margin"]
    assert rule["outcomes"] == [holds]


def test_demo_report_tables_are_markdown(demo):
    out, _ = demo
    report = (out / "report.md").read_text()
    lines = report.splitlines()
    seps = [i for i, line in enumerate(lines) if line.startswith("|---|")]
    assert len(seps) >= 2
    for i in seps:  # header above, rows below, same number of cells
        n = lines[i].count("|")
        assert lines[i - 1].startswith("| ") and lines[i - 1].count("|") == n
        assert lines[i + 1].startswith("| ") and lines[i + 1].count("|") == n
    assert "margin" in report and "shuffled labels" in report and "initialisation" in report


def _strip_times(summary: dict) -> dict:
    summary.pop("timings")
    for m in summary["per_seed"]:
        m.pop("timings_seconds")
    return summary


def test_existing_folder_is_refused_then_force_replaces_atomically(demo, capsys):
    out, _ = demo
    before = (out / "summary.json").read_bytes()
    proc = run("demo", "--fast", "--out", str(out))
    line = assert_one_line_error(proc)
    assert "already exists" in line and "--force" in line
    assert (out / "summary.json").read_bytes() == before  # untouched

    (out / "stale-unrelated.txt").write_text("old")
    # in-process (the subprocess path is covered above): saves an interpreter start-up
    assert main(["demo", "--fast", "--seed", "0", "--out", str(out), "--force", "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # --quiet
    assert not (out / "stale-unrelated.txt").exists()  # replaced, not merged
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp left
    after = _strip_times(json.loads((out / "summary.json").read_text()))
    assert after == _strip_times(json.loads(before))  # same seed, bit-identical numbers


def test_failed_force_write_leaves_the_old_folder(tmp_path, monkeypatch, capsys):
    from hessref.cli import output

    out = tmp_path / "rep"
    out.mkdir()
    (out / "old.txt").write_text("old")

    def broken(folder, texts, figures):
        (folder / "partial.txt").write_text("half")
        raise OSError(28, "No space left on device", str(folder / "partial.txt"))

    monkeypatch.setattr(output, "_fill", broken)
    with pytest.raises(output.UsageError) as exc:
        output.write_report_folder(out, {"a.txt": "new"}, {}, force=True)
    assert str(out) in str(exc.value) and "No space left" in str(exc.value)
    assert ".new-" not in str(exc.value)  # the user's path, not our temp name
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_oracle_unwritable_folder_names_the_users_path(tmp_path, monkeypatch, capsys):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "tmpa1b2c3"))

    monkeypatch.setattr(tempfile, "TemporaryFile", denied)
    target = tmp_path / "ro" / "ref.npz"
    assert main(["oracle", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "Permission denied" in err and "tmpa1b2c3" not in err


def test_unknown_option_points_to_the_command_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--bogus" in err and "see 'hessref demo --help'" in err


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
        ["reproduce", "--all", "hessian-split"],
        ["reproduce", "hessian-split", "--seed", "1", "--seeds", "2"],
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


def test_reproduce_list_and_help_name_every_experiment(capsys):
    from hessref.experiments import EXPERIMENTS

    assert main(["reproduce", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == list(EXPERIMENTS)
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in EXPERIMENTS) and "--seeds" in text


def test_reproduce_unknown_experiment_is_a_one_line_error(capsys):
    assert main(["reproduce", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "hessian-split" in err


@pytest.mark.parametrize("spec", ["3-1", "a", "1,1"])
def test_reproduce_bad_seeds(spec, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "hessian-split", "--seeds", spec])
    assert exc.value.code == 2 and "--seeds" in capsys.readouterr().err


def test_reproduce_writes_a_report(tmp_path):
    out = tmp_path / "split"
    proc = run("reproduce", "hessian-split", "--fast", "--seeds", "3-4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "hessian-split" in proc.stdout and "report" in proc.stdout
    assert (out / "hessian-split.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = load_summary(out)
    assert summary["name"] == "hessian-split" and summary["seeds"] == [3, 4]
    assert summary["settings"]["fast"] is True
    report = (out / "report.md").read_text()
    assert "(hessian-split.png)" in report and "|---|" in report
    assert "hessref reproduce hessian-split --seeds 3,4 --fast --out DIR" in report
    for v in summary["verdicts"]:
        assert v["statement"].replace("|", "\\|") in report  # pipes escaped in tables
    assert_one_line_error(run("reproduce", "hessian-split", "--fast", "--out", str(out)))


def test_reproduce_all_writes_the_results_document(tmp_path, capsys):
    from hessref.experiments import EXPERIMENTS

    out = tmp_path / "results"
    assert main(["reproduce", "--all", "--fast", "--seeds", "0", "--out", str(out), "--quiet"]) == 0
    doc = (out / "results.md").read_text()
    assert doc.startswith("# hessref results")
    assert "hessref reproduce --all --seeds 0 --fast --out DIR" in doc
    for name in EXPERIMENTS:
        assert (out / f"{name}.png").exists() and (out / f"{name}.json").exists()
        assert f"## {name}" in doc
    assert "| paper | claim | paper says | our setting (rule) | rate [95%] | verdict |" in doc
    assert "## Null baselines (expected to fail)" in doc and "## Exact checks" in doc
    assert "results.md" in capsys.readouterr().out


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
