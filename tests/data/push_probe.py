"""A Push trial that first probes its push endpoint as an intruder would, printing each HTTP
status (`probe <what>=<status>`), then reports its loss with `tuner.report`."""

import json
import os
import urllib.error
import urllib.request

import tuner

url = os.environ["TUNER_API_URL"]
experiment, trial = os.environ["TUNER_EXPERIMENT"], os.environ["TUNER_TRIAL"]
token = os.environ["TUNER_TRIAL_TOKEN"]


def status(trial_name: str, bearer: str | None, body: object) -> int:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(
        f"{url}/api/v1/experiments/{experiment}/trials/{trial_name}/observations",
        data=json.dumps(body).encode(),
        headers=headers,
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


good = {"step": 0, "metrics": {"loss": 9.0}}
print(f"probe no-token={status(trial, None, good)}", flush=True)
print(f"probe wrong-token={status(trial, 'f' * 64, good)}", flush=True)
print(f"probe other-trial={status(experiment + '-9999', token, good)}", flush=True)
print(f"probe bad-body={status(trial, token, {'metrics': 'high'})}", flush=True)
print(f"probe loopback={url.startswith('http://127.0.0.1:')}", flush=True)
tuner.report(step=0, loss=1.0)
