"""Experiment leases: which replica drives which experiment when several share one database.

Each experiment with a ``trialTemplate`` is driven by exactly one replica at a time, the holder
of its lease (``experiments.owner`` and ``lease_expires_at``, taken with one conditional
UPDATE). A replica renews its leases every ``interval`` seconds; when one dies, its leases
expire after ``ttl`` seconds and another replica takes the experiments over on its next scan:
it re-attaches to their running trials (a local process is re-adopted on the same host; one
that is gone ends Failed with reason TrialLost, outside the failure budget) and goes on.
Stored trials are never suggested again, so nothing is duplicated. Replicas must share the
trial-token secret.

A restarted replica does not wait out the ttl of its own leases: one with the same
``replica_id`` holds them already, and a holder named by :func:`tuner.processes.identity` (the
default id of ``tuner serve``, and ``tuner run``'s) that is a dead process of this host is
replaced at once. ``tuner run`` takes the lease of its experiment like a replica, so two runs
(or a run and a server) never drive one experiment together.

A push that reaches a replica other than the owner is stored, but the early-stopping decision
is made by the owner on its next look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from tuner.processes import holder_gone
from tuner.storage.aio import AsyncRepository
from tuner.storage.repository import Repository

log = logging.getLogger(__name__)


def acquire(repo: Repository, experiment_id: int, owner: str, ttl: float) -> bool:
    """Take (or keep) the lease of an experiment for ``owner``; False when another live holder
    has it. A holder that is a dead process of this host (:func:`holder_gone`) loses it at
    once, without waiting out its ttl. Synchronous: run it on the database thread."""
    if repo.acquire_lease(experiment_id, owner, ttl):
        return True
    holder = repo.lease_holder(experiment_id)
    if holder is None or not holder_gone(holder):
        return False
    log.info("experiment #%s: its lease holder %s is dead; taking over", experiment_id, holder)
    return repo.acquire_lease(experiment_id, owner, ttl, from_dead=holder)


class Leases:
    """The leases of one replica.

    Args:
        db: the shared database.
        owner: this replica's name (``Settings.replica_id``).
        ttl: seconds a lease lasts without renewal: the failover time after a crash.
        interval: seconds between renewals (and scans for orphaned experiments).
    """

    def __init__(self, db: AsyncRepository, owner: str, ttl: float, interval: float) -> None:
        self.db = db
        self.owner = owner
        self.ttl = ttl
        self.interval = interval

    async def acquire(self, experiment_id: int) -> bool:
        """Take (or keep) the lease of an experiment; False when another live replica holds
        it (a dead process of this host loses it at once)."""
        return await self.db.run(acquire, experiment_id, self.owner, self.ttl)

    async def release(self, experiment_id: int) -> None:
        await self.db.release_lease(experiment_id, self.owner)

    async def keep(
        self,
        driven: Callable[[], Collection[int]],
        lost: Callable[[int], None],
        scan: Callable[[], Awaitable[None]],
    ) -> None:
        """Every ``interval``: renew the leases of the ``driven`` experiments, call ``lost``
        for each one whose lease is gone, then ``scan`` for orphans. Runs until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                ids = list(driven())
                held = await self.db.renew_leases(self.owner, ids, self.ttl)
                for experiment_id in set(ids) - held:
                    log.warning(
                        "lost the lease of experiment #%s; stopping its controller", experiment_id
                    )
                    lost(experiment_id)
                await scan()
            except Exception:  # a database hiccup must not end lease keeping
                log.exception("lease renewal failed; retrying")
