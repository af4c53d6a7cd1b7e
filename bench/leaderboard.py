"""Leaderboard at scale on PostgreSQL: 100k trials, 1M observations.

Data: one experiment of ``N`` trials (5 parameters; states 93% Succeeded, 4% Failed,
3% EarlyStopped), each with 5 steps of ``loss`` and ``accuracy`` (10 observations per trial),
bulk-loaded with ``COPY`` straight into the tables of ``tuner/storage/tables.py`` (schema made
by the migrations). ``trials.objective``, ``trials.steps`` and ``trial_metrics`` hold what
``Repository.add_observations`` would have stored: each metric's value under its strategy
(``loss`` min, ``accuracy`` max; the spec's defaults), its step and count. A second experiment
of 10k trials (100k observations) serves the CSV export. ``ANALYZE`` runs after the load.

Timed (``time.perf_counter``, after warm-up calls), through :class:`tuner.storage.Repository`:

* top-20: ``leaderboard(record, limit=20)``;
* filtered page: ``leaderboard(record, metric="accuracy", states=[Succeeded], offset=1000,
  limit=50)``;
* CSV export of the 10k-trial experiment: ``leaderboard(record, limit=None)`` →
  ``tuner.views.leaderboard_row`` → the REST API's CSV writer
  (``tuner.api.routes.leaderboard._csv``), as ``GET .../leaderboard?limit=10000`` with
  ``Accept: text/csv`` does.

Then ``EXPLAIN (ANALYZE, BUFFERS)`` of every SQL statement each call issued (captured from the
engine), printed at the end. Targets: top-20 p99 ≤ 20 ms; export ≤ 1 s.

Run: ``.venv/bin/python bench/leaderboard.py [--quick]`` (``--quick``: 10k trials, 100k
observations). PostgreSQL: ``$TUNER_BENCH_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); a private schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event, text  # noqa: E402

from bench._common import (  # noqa: E402
    experiment,
    machine,
    markdown_table,
    mean,
    percentile,
    postgres_schema,
)
from tuner.spec import MetricStrategyType, load_spec  # noqa: E402
from tuner.storage import ExperimentRecord, Repository, make_engine  # noqa: E402
from tuner.trials import TrialState  # noqa: E402
from tuner.views import leaderboard_row  # noqa: E402

STEPS = 5
METRICS = ("loss", "accuracy")
STATES = [(TrialState.SUCCEEDED, 93), (TrialState.FAILED, 4), (TrialState.EARLY_STOPPED, 3)]
EXPORT_TRIALS = 10_000


def csv_export(record: ExperimentRecord, rows: list[dict[str, Any]]) -> bytes:
    """The API's CSV body for leaderboard rows (its own writer when available)."""
    parameters = [p.name for p in record.experiment.spec.parameters]
    metrics = record.experiment.spec.objective.metric_names
    try:
        from tuner.api.routes.leaderboard import _csv
    except ImportError:  # the API is optional: the same columns through flatten_rows
        import csv

        from tuner.api.tabular import flatten_rows

        columns, records = flatten_rows(rows, parameters, metrics)
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: "" if v is None else v for k, v in r.items()})
        return out.getvalue().encode()
    return bytes(_csv(rows, parameters, metrics).body)


# -- loading -------------------------------------------------------------------------------


def _ts(t: datetime) -> str:
    return t.isoformat(sep=" ")


def populate(engine: Engine, record: ExperimentRecord, n: int, first_id: int, seed: int) -> int:
    """COPY ``n`` trials (ids from ``first_id``) with their metrics and observations."""
    objective = record.experiment.spec.objective
    strategies = {m: objective.strategy(m) for m in METRICS}
    rng = random.Random(seed)
    states = [s for s, w in STATES for _ in range(w)]
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    trials, metrics, observations = io.StringIO(), io.StringIO(), io.StringIO()
    obs_id = first_id * len(METRICS) * STEPS
    for i in range(n):
        trial_id = first_id + i
        params = {
            "x": rng.uniform(-5, 5),
            "y": rng.uniform(-5, 5),
            "lr": 10 ** rng.uniform(-4, -1),
            "layers": rng.randint(1, 8),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
        }
        base = params["x"] ** 2 + params["y"] ** 2  # type: ignore[operator]
        created = t0 + timedelta(seconds=i)
        curves = {
            "loss": [base + 1 / s + rng.uniform(0, 0.05) for s in range(1, STEPS + 1)],
            "accuracy": [
                1 / (1 + base) - 0.1 / s + rng.uniform(0, 0.02) for s in range(1, STEPS + 1)
            ],
        }
        best: dict[str, tuple[float, int]] = {}
        for metric, curve in curves.items():
            for step, value in enumerate(curve, start=1):
                obs_id += 1
                observations.write(
                    f"{obs_id}\t{trial_id}\t{metric}\t{step}\t{value!r}\t"
                    f"{_ts(created + timedelta(milliseconds=100 * step))}\n"
                )
            strategy = strategies[metric]
            if strategy is MetricStrategyType.MIN:
                value = min(curve)
            elif strategy is MetricStrategyType.MAX:
                value = max(curve)
            else:
                value = curve[-1]
            best[metric] = (value, curve.index(value) + 1)
            metrics.write(f"{trial_id}\t{metric}\t{value!r}\t{best[metric][1]}\t{STEPS}\n")
        state = rng.choice(states)
        name = f"{record.name}-{i:04d}"
        trials.write(
            f"{trial_id}\t{record.id}\t{i}\t{name}\t{json.dumps(params)}\t{{}}\t{state.value}\t"
            f"{_ts(created)}\t{_ts(created)}\t{_ts(created + timedelta(seconds=1))}\t"
            f"{best[objective.objective_metric_name][0]!r}\t{STEPS}\n"
        )
    with engine.connect() as conn:
        pg: Any = conn.connection.driver_connection
        with pg.cursor() as cur:
            for table, columns, buffer in (
                (
                    "trials",
                    "id, experiment_id, number, name, parameters, attrs, state, created_at, "
                    "started_at, finished_at, objective, steps",
                    trials,
                ),
                ("trial_metrics", "trial_id, name, value, step, count", metrics),
                ("observations", "id, trial_id, metric, step, value, time", observations),
            ):
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    data = buffer.getvalue().encode()
                    for k in range(0, len(data), 1 << 20):
                        copy.write(data[k : k + (1 << 20)])
        pg.commit()
    return n * len(METRICS) * STEPS


def finish_load(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("trials", "observations"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


# -- timing --------------------------------------------------------------------------------


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def timed(fn: Callable[[], Any], warmup: int, samples: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    plans = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            result = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters or {}
            )
            plan = "\n".join(row[0] for row in result)
            plans.append(f"{' '.join(statement.split())[:300]}\n{plan}")
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k trials, 100k observations")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    samples = {"top": 100 if args.quick else 300, "page": 100 if args.quick else 200, "csv": 10}
    print(machine())
    with postgres_schema("bl") as url:
        engine = make_engine(url)
        repo = Repository(engine)
        main_spec = load_spec(experiment("board", "random"))
        export_spec = load_spec(experiment("export", "random"))
        record = repo.create_experiment(main_spec)
        export = repo.create_experiment(export_spec)
        t0 = time.perf_counter()
        observations = populate(engine, record, n, 1, seed=1)
        observations += populate(engine, export, EXPORT_TRIALS, n + 1, seed=2)
        finish_load(engine)
        load = time.perf_counter() - t0
        print(
            f"loaded {n + EXPORT_TRIALS:,} trials and {observations:,} observations "
            f"in {load:.1f} s (COPY + VACUUM ANALYZE)",
            file=sys.stderr,
        )

        def top() -> Any:
            return repo.leaderboard(record, limit=20)

        def page() -> Any:
            return repo.leaderboard(
                record, metric="accuracy", states=[TrialState.SUCCEEDED], offset=1000, limit=50
            )

        query_part: list[float] = []

        def export_csv() -> bytes:
            t = time.perf_counter()
            trials = repo.leaderboard(export, limit=None)
            query_part.append(time.perf_counter() - t)
            return csv_export(export, [leaderboard_row(tr) for tr in trials])

        assert len(top()) == 20 and len(page()) == 50
        body = export_csv()
        assert body.count(b"\n") == EXPORT_TRIALS + 1, body.count(b"\n")
        results = {
            "top": timed(top, 10, samples["top"]),
            "page": timed(page, 5, samples["page"]),
        }
        query_part.clear()
        results["csv"] = timed(export_csv, 1, samples["csv"])
        query_part = query_part[1:]

        plans: dict[str, list[str]] = {}
        for label, fn in (("top-20", top), ("filtered page", page)):
            with captured(engine) as statements:
                fn()
            plans[label] = explain(engine, statements)
        # Not what the Repository issues: the same top-20 ordered with NULLS LAST instead of an
        # `objective IS NULL` sort key, to show whether the (experiment_id, objective) index
        # could serve it.
        alternative = (
            "SELECT * FROM trials WHERE experiment_id = %(e)s "
            "ORDER BY objective ASC NULLS LAST, number LIMIT 20"
        )
        with engine.connect() as conn:

            def alt() -> Any:
                return conn.exec_driver_sql(alternative, {"e": record.id}).all()

            results["alt"] = timed(alt, 10, samples["top"])
        plans["top-20, alternative ORDER BY objective NULLS LAST (not the Repository's SQL)"] = (
            explain(engine, [(alternative, {"e": record.id})])
        )
        engine.dispose()

    print(
        f"\nPostgreSQL, {n:,} trials / {n * len(METRICS) * STEPS:,} observations in the "
        f"leaderboard experiment; export: {EXPORT_TRIALS:,} trials ({len(body) / 1e6:.1f} MB CSV)"
    )
    rows = []
    for label, key, target in (
        ("top-20 `leaderboard(limit=20)`", "top", 0.020),
        (
            "filtered page (Succeeded, metric=accuracy, offset 1000, limit 50)",
            "page",
            None,
        ),
        (f"CSV export, {EXPORT_TRIALS:,} trials", "csv", 1.0),
        ("(raw SQL, not the Repository) top-20 with `NULLS LAST`", "alt", None),
    ):
        xs = results[key]
        p50, p99 = percentile(xs, 50), percentile(xs, 99)
        if target is None:
            verdict = "(no target)"
        else:
            value = p99 if key == "top" else max(xs)
            verdict = (
                f"{'met' if value <= target else 'missed'} ({value / target:.2f}x of "
                f"{target * 1000:.0f} ms)"
            )
        rows.append([label, len(xs), f"{p50 * 1000:.1f}", f"{p99 * 1000:.1f}", verdict])
    print(markdown_table(["query", "n", "p50 (ms)", "p99 (ms)", "target"], rows))
    print(
        f"\nexport breakdown (mean): Repository.leaderboard(limit=None) "
        f"{mean(query_part) * 1000:.0f} ms, rows + CSV "
        f"{(mean(results['csv']) - mean(query_part)) * 1000:.0f} ms"
    )
    for label, ps in plans.items():
        print(f"\n### EXPLAIN ANALYZE: {label}\n")
        for p in ps:
            print(p)
            print()


if __name__ == "__main__":
    main()
