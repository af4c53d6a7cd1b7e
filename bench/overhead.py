"""Service overhead per trial: suggest, create, 3 intermediate reports, complete.

One "trial" is the bookkeeping a tuning service does around a trial, with no training at all,
over the 5-parameter space of ``bench/_common.py`` and a random sampler:

* ``tuner`` (SQLite file, PostgreSQL): what the controller does, through
  :class:`tuner.storage.Repository` and the suggester of ``tuner.algorithms.registry``:
  the history caught up incrementally (:class:`tuner.history.HistoryCache`, as
  ``ExperimentController._reconcile_once`` reads it) →
  ``suggester.suggest(history, 1)`` → ``create_trials`` → ``mark_running`` →
  3 x ``add_observations`` (one ``loss`` value per step) → ``finish_trial(Succeeded)``;
* Optuna ``RDBStorage`` (SQLite file, the same PostgreSQL) and ``JournalStorage``
  (``JournalFileBackend``): ``study.ask()`` with ``RandomSampler``, the 5 ``suggest_*`` calls,
  3 x ``trial.report``, ``study.tell``.

All five run in the same process, round-robin in blocks of 25 trials so that load from other
processes on the machine hits them alike. Each gets 10 warm-up trials first (not counted).

Run: ``.venv/bin/python bench/overhead.py [--quick]`` (500 trials each, ``--quick`` 100).
PostgreSQL: ``$TUNER_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each run uses a private schema and drops it. ``--no-postgres`` skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from bench._common import (  # noqa: E402
    experiment,
    loss,
    machine,
    markdown_table,
    mean,
    postgres_schema,
)
from tuner.algorithms.registry import create_suggester  # noqa: E402
from tuner.history import HistoryCache  # noqa: E402
from tuner.spec import load_spec  # noqa: E402
from tuner.storage import Repository, make_engine  # noqa: E402
from tuner.trials import Observation, TrialState  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

WARMUP = 10
BLOCK = 25
PHASES = ("history", "suggest", "create", "running", "report x3", "finish")


class Backend(Protocol):
    label: str

    def trial(self, i: int) -> dict[str, float]:
        """Run one trial; returns seconds per phase (at least ``total``)."""
        ...

    def close(self) -> None: ...


class Tuner:
    """The controller's storage and suggestion path, phase by phase."""

    def __init__(self, label: str, url: str) -> None:
        self.label = label
        self.engine = make_engine(url)
        self.repo = Repository(self.engine)
        spec = load_spec(experiment("overhead", "random"))
        self.record = self.repo.create_experiment(spec)
        self.suggester = create_suggester(spec.spec)
        self.history = HistoryCache(self.repo, self.record.id)
        self.parameters = spec.spec.parameters

    def trial(self, i: int) -> dict[str, float]:
        repo, record = self.repo, self.record
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        history = self.history.refresh()
        t1 = time.perf_counter()
        (suggestion,) = self.suggester.suggest(history, 1)
        params = {p.name: p.convert(suggestion.parameters[p.name]) for p in self.parameters}
        t2 = time.perf_counter()
        (created,) = repo.create_trials(record, [(params, dict(suggestion.attrs))])
        t3 = time.perf_counter()
        repo.mark_running(record.id, created.name, "bench")
        t4 = time.perf_counter()
        value = loss(params)
        for step in (1, 2, 3):
            repo.add_observations(
                record, created.name, [Observation("loss", step, value + 1 / step)]
            )
        t5 = time.perf_counter()
        repo.finish_trial(record.id, created.name, TrialState.SUCCEEDED)
        t6 = time.perf_counter()
        t.update(
            {
                "history": t1 - t0,
                "suggest": t2 - t1,
                "create": t3 - t2,
                "running": t4 - t3,
                "report x3": t5 - t4,
                "finish": t6 - t5,
                "total": t6 - t0,
            }
        )
        return t

    def close(self) -> None:
        self.engine.dispose()


class OptunaBackend:
    """ask → 5 suggest_* → 3 x report → tell, on one Optuna storage."""

    def __init__(self, label: str, storage: Any, dispose: Callable[[], None] | None = None) -> None:
        self.label = label
        self.study = optuna.create_study(
            storage=storage, sampler=optuna.samplers.RandomSampler(), study_name="overhead"
        )
        self._dispose = dispose

    def trial(self, i: int) -> dict[str, float]:
        t0 = time.perf_counter()
        trial = self.study.ask()
        params = {
            "x": trial.suggest_float("x", -5, 5),
            "y": trial.suggest_float("y", -5, 5),
            "lr": trial.suggest_float("lr", 0.0001, 0.1, log=True),
            "layers": trial.suggest_int("layers", 1, 8),
            "optimizer": trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"]),
        }
        t1 = time.perf_counter()
        value = loss(params)
        for step in (1, 2, 3):
            trial.report(value + 1 / step, step)
        t2 = time.perf_counter()
        self.study.tell(trial, value)
        t3 = time.perf_counter()
        return {"suggest": t1 - t0, "report x3": t2 - t1, "finish": t3 - t2, "total": t3 - t0}

    def close(self) -> None:
        if self._dispose is not None:
            self._dispose()


def rdb(label: str, url: str) -> OptunaBackend:
    storage = optuna.storages.RDBStorage(url)
    return OptunaBackend(label, storage, storage.engine.dispose)


def journal(label: str, path: Path) -> OptunaBackend:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return OptunaBackend(label, JournalStorage(JournalFileBackend(str(path))))


def run(backends: list[Backend], n: int) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {b.label: [] for b in backends}
    for b in backends:
        for i in range(WARMUP):
            b.trial(i)
    for start in range(0, n, BLOCK):
        for b in backends:
            for i in range(start, min(n, start + BLOCK)):
                results[b.label].append(b.trial(WARMUP + i))
        print(f"  {min(n, start + BLOCK)}/{n} trials", end="\r", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def report(results: dict[str, list[dict[str, float]]], n: int) -> None:
    reference = "optuna RDB, SQLite"
    ref_mean = mean([r["total"] for r in results[reference]])
    journal_mean = mean([r["total"] for r in results.get("optuna Journal (file)", [])])
    rows = []
    for label, rs in results.items():
        total = mean([r["total"] for r in rs])
        tail = mean([r["total"] for r in rs[-min(50, len(rs)) :]])
        head = mean([r["total"] for r in rs[: min(50, len(rs))]])
        no_history = mean([r["total"] - r.get("history", 0.0) for r in rs])
        rows.append(
            [
                label,
                ms(total),
                ms(head),
                ms(tail),
                ms(no_history),
                f"{total / ref_mean:.2f}x",
                f"{total / journal_mean:.2f}x",
            ]
        )
    print(f"\n{n} trials per backend (+{WARMUP} warm-up), 5 parameters, random sampler")
    print(
        markdown_table(
            [
                "backend",
                "ms/trial (mean)",
                "first 50",
                "last 50",
                "without history read",
                "vs optuna RDB SQLite",
                "vs optuna Journal",
            ],
            rows,
        )
    )
    print("\nmean ms per phase (tuner: the Repository call; optuna: ask+suggest_*, report, tell)")
    phase_rows = []
    for label, rs in results.items():
        phase_rows.append(
            [label] + [ms(mean([r[p] for r in rs])) if p in rs[0] else "" for p in PHASES]
        )
    print(markdown_table(["backend", *PHASES], phase_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 trials instead of 500")
    parser.add_argument("--trials", type=int, help="trials per backend (overrides --quick)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    args = parser.parse_args()
    n = args.trials or (100 if args.quick else 500)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="tuner-bench-") as tmp, contextlib.ExitStack() as stack:
        d = Path(tmp)
        backends: list[Backend] = [Tuner("tuner, SQLite", f"sqlite:///{d / 'tuner.db'}")]
        if not args.no_postgres:
            backends.append(Tuner("tuner, PostgreSQL", stack.enter_context(postgres_schema("bo"))))
        backends += [
            rdb("optuna RDB, SQLite", f"sqlite:///{d / 'optuna.db'}"),
        ]
        if not args.no_postgres:
            backends.append(
                rdb("optuna RDB, PostgreSQL", stack.enter_context(postgres_schema("bo")))
            )
        backends.append(journal("optuna Journal (file)", d / "optuna.journal"))
        try:
            results = run(backends, n)
        finally:
            for b in backends:
                b.close()
    report(results, n)


if __name__ == "__main__":
    main()
