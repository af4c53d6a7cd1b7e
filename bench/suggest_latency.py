"""TPE suggestion latency with 1k and 10k completed trials (5 parameters).

* ``tuner``: a suggester from ``tuner.algorithms.registry.create_suggester`` for ``tpe``
  (``random_state=1``; defaults ``n_startup_trials=10``, ``n_ei_candidates=24``,
  univariate), first fed a history of ``N`` completed :class:`tuner.trials.Trial` (untimed,
  plus 3 untimed warm-up calls). Each timed call is ``suggest(history, 1)`` after the previous
  suggestion was appended to ``history`` as a completed trial: the incremental path the
  controller takes (one dictionary look-up per known trial, the new trial bound to the Optuna
  trial it was asked from, a fresh seeded ``TPESampler``, ``study.ask``).
* ``optuna``: in-process ``study.ask(fixed_distributions=...)`` on an ``InMemoryStorage``
  study holding the same ``N`` trials (``study.add_trials``), with
  ``TPESampler(seed=1, n_startup_trials=10, n_ei_candidates=24, multivariate=False)``; after
  each timed ask the trial is told its value (untimed), so that study grows alike.

The two alternate call by call. Reported: p50 and p99 per call, the difference of the p50s,
and "tuner's own cost": each of our calls minus the time it spent inside its own
``study.ask`` (timed by wrapping the suggester's private study), i.e. what the suggester adds
around Optuna. On a shared machine the p50 difference is noisy at 10k (few, slow calls); the
own cost is not. Target: ours p50 ≤ Optuna p50 + 2 ms.

Run: ``.venv/bin/python bench/suggest_latency.py [--quick]`` (200 calls at 1k and 30 at 10k;
``--quick`` 50 and 10).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from bench._common import (  # noqa: E402
    experiment,
    loss,
    machine,
    markdown_table,
    optuna_distributions,
    percentile,
)
from tuner.algorithms.registry import create_suggester  # noqa: E402
from tuner.spec import load_spec  # noqa: E402
from tuner.trials import ParamValue, Trial, TrialState  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

WARMUP = 3


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
        name=f"lat-{number:05d}",
        number=number,
        parameters=dict(params),
        state=TrialState.SUCCEEDED,
        objective=value,
        metrics={"loss": value},
        steps=1,
    )


def _time_asks(suggester: Any, spent: list[float]) -> None:
    """Record the time our suggester spends inside Optuna's ``study.ask`` (private attribute)."""
    study = getattr(suggester, "_study", None)
    if study is None:
        return
    ask = study.ask

    def timed_ask(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return ask(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    study.ask = timed_ask


def measure(n: int, samples: int) -> tuple[list[float], list[float], list[float], float, float]:
    """Seconds per call: ours, optuna, ours minus its own ``study.ask``; set-up times."""
    rng = random.Random(n)
    points = [random_params(rng) for _ in range(n)]
    history = [completed(i, p) for i, p in enumerate(points)]

    spec = load_spec(experiment("lat", "tpe", {"random_state": "1"})).spec
    suggester = create_suggester(spec)
    t0 = time.perf_counter()
    (last,) = suggester.suggest(history, 1)
    ours_setup = time.perf_counter() - t0

    distributions = optuna_distributions()
    sampler = optuna.samplers.TPESampler(
        seed=1, n_startup_trials=10, n_ei_candidates=24, multivariate=False
    )
    study = optuna.create_study(sampler=sampler)
    t0 = time.perf_counter()
    study.add_trials(
        [
            optuna.trial.create_trial(params=p, distributions=distributions, value=loss(p))
            for p in points
        ]
    )
    optuna_setup = time.perf_counter() - t0

    ours: list[float] = []
    theirs: list[float] = []
    own: list[float] = []
    asks: list[float] = []
    _time_asks(suggester, asks)
    for i in range(WARMUP + samples):
        history.append(completed(len(history), last.parameters))
        asks.clear()
        t0 = time.perf_counter()
        (last,) = suggester.suggest(history, 1)
        t1 = time.perf_counter()
        if i >= WARMUP and asks:
            own.append(t1 - t0 - sum(asks))
        trial = study.ask(fixed_distributions=distributions)
        t2 = time.perf_counter()
        study.tell(trial, loss(trial.params))
        if i >= WARMUP:
            ours.append(t1 - t0)
            theirs.append(t2 - t1)
    return ours, theirs, own, ours_setup, optuna_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 calls at 1k, 10 at 10k")
    args = parser.parse_args()
    plan = [(1000, 50 if args.quick else 200), (10000, 10 if args.quick else 30)]
    print(machine())
    rows: list[list[Any]] = []
    setup_rows: list[list[Any]] = []
    for n, samples in plan:
        print(f"  N={n}: {samples} calls ...", file=sys.stderr, flush=True)
        ours, theirs, own, ours_setup, optuna_setup = measure(n, samples)
        o50, o99 = percentile(ours, 50) * 1000, percentile(ours, 99) * 1000
        t50, t99 = percentile(theirs, 50) * 1000, percentile(theirs, 99) * 1000
        met = "met" if o50 <= t50 + 2 else "missed"
        rows.append(
            [
                f"{n:,}",
                samples,
                f"{o50:.2f}",
                f"{o99:.2f}",
                f"{t50:.2f}",
                f"{t99:.2f}",
                f"{o50 - t50:+.2f}",
                f"{o50 / t50:.2f}x",
                f"{percentile(own, 50) * 1000:.2f}",
                met,
            ]
        )
        setup_rows.append([f"{n:,}", f"{ours_setup * 1000:.0f}", f"{optuna_setup * 1000:.0f}"])
    print("\nTPE (univariate, n_ei_candidates=24), 5 parameters; ms per suggestion")
    print(
        markdown_table(
            [
                "completed trials",
                "calls (n)",
                "tuner p50",
                "tuner p99",
                "optuna ask p50",
                "optuna ask p99",
                "p50 difference",
                "p50 ratio",
                "tuner's own cost p50",
                "target p50 ≤ optuna + 2 ms",
            ],
            rows,
        )
    )
    print("\nuntimed set-up (ms): tuner's first suggest (feeds the study) vs optuna add_trials")
    print(markdown_table(["completed trials", "tuner first call", "optuna add_trials"], setup_rows))


if __name__ == "__main__":
    main()
