"""Early stopping through the Push collector: `tuner.report` answers should_stop, the trial
exits on its own, and it ends EarlyStopped (not Succeeded) with the rule's reason."""

from __future__ import annotations

from tests.api.test_serve import client, server  # noqa: F401 (fixtures)
from tests.helpers import push_stopping_spec
from tests.servers import Server
from tuner.client import Client

STEPS = 10


def test_push_trials_stop_early_when_told(server: Server, client: Client) -> None:  # noqa: F811
    data = push_stopping_spec("push-stop", steps=STEPS)
    client.submit(data)
    final = client.wait("push-stop", progress=False, timeout=120)
    assert final["status"]["phase"] == "Succeeded"

    trials = client.trials("push-stop")
    by_state = trials.groupby("status")["trial"].count().to_dict()
    assert by_state.get("EarlyStopped", 0) >= 1, trials[["trial", "status", "steps"]]
    stopped = trials[trials["status"] == "EarlyStopped"]
    assert (stopped["steps"] < STEPS).all()
    assert all("median" in str(r) for r in stopped["reason"])
    # Each heard "stop" in the answer to its report and ended itself, before any kill.
    for name in stopped["trial"]:
        assert "asked to stop at step" in client.logs("push-stop", name), name
    board = client.leaderboard("push-stop", limit=1)
    assert board.iloc[0]["status"] == "Succeeded"
    assert board.iloc[0]["x"] == 0.5
    status = final["status"]
    assert status["totalSteps"] < status["stepsWithoutStopping"]
