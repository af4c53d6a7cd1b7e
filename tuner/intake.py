"""Pushes on their way in: the experiments they are for, known without a query each.

A push names its experiment by namespace and name. Reading and parsing the stored spec for
every report cost more than storing the report (the service's hot path at hundreds of reports
a second), and what a push needs of the experiment (its id, its objective's metric names,
whether it has a trial template) does not change while it runs. :class:`ExperimentCache`
keeps each record for a short time (``ttl``), and forgets it at once when this process changes
or deletes the experiment. A stale entry can only name an experiment that was deleted (and
perhaps created again under the same name) by another replica within ``ttl``: the push then
finds no trial under the old id, and the caller forgets the entry and tries once more
(:meth:`tuner.service.Service.push`).

Whether the trial is still running is not cached: the writer reads the trial's state in the
transaction that stores the push (:meth:`tuner.storage.Repository.store_pushes`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from tuner.storage.aio import AsyncRepository
from tuner.storage.repository import ExperimentRecord

DEFAULT_TTL = 2.0
DEFAULT_SIZE = 1024


class ExperimentCache:
    """Experiment records by (namespace, name), each kept ``ttl`` seconds (least recently
    used out first beyond ``size``).

    Args:
        db: where records are read on a miss.
        ttl: seconds a record is used before it is read again.
        size: the most records kept.
    """

    def __init__(
        self, db: AsyncRepository, ttl: float = DEFAULT_TTL, size: int = DEFAULT_SIZE
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.size = size
        self._records: OrderedDict[tuple[str, str], tuple[float, ExperimentRecord]] = OrderedDict()
        self._loading: dict[tuple[str, str], asyncio.Future[ExperimentRecord]] = {}
        self.misses = 0  # reads from the database (for tests)

    async def get(self, namespace: str, name: str) -> ExperimentRecord:
        """The experiment's record (NotFound when there is none)."""
        key = (namespace, name)
        now = time.monotonic()
        entry = self._records.get(key)
        if entry is not None and entry[0] > now:
            self._records.move_to_end(key)
            return entry[1]
        loading = self._loading.get(key)
        if loading is not None:  # one read per miss, however many pushes wait for it
            return await asyncio.shield(loading)
        self.misses += 1
        loading = asyncio.get_running_loop().create_future()
        self._loading[key] = loading
        try:
            record = await self.db.get_experiment(namespace, name)
        except asyncio.CancelledError:
            loading.cancel()
            raise
        except Exception as error:
            loading.set_exception(error)
            loading.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._loading[key]
        loading.set_result(record)
        self._records[key] = (time.monotonic() + self.ttl, record)
        self._records.move_to_end(key)
        while len(self._records) > self.size:
            self._records.popitem(last=False)
        return record

    def forget(self, namespace: str, name: str) -> None:
        """Read the experiment again next time (this process changed or deleted it)."""
        self._records.pop((namespace, name), None)
