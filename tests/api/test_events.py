"""Event streams: pushed events of experiments this process drives, polled events of the others,
the SSE wire format; and early stopping of ask/tell trials."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import V1, TestClient, ask_tell_dict, experiment_dict, make_settings
from tuner.events import Event
from tuner.service import Service
from tuner.spec import load_spec
from tuner.trials import ExperimentPhase, Observation, TrialState

Submit = Callable[..., dict[str, Any]]


def read_sse(lines: Any) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of an SSE stream, until it ends."""
    events: list[tuple[str, dict[str, Any]]] = []
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert event is not None
            events.append((event, json.loads(line.removeprefix("data: "))))
            event = None
    return events


def test_sse_streams_ask_tell_progress_until_the_end(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("live", parallelTrialCount=2, maxTrialCount=2, maxFailedTrialCount=0))
    received: list[tuple[str, dict[str, Any]]] = []
    connected = threading.Event()

    def listen() -> None:
        with client.stream("GET", f"{V1}/experiments/live/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    received.append((str(event), json.loads(line.removeprefix("data: "))))
                    connected.set()

    listener = threading.Thread(target=listen)
    listener.start()
    assert connected.wait(10), "no first event"
    trials = client.post(f"{V1}/experiments/live/suggestions", json={"count": 2}).json()["trials"]
    for t, loss in zip(trials, (0.5, 0.2), strict=True):
        client.post(
            f"{V1}/experiments/live/trials/{t['trial']}/complete",
            json={"status": "Succeeded", "metrics": {"loss": loss}},
            headers={"X-Tuner-Trial-Token": t["token"]},
        )
    listener.join(10)
    assert not listener.is_alive(), "the stream did not end with the experiment"

    kinds = [(kind, data.get("trial"), data.get("state")) for kind, data in received]
    assert kinds[0] == ("experiment", None, "Running")
    assert kinds[-1] == ("experiment", None, "Succeeded")
    names = [t["trial"] for t in trials]
    for name in names:
        assert ("trial", name, "Running") in kinds and ("trial", name, "Succeeded") in kinds
    assert [d["value"] for k, d in received if k == "best"] == [0.5, 0.2]
    assert all(d["experiment"] == "live" and d["namespace"] == "default" for _, d in received)


def test_sse_of_a_finished_experiment_is_one_event(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("over"))
    client.post(f"{V1}/experiments/over/stop")
    with client.stream("GET", f"{V1}/experiments/over/events") as response:
        events = read_sse(response.iter_lines())
    assert [(k, d["state"]) for k, d in events] == [("experiment", "Stopped")]


def test_events_of_an_experiment_driven_elsewhere_are_polled(tmp_path: Path) -> None:
    """Another process drives this experiment: the stream polls the database."""
    service = Service(make_settings(tmp_path, events_poll_interval=0.01))

    async def scenario() -> list[Event]:
        await service.start()
        repo = service.repo
        record = repo.create_experiment(load_spec(experiment_dict("elsewhere", maxTrialCount=3)))
        repo.set_phase(record.id, ExperimentPhase.RUNNING)
        assert not service.drives(repo.experiment_by_id(record.id))
        (early,) = repo.create_trials(record, [({"x": 0.0, "n": 1}, {})])
        repo.mark_running(record.id, early.name, "pid:1")
        events: list[Event] = []

        async def consume() -> None:
            async for event in service.events(record):
                events.append(event)

        consumer = asyncio.create_task(consume())
        deadline = asyncio.get_running_loop().time() + 60
        while not events:  # the stream's first event: the current phase
            assert asyncio.get_running_loop().time() < deadline, "no first event"
            await asyncio.sleep(0.01)
        late = repo.create_trials(record, [({"x": 1.0, "n": 1}, {}), ({"x": 2.0, "n": 1}, {})])
        for trial in late:
            repo.mark_running(record.id, trial.name, "pid:1")

        async def seen_by_the_stream(trial_name: str) -> None:
            # One finished trial at a time, so every best value is seen; bounded, not a guess.
            deadline = asyncio.get_running_loop().time() + 60
            while not any(e.trial == trial_name and e.state == "Succeeded" for e in events):
                assert asyncio.get_running_loop().time() < deadline, f"{trial_name} not seen"
                await asyncio.sleep(0.01)

        for trial, loss in zip([early, *late], (0.3, 0.1, 0.2), strict=True):
            repo.add_observations(record, trial.name, [Observation("loss", 0, loss)])
            repo.finish_trial(record.id, trial.name, TrialState.SUCCEEDED)
            await seen_by_the_stream(trial.name)
        repo.set_phase(record.id, ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "3")
        await asyncio.wait_for(consumer, 60)
        await service.close()
        return events

    events = asyncio.run(scenario())
    seen = [(e.kind, e.trial, e.state) for e in events]
    assert seen[0] == ("experiment", None, "Running")
    assert seen[-1] == ("experiment", None, "Succeeded")
    for name in ("elsewhere-0000", "elsewhere-0001", "elsewhere-0002"):
        assert ("trial", name, "Succeeded") in seen
    assert ("trial", "elsewhere-0000", "Running") not in seen  # it was running before we came
    assert [e.value for e in events if e.kind == "best"] == [0.3, 0.1]


def test_ask_tell_trials_stop_early(client: TestClient, submit: Submit) -> None:
    data = ask_tell_dict("pruned", parallelTrialCount=2, maxTrialCount=2, maxFailedTrialCount=0)
    data["spec"]["earlyStopping"] = {
        "algorithmName": "threshold",
        "algorithmSettings": [{"name": "upper", "value": "1.0"}],
    }
    submit(data)
    good, bad = client.post(f"{V1}/experiments/pruned/suggestions", json={"count": 2}).json()[
        "trials"
    ]

    def push(trial: dict[str, Any], loss: float) -> bool:
        response = client.post(
            f"{V1}/experiments/pruned/trials/{trial['trial']}/observations",
            json={"metrics": {"loss": loss}},
            headers={"Authorization": f"Bearer {trial['token']}"},
        )
        assert response.status_code == 200, response.text
        answer: bool = response.json()["should_stop"]
        return answer

    assert push(good, 0.5) is False
    assert push(bad, 5.0) is True
    stopped = client.get(f"{V1}/experiments/pruned/trials/{bad['trial']}").json()
    assert stopped["status"] == "EarlyStopped"
    assert stopped["reason"] == "step 0: 5 > upper 1"
    assert push(bad, 0.1) is True  # stays stopped
    response = client.post(
        f"{V1}/experiments/pruned/trials/{good['trial']}/complete",
        json={"status": "Succeeded"},
        headers={"X-Tuner-Trial-Token": good["token"]},
    )
    assert response.json()["status"] == "Succeeded"
    status = client.get(f"{V1}/experiments/pruned").json()["status"]
    assert status["phase"] == "Succeeded"
    assert status["trialCounts"]["EarlyStopped"] == 1


def test_server_shutdown_ends_streams(tmp_path: Path) -> None:
    service = Service(make_settings(tmp_path, events_poll_interval=10))

    async def scenario() -> float:
        await service.start()
        record = await service.submit(load_spec(ask_tell_dict("forever")))
        events: list[Event] = []

        async def consume() -> None:
            async for event in service.events(record):
                events.append(event)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await service.close()
        await asyncio.wait_for(consumer, 60)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 2
