"""A real local trial under a real `tuner serve` holding credentials: the trial sees none of them.

The server's environment has TUNER_API_TOKEN, TUNER_SECRET, TUNER_DATABASE_URL and
TUNER_SERVER; the trial prints its whole environment and looks for a secret file where it
could know of one (the workdir, which holds its own directory, and its working directory).
Its log, which ``/logs`` serves, must contain none of the values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from tests.helpers import experiment_dict
from tests.servers import start_server, stop_server
from tests.waiting import wait_for

TRIAL = """\
import json, os, pathlib
print("ENV " + json.dumps(dict(os.environ)))
workdir = pathlib.Path(os.environ["TUNER_TRIAL_DIR"]).parents[2]
roots = (workdir, pathlib.Path.cwd())
found = [str(p) for r in roots for n in ("server-secret", "api-token") for p in r.rglob(n)]
print("SECRET_FILES " + json.dumps(found))
print("loss=0.5")
"""


def test_a_trial_gets_no_server_credentials(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tuner.db'}"
    credentials = {
        "TUNER_API_TOKEN": "api-token-f00d5eed",
        "TUNER_SECRET": "server-secret-c0ffee",
        "TUNER_DATABASE_URL": db_url,
        "TUNER_SERVER": "http://127.0.0.1:1",
    }
    script = tmp_path / "env_dump.py"
    script.write_text(TRIAL)
    spec = experiment_dict("envdump", parallelTrialCount=1, maxTrialCount=1, maxFailedTrialCount=1)
    spec["spec"]["objective"].pop("additionalMetricNames")
    spec["spec"]["parameters"] = spec["spec"]["parameters"][:1]
    container = spec["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    container["command"] = [sys.executable, str(script), "--x=${trialParameters.x}"]
    spec["spec"]["trialTemplate"]["trialParameters"] = [
        p for p in spec["spec"]["trialTemplate"]["trialParameters"] if p["name"] == "x"
    ]
    server = start_server(tmp_path, db_url, env=credentials)
    try:
        auth = {"Authorization": f"Bearer {credentials['TUNER_API_TOKEN']}"}
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=auth, timeout=30) as api:
            created = api.post("/experiments", json=spec)
            assert created.status_code == 201, created.text
            final = wait_for(
                lambda: (
                    (e := api.get("/experiments/envdump").json())["status"]["phase"]
                    in ("Succeeded", "Failed")
                    and e
                ),
                "the trial to end",
                timeout=120,
            )
            assert final["status"]["phase"] == "Succeeded", final["status"]
            log = api.get("/experiments/envdump/trials/envdump-0000/logs")
            assert log.status_code == 200, log.text
    finally:
        stop_server(server)
    lines = dict(line.split(" ", 1) for line in log.text.splitlines() if " " in line)
    env = json.loads(lines["ENV"])
    assert env["TUNER_TRIAL"] == "envdump-0000" and len(env["TUNER_TRIAL_TOKEN"]) == 64
    assert env["TUNER_API_URL"] == server.url  # what it needs to push, and nothing more
    for name, value in credentials.items():
        assert name not in env, name
        assert value not in log.text, f"{name}'s value is in the trial's log"
    assert json.loads(lines["SECRET_FILES"]) == []
