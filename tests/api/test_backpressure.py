"""Back-pressure on metric pushes, against a real `tuner serve` whose database writes are held
(a write lock taken by the test): pushes beyond ``--max-pending-reports`` get 503 with
Retry-After at once, /healthz still answers, and every acknowledged push is stored once."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers import ask_tell_dict
from tests.servers import start_server, stop_server
from tuner.client import Client
from tuner.storage import Repository, make_engine
from tuner.storage.engine import normalize_url

LIMIT = 2


@contextlib.contextmanager
def writes_held(db_url: str) -> Iterator[None]:
    """Hold the database's write lock (readers go on): the server's writes wait for it.

    SQLite: an open ``BEGIN IMMEDIATE`` transaction (the server's busy timeout is 30 s, so
    the test releases it well before). PostgreSQL: ``LOCK TABLE observations`` in a
    transaction (reads of other tables go on)."""
    url = make_url(normalize_url(db_url))
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        conn = sqlite3.connect(url.database, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE observations IN EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def test_pushes_beyond_the_limit_get_503_at_once_and_no_acknowledged_one_is_lost(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(tmp_path, db_url, args=["--max-pending-reports", str(LIMIT)])
    try:
        with Client(server.url) as client:
            client.submit(
                ask_tell_dict("bp", parallelTrialCount=1, maxTrialCount=1, maxFailedTrialCount=0)
            )
            (trial,) = client.ask("bp", count=1)
        url = f"{server.url}/api/v1/experiments/bp/trials/{trial.name}/observations"
        headers = {"X-Tuner-Trial-Token": trial.token}

        def push(step: int) -> httpx.Response:
            body = {"step": step, "metrics": {"loss": float(step)}}
            return httpx.post(url, json=body, headers=headers, timeout=60)

        assert push(0).status_code == 200  # the experiment is cached, the trial known
        answers: dict[int, Future[httpx.Response]] = {}
        refused: httpx.Response | None = None
        with ThreadPoolExecutor(8) as pool, writes_held(server.db_url):
            # Each push either waits (admitted, its write held) or is refused at once.
            for step in range(1, 8):
                answers[step] = pool.submit(push, step)
                with contextlib.suppress(FutureTimeout):
                    answer = answers[step].result(timeout=1)
                    if answer.status_code == 503:
                        refused = answer
                        break
            assert refused is not None, "no push was refused while the writes were held"
            # Liveness from memory: answered while every write waits for the lock.
            health = httpx.get(f"{server.url}/healthz", timeout=10)
            assert health.status_code == 200
        assert refused.headers["Retry-After"] == "1"
        assert "retry after 1 s" in refused.json()["detail"]
        codes = {step: answer.result(timeout=60).status_code for step, answer in answers.items()}
        acknowledged = {0} | {s for s, c in codes.items() if c == 200}
        # Admitted pushes all waited for the lock, so exactly LIMIT were let in.
        assert set(codes.values()) <= {200, 503} and len(acknowledged) == 1 + LIMIT, codes
        # The client retries a refused push after Retry-After: it is stored then.
        retried = min(s for s, c in codes.items() if c == 503)
        assert push(retried).status_code == 200
        acknowledged.add(retried)

        engine = make_engine(server.db_url)
        try:
            repo = Repository(engine)
            record = repo.get_experiment("default", "bp")
            stored = [o.step for o in repo.observations(record.id, trial.name, "loss")]
        finally:
            engine.dispose()
        assert sorted(stored) == sorted(acknowledged)  # every acknowledged push, once; no other
    finally:
        stop_server(server)
    assert "Traceback" not in server.log.read_text()
