"""32 trials reporting at once to a real server on SQLite: no `database is locked`, no lost or
doubled report, and retried reports are stored once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.api.test_serve import TOKEN, client, server  # noqa: F401 (fixtures)
from tests.helpers import ask_tell_dict
from tests.servers import Server
from tuner.client import Client, TrialAssignment
from tuner.storage import Repository, make_engine

REPORTERS = 32
STEPS = 25


def test_32_concurrent_reporters(server: Server, client: Client) -> None:  # noqa: F811
    data = ask_tell_dict(
        "load", parallelTrialCount=REPORTERS, maxTrialCount=REPORTERS, maxFailedTrialCount=0
    )
    client.submit(data)
    trials = client.ask("load", count=REPORTERS)
    assert len(trials) == REPORTERS

    def report_all(trial: TrialAssignment) -> list[int]:
        codes = []
        url = f"{server.url}/api/v1/experiments/load/trials/{trial.name}/observations"
        headers = {"Authorization": f"Bearer {trial.token}"}
        with httpx.Client(timeout=30) as http:
            for step in range(STEPS):
                body = {"step": step, "metrics": {"loss": float(step), "accuracy": 0.5}}
                codes.append(http.post(url, json=body, headers=headers).status_code)
            # A retried report of a step already stored is accepted and changes nothing.
            codes.append(
                http.post(
                    url, json={"step": 0, "metrics": {"loss": 99.0}}, headers=headers
                ).status_code
            )
        return codes

    with ThreadPoolExecutor(REPORTERS) as pool:
        results = list(pool.map(report_all, trials))
    assert all(code == 200 for codes in results for code in codes), results

    engine = make_engine(server.db_url)
    try:
        repo = Repository(engine)
        record = repo.get_experiment("default", "load")
        for trial in trials:
            observations = repo.observations(record.id, trial.name)
            assert len(observations) == 2 * STEPS  # loss and accuracy, once per step
            loss = [o.value for o in observations if o.metric == "loss"]
            assert loss == [float(s) for s in range(STEPS)]  # the retry did not overwrite step 0
    finally:
        engine.dispose()
    log = server.log.read_text()
    assert "database is locked" not in log
