"""Helpers shared by the benchmarks (service, scale and quality).

Not a benchmark itself. Each benchmark puts the repository root on ``sys.path`` before
importing this module, so every ``bench/<name>.py`` runs as a plain script.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import statistics
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

OPTUNA_TPE = "optuna-tpe"
"""The reference of the quality benchmarks: in-process Optuna with its default ``TPESampler``."""

POSTGRES_ENV = "TUNER_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def one_blas_thread() -> None:
    """One BLAS thread per process, set before numpy is imported: the quality benchmarks'
    worker pools set the parallelism, and threads on top oversubscribe the cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def quiet_search_logs() -> None:
    """No per-trial lines from Optuna or tuner's suggesters during in-process runs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tuner").setLevel(logging.WARNING)


# The 5-parameter space every service benchmark uses (Katib spelling).
PARAMETERS: list[dict[str, Any]] = [
    {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "5"}},
    {"name": "y", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "5"}},
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "8"}},
    {
        "name": "optimizer",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["adam", "sgd", "rmsprop"]},
    },
]


def experiment(
    name: str,
    algorithm: str,
    settings: dict[str, str] | None = None,
    *,
    max_trials: int | None = None,
    parallel: int = 1,
    trial_template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Katib Experiment over :data:`PARAMETERS`: minimise ``loss``, also record ``accuracy``."""
    spec: dict[str, Any] = {
        "objective": {
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["accuracy"],
        },
        "algorithm": {
            "algorithmName": algorithm,
            "algorithmSettings": [{"name": k, "value": v} for k, v in (settings or {}).items()],
        },
        "parallelTrialCount": parallel,
        "parameters": PARAMETERS,
    }
    if max_trials is not None:
        spec["maxTrialCount"] = max_trials
    if trial_template is not None:
        spec["trialTemplate"] = trial_template
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def optuna_distributions() -> dict[str, Any]:
    """The same space as :data:`PARAMETERS`, as Optuna distributions."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        "x": FloatDistribution(-5, 5),
        "y": FloatDistribution(-5, 5),
        "lr": FloatDistribution(0.0001, 0.1, log=True),
        "layers": IntDistribution(1, 8),
        "optimizer": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
    }


def loss(params: dict[str, Any]) -> float:
    """A cheap deterministic objective over :data:`PARAMETERS`."""
    x, y = float(params["x"]), float(params["y"])
    bonus = {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.1}[str(params["optimizer"])]
    return (
        x * x
        + y * y
        + abs(math.log10(float(params["lr"])) + 2)
        + 0.05 * int(params["layers"])
        + bonus
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between order statistics."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    load = ""
    with contextlib.suppress(OSError):
        load = f", load average {os.getloadavg()[0]:.2f} at start"
    return f"{os.cpu_count()} cores ({cpu}){mem}{load}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def postgres_base_url() -> str:
    from tuner.storage.engine import normalize_url

    return normalize_url(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES)


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A private schema on the benchmark PostgreSQL; yields a URL that uses it; drops it after."""
    from sqlalchemy import create_engine, text

    base = postgres_base_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; ``align`` holds one of ``l``/``r`` per column (default: l then r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
