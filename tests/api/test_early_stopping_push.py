"""Early stopping through the Push collector: `tuner.report` answers should_stop, the trial
exits on its own, and it ends EarlyStopped (not Succeeded) with the rule's reason."""

from __future__ import annotations

import yaml

from tests.api.test_serve import client, server  # noqa: F401 (fixtures)
from tests.helpers import push_spec
from tests.servers import Server
from tuner.client import Client

STEPS = 10


def test_push_trials_stop_early_when_told(server: Server, client: Client) -> None:  # noqa: F811
    data = yaml.safe_load(push_spec("push-stop"))
    spec = data["spec"]
    spec["parallelTrialCount"] = 2
    spec["maxTrialCount"] = 8
    spec["parameters"] = [
        {
            "name": "x",
            "parameterType": "discrete",
            "feasibleSpace": {"list": ["0.5", "0.6", "0.4", "0.55", "4", "-4", "5", "-5"]},
        }
    ]
    spec["earlyStopping"] = {
        "algorithmName": "medianstop",
        "algorithmSettings": [
            {"name": "min_trials_required", "value": "2"},
            {"name": "start_step", "value": "1"},
        ],
    }
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"].append(f"--steps={STEPS}")
    client.submit(data)
    final = client.wait("push-stop", progress=False, timeout=120)
    assert final["status"]["phase"] == "Succeeded"

    trials = client.trials("push-stop")
    by_state = trials.groupby("status")["trial"].count().to_dict()
    assert by_state.get("EarlyStopped", 0) >= 1, trials[["trial", "status", "steps"]]
    stopped = trials[trials["status"] == "EarlyStopped"]
    assert (stopped["steps"] < STEPS).all()
    assert all("median" in str(r) for r in stopped["reason"])
    board = client.leaderboard("push-stop", limit=1)
    assert board.iloc[0]["status"] == "Succeeded"
    assert board.iloc[0]["x"] == 0.5
    status = final["status"]
    assert status["totalSteps"] < status["stepsWithoutStopping"]
