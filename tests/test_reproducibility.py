"""The same command, seed and mode give bit-identical histories on the CPU twice in a row, in both frameworks;
report.json records what a rerun needs (the command line, the request, the versions, the data's sha256).

Each run is the real `parity` command in its own process (one thread per framework, CPU), so a
second run shares nothing in memory with the first. Compared exactly (==, no tolerance): every
run's per-epoch history, per-step training loss and optimizer learning rate in both frameworks,
the comparison (forward check, final values, statistics) and the provenance; wall times and
throughputs are the only fields allowed to differ.
"""

from pathlib import Path

import pytest

from cli_helpers import run_cli
from parity import summary

RERUN_FIELDS = ("history", "step_loss", "epochs_run", "stopped_early", "optimizer_learning_rate")


def run_twice(tmp_path: Path, *args: str) -> tuple[dict, dict, list[str]]:
    """The two reports of running `parity run ARGS --out DIR` twice (DIR a and b), and the first one's arguments
    (run_cli adds `--threads 1 --device cpu`)."""
    reports = []
    for name in ("a", "b"):
        result = run_cli("run", *args, "--quiet", "--out", str(tmp_path / name),
                         env={"PARITY_CACHE_DIR": str(tmp_path / "cache")})
        assert result.returncode == 0, result.stderr[-3000:]
        loaded = summary.load(tmp_path / name / args[0] / "report.json", warn=pytest.fail)  # schema-valid
        reports.append(loaded[1])
    return reports[0], reports[1], ["run", *args, "--quiet", "--out", str(tmp_path / "a"), "--threads", "1",
                                    "--device", "cpu"]


def assert_identical_runs(first: dict, second: dict, seeds: int) -> None:
    for framework in ("keras", "lightning"):
        runs = [report["frameworks"][framework]["runs"] for report in (first, second)]
        assert [run["seed"] for run in runs[0]] == list(range(seeds))
        assert len(runs[0]) == len(runs[1]) == seeds
        for one, two in zip(*runs):
            assert len(one["step_loss"]) > 0 and len(one["history"]["loss"]) > 0
            for field in RERUN_FIELDS:
                assert one[field] == two[field], (framework, one["seed"], field)
    timing = {"throughput_ratio"}
    assert {key: value for key, value in first["comparison"].items() if key not in timing} == \
        {key: value for key, value in second["comparison"].items() if key not in timing}  # forward check, statistics
    assert first["provenance"] == second["provenance"]


def assert_rerunnable(report: dict, argv: list[str]) -> None:
    """The command line, the request, the versions and the data's sha256 are all in the report."""
    assert report["command"]["argv"] == ["parity", *argv]
    assert Path(report["command"]["cwd"]).is_dir()
    request = report["request"]
    assert request["seeds"] >= 1 and request["device"] == "cpu" and request["threads"] == 1
    versions = report["provenance"]["versions"]
    assert all(versions[name] for name in ("python", "tensorflow", "keras", "torch", "lightning"))
    assert len(report["provenance"]["data"]["sha256"]) == 64


@pytest.mark.slow
def test_hello_linear_twice_gives_identical_histories_and_records_the_command(tmp_path):
    first, second, argv = run_twice(tmp_path, "c1w1_hello_linear", "--synthetic", "--epochs", "2", "--seeds", "2")
    assert_identical_runs(first, second, seeds=2)
    assert_rerunnable(first, argv)
    # The check can fail: the second seed's history differs from the first's (a seed changes the weights).
    runs = first["frameworks"]["keras"]["runs"]
    assert runs[0]["step_loss"] != runs[1]["step_loss"]


@pytest.mark.slow
def test_fmnist_dnn_twice_gives_identical_histories(tmp_path):
    first, second, argv = run_twice(tmp_path, "c1w2_fmnist_dnn", "--synthetic", "--epochs", "2", "--seeds", "2")
    assert_identical_runs(first, second, seeds=2)
    assert_rerunnable(first, argv)
    runs = first["frameworks"]["lightning"]["runs"]
    assert runs[0]["step_loss"] != runs[1]["step_loss"] and len(runs[0]["step_loss"]) > 50
