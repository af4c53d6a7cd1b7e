"""Leader election among operator replicas, with a ``coordination.k8s.io/v1`` Lease.

Only the leader reconciles Experiment resources (watch and status writes); every replica still
serves the API and drives the experiments whose database lease it holds (:mod:`tuner.leases`).

The Lease (in the service's namespace) names its holder (``holderIdentity``: the replica id),
``leaseDurationSeconds``, ``acquireTime``, ``renewTime`` and ``leaseTransitions``. Every write
carries the resourceVersion read, so of two replicas writing at once one gets 409 and knows it
lost. A follower takes the Lease over when it is released (no holder) or when it has not seen it
change for ``leaseDurationSeconds`` (its own clock, never the holder's timestamps: clock skew
cannot steal it), or at once when the holder is a dead process of this host
(:func:`tuner.processes.holder_gone`, as for experiment leases: a restarted replica leads again
without waiting). The leader renews every ``renew_interval`` seconds; a leader that cannot renew
within ``renew_deadline`` seconds stops leading before anyone may take over. On shutdown the
leader releases the Lease, so another replica takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tuner.k8s.client import API_ERRORS, RetryingClient
from tuner.k8s.jobs import DEFAULT_INSTALLATION, installation_label
from tuner.processes import holder_gone

log = logging.getLogger(__name__)


def micro_time(when: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime`` (RFC 3339, microseconds, UTC)."""
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_name(installation: str, scope: str | None = None) -> str:
    """The Lease of an installation's operator replicas watching ``scope`` (a namespace;
    ``None``: all): installations, and operators of disjoint scopes, elect separately."""
    parts = ["tuner-operator"]
    if installation != DEFAULT_INSTALLATION:
        parts.append(installation_label(installation))
    if scope:
        parts.append(scope)
    return "-".join(parts)


@dataclass
class Observed:
    """The Lease as last read, and when (monotonic) its holder or renewTime last changed."""

    lease: dict[str, Any] | None
    changed_at: float

    @property
    def spec(self) -> dict[str, Any]:
        return dict((self.lease or {}).get("spec") or {})


class LeaderElection:
    """Campaign for the Lease; run ``lead()`` while this replica holds it.

    Args:
        k8s: the retrying client (its ApiClient is used for the coordination API).
        namespace: where the Lease lives (the service's namespace).
        name: the Lease's name (:func:`lease_name`).
        identity: this replica's id (``holderIdentity``).
        lease_duration: seconds a follower waits on an unchanged Lease before taking it.
        renew_interval: seconds between the leader's renewals.
        renew_deadline: seconds the leader may fail to renew before it stops leading; below
            ``lease_duration``, so the old leader stops before a new one starts.
        retry_interval: seconds between a follower's attempts.
    """

    def __init__(
        self,
        k8s: RetryingClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_interval: float | None = None,
        renew_deadline: float | None = None,
        retry_interval: float | None = None,
    ) -> None:
        self.k8s = k8s
        self.coordination = client.CoordinationV1Api(k8s.api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_interval = renew_interval or lease_duration / 3
        self.renew_deadline = renew_deadline or lease_duration * 2 / 3
        self.retry_interval = retry_interval or lease_duration / 5
        self.leading = False
        self._observed = Observed(None, time.monotonic())

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign, lead while elected, campaign again when leadership is lost; until cancelled
        (then the Lease is released if held)."""
        try:
            while True:
                await self._acquire()
                log.info(
                    "operator leader: %s (Lease %s/%s)", self.identity, self.namespace, self.name
                )
                self.leading = True
                leader = asyncio.create_task(lead(), name="operator leader")
                try:
                    await self._keep(leader)
                finally:
                    self.leading = False
                    leader.cancel()
                    await asyncio.gather(leader, return_exceptions=True)
                if leader.done() and not leader.cancelled():  # it ended by itself: not at once
                    await asyncio.sleep(self.retry_interval)
                else:
                    log.warning("operator leadership lost by %s", self.identity)
        finally:
            if self._holds():
                with contextlib.suppress(*API_ERRORS):
                    await asyncio.shield(self._release())

    # -- campaigning ---------------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except API_ERRORS as e:
                log.warning("Lease %s/%s: %r", self.namespace, self.name, e)
            await asyncio.sleep(self.retry_interval)

    async def _keep(self, leader: asyncio.Task[None]) -> None:
        """Renew until a renewal fails for ``renew_deadline`` seconds, or another holds it."""
        renewed = time.monotonic()
        while not leader.done():
            await asyncio.wait({leader}, timeout=self.renew_interval)
            if leader.done():
                break
            left = self.renew_deadline - (time.monotonic() - renewed)
            try:  # retries of temporary errors included: never past the deadline
                if await asyncio.wait_for(self.try_acquire_or_renew(), max(0.1, left)):
                    renewed = time.monotonic()
                    continue
                return  # someone else holds it now
            except TimeoutError:
                log.warning(
                    "Lease %s/%s: no renewal within the deadline", self.namespace, self.name
                )
            except API_ERRORS as e:
                log.warning("Lease %s/%s: renewal failed: %r", self.namespace, self.name, e)
            if time.monotonic() - renewed > self.renew_deadline:
                return
        if not leader.cancelled() and leader.exception() is not None:
            log.error("the operator failed", exc_info=leader.exception())

    def _holds(self) -> bool:
        return bool(self._observed.spec.get("holderIdentity") == self.identity)

    async def _read(self) -> dict[str, Any] | None:
        lease: dict[str, Any] | None = await self.k8s.get_json(
            self.coordination.read_namespaced_lease, self.name, self.namespace
        )
        before = self._observed.spec
        now = time.monotonic()
        spec = dict((lease or {}).get("spec") or {})
        key = ("holderIdentity", "renewTime", "leaseTransitions")
        if lease is None or [spec.get(k) for k in key] != [before.get(k) for k in key]:
            self._observed = Observed(lease, now)
        else:
            self._observed = Observed(lease, self._observed.changed_at)
        return lease

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: create the Lease, renew ours, or take an expired or released one.
        False when another replica holds it (or won the race to it)."""
        lease = await self._read()
        now = micro_time()
        mine = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": now,
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**mine, "acquireTime": now, "leaseTransitions": 0},
            }
            return await self._write(
                self.coordination.create_namespaced_lease, self.namespace, body
            )
        spec = self._observed.spec
        holder = spec.get("holderIdentity")
        if holder == self.identity:
            new_spec = {**spec, **mine}
        else:
            expired = time.monotonic() - self._observed.changed_at > float(
                spec.get("leaseDurationSeconds") or self.lease_duration
            )
            if holder and not expired and not holder_gone(str(holder)):
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
            new_spec = {**spec, **mine, "acquireTime": now, "leaseTransitions": transitions}
        body = {**lease, "spec": new_spec}  # metadata.resourceVersion: optimistic concurrency
        return await self._write(self.replace_lease, body)

    def replace_lease(self, body: Any, **kwargs: Any) -> Any:
        return self.coordination.replace_namespaced_lease(self.name, self.namespace, body, **kwargs)

    async def _write(self, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            written = await self.k8s.json(fn, *args)
        except ApiException as e:
            if e.status == 409:  # created or updated meanwhile: someone else won
                return False
            raise
        self._observed = Observed(written, time.monotonic())
        return True

    async def _release(self) -> None:
        """Give the Lease up (no holder): a follower takes it on its next attempt."""
        lease = self._observed.lease
        if lease is None:
            return
        spec = {**self._observed.spec, "holderIdentity": None, "leaseDurationSeconds": 1}
        spec["renewTime"] = micro_time()
        if await self._write(self.replace_lease, {**lease, "spec": spec}):
            log.info("Lease %s/%s released by %s", self.namespace, self.name, self.identity)
