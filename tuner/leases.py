"""Experiment leases: which replica drives which experiment when several share one database.

Each experiment with a ``trialTemplate`` is driven by exactly one replica at a time, the holder
of its lease (``experiments.owner`` and ``lease_expires_at``, taken with one conditional
UPDATE). A replica renews its leases every ``interval`` seconds; when one dies, its leases
expire after ``ttl`` seconds and another replica takes the experiments over on its next scan:
it re-attaches to their running trials (a local process is re-adopted on the same host; one
that is gone ends Failed with reason TrialLost, outside the failure budget) and goes on.
Stored trials are never suggested again, so nothing is duplicated. Replicas must share the
trial-token secret. A push that reaches a replica other than the owner is stored, but the
early-stopping decision is made by the owner on its next look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from tuner.storage.aio import AsyncRepository

log = logging.getLogger(__name__)


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
        """Take (or keep) the lease of an experiment; False when another replica holds it."""
        return await self.db.acquire_lease(experiment_id, self.owner, self.ttl)

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
