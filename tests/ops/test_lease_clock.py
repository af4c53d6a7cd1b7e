"""Leases are timed by the database's clock: replicas whose clocks disagree by ±30 s still never
both hold an experiment, and a dead replica's lease passes on after its TTL, not 30 s early or
late. Each replica's clock is the repository's ``utcnow``, skewed per replica (a simulated skew:
one process cannot own two system clocks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.helpers import experiment_dict
from tests.waiting import wait_for
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.storage import repository as repository_module

SKEW = 30.0
TTL = 2.0


class Replica:
    """One replica: its own engine on the shared database, and its own (skewed) clock."""

    def __init__(self, db_url: str, name: str, skew: float, clock: list[float]) -> None:
        self.repo = Repository(make_engine(db_url))
        self.name = name
        self.skew = skew
        self._clock = clock

    def acquire(self, experiment_id: int) -> bool:
        self._clock[0] = self.skew
        return self.repo.acquire_lease(experiment_id, self.name, TTL)

    def renew(self, experiment_id: int) -> bool:
        self._clock[0] = self.skew
        return experiment_id in self.repo.renew_leases(self.name, [experiment_id], TTL)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The skew (seconds) of the replica making the next call."""
    skew = [0.0]
    real = repository_module.utcnow

    def skewed() -> datetime:
        return real() + timedelta(seconds=skew[0])

    monkeypatch.setattr(repository_module, "utcnow", skewed)
    return skew


@pytest.fixture
def replicas(db_url: str, clock: list[float]) -> Iterator[tuple[Replica, Replica]]:
    ahead = Replica(db_url, "ahead", +SKEW, clock)
    behind = Replica(db_url, "behind", -SKEW, clock)
    yield ahead, behind
    ahead.repo.engine.dispose()
    behind.repo.engine.dispose()


@pytest.mark.parametrize("holder_is_behind", [True, False], ids=["holder-behind", "holder-ahead"])
def test_skewed_replicas_never_share_a_lease_and_take_over_after_the_ttl(
    replicas: tuple[Replica, Replica], holder_is_behind: bool
) -> None:
    ahead, behind = replicas
    holder, rival = (behind, ahead) if holder_is_behind else (ahead, behind)
    record = holder.repo.create_experiment(load_spec(experiment_dict("skewed")))

    assert holder.acquire(record.id)
    taken_at = time.monotonic()
    # The rival's clock says the lease is long over (holder behind) or far off (holder ahead):
    # neither matters, the database's clock decides.
    assert not rival.acquire(record.id)
    assert not rival.renew(record.id)
    assert holder.renew(record.id)  # renewing restarts the TTL
    renewed_at = time.monotonic()

    # The holder dies (no more renewals): the rival takes over once the TTL has passed by the
    # database's clock, not 30 s earlier (a lease shared) nor 30 s later (a long failover).
    wait_for(lambda: rival.acquire(record.id), "the rival's takeover", timeout=SKEW / 2)
    assert time.monotonic() - renewed_at >= TTL * 0.9, "the lease was taken before its TTL"
    assert time.monotonic() - taken_at < SKEW / 2 + TTL
    assert not holder.renew(record.id)  # the old holder now knows it lost the lease
    assert not holder.acquire(record.id)
