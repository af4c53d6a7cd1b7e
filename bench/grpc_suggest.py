"""What an algorithm costs behind Katib's Suggestion API, against the same algorithm in process.

* ``in process``: ``create_suggester`` for the algorithm (``random_state=1``), fed a history of
  ``N`` completed trials (5 parameters, untimed first call), then timed incrementally: each
  ``suggest(history, 1)`` follows the previous suggestion, appended as a completed trial (the
  controller's path).
* ``over gRPC``: the same, through :class:`tuner.katib_grpc.remote.RemoteSuggester` to a
  ``tuner suggestion-service --algorithm ALG`` in its own process on loopback. Each call sends
  the whole history (Katib's ``GetSuggestionsRequest``) and the service rebuilds the suggester
  from it, as a stateless Katib suggestion service does.

The two alternate call by call. Reported: p50 per call (ms) and the ratio gRPC / in process.

Run: ``.venv/bin/python bench/grpc_suggest.py [--quick]`` (30 calls at 100 and 1,000 trials;
``--quick`` 10).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import experiment, loss, machine, markdown_table, percentile  # noqa: E402
from tuner.algorithms.registry import create_suggester  # noqa: E402
from tuner.katib_grpc.remote import RemoteSuggester  # noqa: E402
from tuner.spec import load_spec  # noqa: E402
from tuner.trials import ParamValue, Trial, TrialState  # noqa: E402


def random_params(rng: random.Random) -> dict[str, ParamValue]:
    return {
        "x": rng.uniform(-5, 5),
        "y": rng.uniform(-5, 5),
        "lr": 10 ** rng.uniform(-4, -1),
        "layers": rng.randint(1, 8),
        "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
    }


def completed(number: int, params: dict[str, ParamValue]) -> Trial:
    value = loss(params)
    return Trial(
        name=f"grpc-{number:05d}",
        number=number,
        parameters=dict(params),
        state=TrialState.SUCCEEDED,
        objective=value,
        metrics={"loss": value},
    )


def start_service(algorithm: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tuner.cli", "suggestion-service", "--algorithm", algorithm]
    process = subprocess.Popen(
        [*command, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    found = re.search(r" on (\S+:\d+)", line)
    if found is None:
        process.kill()
        raise SystemExit(f"tuner suggestion-service did not start: {line!r}")
    return process, found.group(1)


def measure(algorithm: str, n: int, samples: int) -> tuple[list[float], list[float]]:
    rng = random.Random(n)
    spec = load_spec(experiment("grpc", algorithm, {"random_state": "1"})).spec
    process, address = start_service(algorithm)
    try:
        suggesters: dict[str, Any] = {
            "local": create_suggester(spec),
            "grpc": RemoteSuggester(address, spec.study, timeout=120),
        }
        histories = {k: [completed(i, random_params(rng)) for i in range(n)] for k in suggesters}
        for key, s in suggesters.items():  # untimed: feeding the history, warming up
            s.suggest(histories[key], 1)
        times: dict[str, list[float]] = {"local": [], "grpc": []}
        for _ in range(samples):
            for key, s in suggesters.items():
                history = histories[key]
                t0 = time.perf_counter()
                (suggestion,) = s.suggest(history, 1)
                times[key].append(time.perf_counter() - t0)
                history.append(completed(len(history), suggestion.parameters))
        return times["local"], times["grpc"]
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    samples = 10 if args.quick else 30
    rows = []
    for algorithm in ("random", "tpe"):
        for n in (100, 1000):
            local, remote = measure(algorithm, n, samples)
            p_local, p_remote = percentile(local, 50) * 1e3, percentile(remote, 50) * 1e3
            rows.append(
                [
                    algorithm,
                    f"{n:,}",
                    str(samples),
                    f"{p_local:.2f}",
                    f"{p_remote:.2f}",
                    f"{p_remote / p_local:.1f}x",
                ]
            )
    header = ["algorithm", "trials", "calls", "in process p50", "over gRPC p50", "ratio"]
    print(machine())
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
