"""Experiment leases after a crash: a dead holder of this host loses its lease at once (no wait
for its ttl), a live one keeps it, and one of another host is left to its ttl."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

from tests.helpers import experiment_dict
from tuner import leases
from tuner.leases import Leases
from tuner.processes import holder_gone, identity, process_start_time
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.storage.aio import AsyncRepository

pytestmark = pytest.mark.reliability

TTL = 3600.0  # far beyond the test: any takeover seen here is not an expiry


def dead_identity() -> str:
    """The identity a process of this host had, once it has ended."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    start = process_start_time(process.pid)
    assert process.stdin is not None
    process.stdin.close()
    process.wait(60)
    return f"serve@{socket.gethostname()}/{process.pid}/{start}"


def test_a_dead_holder_is_replaced_at_once_a_live_one_is_not(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict()))
    dead = dead_identity()
    assert holder_gone(dead)
    assert repo.acquire_lease(record.id, dead, TTL)

    restarted = Leases(AsyncRepository(repo), identity("serve"), TTL, 1.0)
    try:
        assert asyncio.run(restarted.acquire(record.id))  # at once, though the ttl is an hour
    finally:
        restarted.db.close()
    assert repo.lease_holder(record.id) == restarted.owner

    # The new holder lives (it is this process): a second one is refused.
    assert not holder_gone(restarted.owner)
    assert not leases.acquire(repo, record.id, "run@elsewhere", TTL)
    # A holder named for another host, or not by identity(), cannot be judged from here.
    other = repo.create_experiment(load_spec(experiment_dict("other")))
    for holder in ("serve@another-host/1/1", "replica-a"):
        assert not holder_gone(holder)
        repo.release_lease(other.id, repo.lease_holder(other.id) or "")
        assert repo.acquire_lease(other.id, holder, TTL)
        assert not leases.acquire(repo, other.id, identity("run"), TTL)
        repo.release_lease(other.id, holder)
