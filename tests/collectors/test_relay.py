"""The metrics-collector sidecar's relay (tuner.collectors.relay), off the cluster: how it tells
that the trial has ended (real processes found through /proc), and that it reads the metrics
file incrementally and pushes each new observation once. On a real control plane:
tests/k8s/test_file_collectors.py."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tuner.collectors.files import FileTailer, parser_for
from tuner.collectors.relay import PROBLEM_PREFIX, TrialWatch, batches, main, relay
from tuner.spec import load_spec
from tuner.trials import Observation


def file_spec(path: Path, fmt: str = "TEXT") -> dict[str, Any]:
    return experiment_dict(
        "relay",
        metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": str(path), "kind": "File", "format": fmt}},
        },
    )


def trial_env(trial: str) -> dict[str, str]:
    return {"TUNER_NAMESPACE": "ns", "TUNER_EXPERIMENT": "relay", "TUNER_TRIAL": trial}


def test_the_trial_has_ended_when_its_processes_are_gone() -> None:
    trial = f"relay-{uuid.uuid4().hex[:8]}"
    env = trial_env(trial)
    watch = TrialWatch.from_env(env, start_wait=600)
    sidecar = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, **env, "TUNER_SIDECAR": "metrics-collector"},
    )
    try:
        assert not watch.ended()  # nothing seen yet, and the start wait has not passed
        assert not watch.seen  # the sidecar's own processes are not the trial's
        primary = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
        )
        assert not watch.ended() and watch.seen
        # Another trial of the same name in another experiment is not this one.
        assert not TrialWatch.from_env({**env, "TUNER_EXPERIMENT": "other"}, 600).ended()
        assert primary.stdin is not None
        primary.stdin.close()
        primary.wait(30)
        assert watch.ended()
    finally:
        sidecar.kill()
        sidecar.wait()


def test_in_a_pod_unreadable_processes_but_pid_1_count_as_the_trials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A /proc of a Pod whose primary runs as another user: its environ cannot be read.
    from tuner import processes

    me = os.getpid()
    for pid in (1, 7, me):
        (tmp_path / str(pid)).mkdir()
        real = Path(f"/proc/{me}/stat").read_text()  # a live, non-zombie stat line
        (tmp_path / str(pid) / "stat").write_text(real)
        (tmp_path / str(pid) / "environ").write_bytes(b"TUNER_TRIAL=t\0")
    read_bytes = Path.read_bytes

    def forbidden(path: Path) -> bytes:  # as another user's /proc/<pid>/environ is
        if path.name == "environ" and path.parent.name in ("1", "7"):
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", forbidden)
    monkeypatch.setattr(processes, "PROC", tmp_path)
    assert processes.processes_with([b"TUNER_TRIAL=t"], unreadable=True) == [7]
    assert processes.processes_with([b"TUNER_TRIAL=t"]) == []  # off a Pod: left out
    watch = TrialWatch((b"TUNER_TRIAL=t",), start_wait=600, in_pod=True)
    assert not watch.ended() and watch.seen


def test_without_any_trial_process_the_watch_ends_after_the_start_wait() -> None:
    now = [0.0]
    watch = TrialWatch(
        (b"TUNER_TRIAL=none",), start_wait=5.0, find=lambda *_: [], clock=lambda: now[0]
    )
    assert not watch.ended()
    assert watch.ended(wrote=True)  # a trial that wrote its file and is gone: over
    now[0] = 5.0
    assert watch.ended() and not watch.seen


def test_consecutive_values_of_a_step_are_pushed_together() -> None:
    def o(metric: str, step: int) -> Observation:
        return Observation(metric=metric, step=step, value=float(step))

    observations = [o("loss", 0), o("accuracy", 0), o("loss", 1), o("loss", 1), o("accuracy", 2)]
    assert batches(observations) == [
        (0, {"loss": 0.0, "accuracy": 0.0}),
        (1, {"loss": 1.0}),
        (1, {"loss": 1.0}),
        (2, {"accuracy": 2.0}),
    ]


def test_relay_pushes_what_the_file_gains_while_the_trial_runs(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    experiment = load_spec(file_spec(path))
    parser = parser_for(experiment.spec)
    assert parser is not None
    tailer = FileTailer(path, parser)
    written = [
        "epoch 0: loss=0.5\n",
        "loss=0.4\nextra=1\n",
        "loss=0.3",  # no newline: read once the trial has ended
    ]
    pushes: list[tuple[int | None, dict[str, float]]] = []
    rounds = iter(written)
    left = {"polls": len(written)}

    def ended(wrote: bool = False) -> bool:
        left["polls"] -= 1
        return left["polls"] < 0

    def sleep(_: float) -> None:  # between two reads, the trial writes a little more
        text = next(rounds, "")
        with path.open("a") as f:
            f.write(text)

    watch = TrialWatch((b"unused=1",), find=lambda *_: [], start_wait=0)
    watch.ended = ended  # type: ignore[method-assign]
    problem = relay(tailer, watch, lambda step, values: pushes.append((step, values)), 0, sleep)
    assert problem is None
    assert pushes == [(0, {"loss": 0.5}), (1, {"loss": 0.4}), (2, {"loss": 0.3})]
    # Each read pushed only what was new: no value twice.
    assert len(pushes) == len({p[0] for p in pushes})


def test_a_file_never_written_is_a_problem_and_nothing_is_pushed(tmp_path: Path) -> None:
    path = tmp_path / "never.log"
    experiment = load_spec(file_spec(path, "JSON"))
    parser = parser_for(experiment.spec)
    assert parser is not None
    tailer = FileTailer(path, parser)
    watch = TrialWatch((b"unused=1",), find=lambda *_: [], start_wait=0)
    pushes: list[object] = []
    problem = relay(tailer, watch, lambda *a: pushes.append(a), 0, lambda _: None)
    assert pushes == []
    assert problem == f"the metrics file {path} was never created by the trial"


def test_main_prints_the_problem_for_the_controller_and_exits_0(tmp_path: Path) -> None:
    from tuner.collectors.relay import config_of

    spec = load_spec(file_spec(tmp_path / "never.log")).spec
    config = config_of(spec.metrics_collector_spec.dump(), spec.objective.dump())
    env = {**os.environ, **trial_env(f"gone-{uuid.uuid4().hex[:8]}")}
    result = subprocess.run(
        [sys.executable, "-m", "tuner.collectors.relay", "--config", config, "--start-wait", "0"],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    missing = tmp_path / "never.log"
    assert last == f"{PROBLEM_PREFIX}the metrics file {missing} was never created by the trial"


def test_a_broken_config_is_reported_as_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "{}", "--start-wait", "0"]) == 0
    assert capsys.readouterr().out.startswith(PROBLEM_PREFIX)
