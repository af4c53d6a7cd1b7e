"""Operator replicas on a real control plane: one leader at a time, elected with a
``coordination.k8s.io/v1`` Lease; and experiments submitted over REST get their resource."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tests.k8s.controlplane import ControlPlane
from tests.k8s.test_e2e import (  # noqa: F401  (api: the fixture that installs the CRD)
    Server,
    api,
    cr_status,
    create_cr,
    exists,
    get_cr,
    jobs,
    quadratic,
    wait_for,
)
from tuner.errors import Conflict
from tuner.k8s.jobs import INSTALLATION_LABEL
from tuner.operator.election import lease_name
from tuner.operator.mirror import STORED_ANNOTATION
from tuner.operator.status import GROUP, PLURAL, UID_ANNOTATION, VERSION

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(300)]

LEASE_SECONDS = 3


def replica(cluster: ControlPlane, workdir: Path, db_url: str, ns: str, rid: str) -> Server:
    """A replica watching ``ns``, electing in ``ns``; an id not of the ``serve@host/pid`` form,
    so a dead leader is replaced only when its Lease expires (as across hosts)."""
    args = ["--namespace-scope", ns, "--lease-namespace", ns, "--replica-id", rid]
    args += ["--leader-lease-duration", str(LEASE_SECONDS)]
    return Server(cluster, workdir, args, db_url=db_url)


def lease_spec(k8s: client.ApiClient, ns: str) -> dict[str, Any]:
    try:
        lease = client.CoordinationV1Api(k8s).read_namespaced_lease(lease_name("default", ns), ns)
    except client.ApiException as e:
        if e.status == 404:
            return {}
        raise
    spec: dict[str, Any] = k8s.sanitize_for_serialization(lease.spec)
    return spec


def api_requests(server: Server, operation: str) -> float:
    """``tuner_kubernetes_requests_total{operation=...}`` of a replica (0 when absent)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    prefix = f'tuner_kubernetes_requests_total{{operation="{operation}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def succeeded(k8s: client.ApiClient, ns: str, name: str, trials: int) -> None:
    wait_for(
        lambda: (
            (s := cr_status(k8s, ns, name)).get("phase") == "Succeeded"
            and s.get("trialsSucceeded") == trials
        ),
        f"the status of {name} to say Succeeded",
    )


@pytest.fixture
def replicas(
    k8s_cluster: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[dict[str, Server]]:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"  # replicas share one database
    servers = {
        rid: replica(k8s_cluster, tmp_path / rid, db_url, namespace, rid) for rid in ("a", "b")
    }
    try:
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def test_one_leader_reconciles_and_the_other_takes_over_when_it_dies(
    replicas: dict[str, Server],
    api: client.ApiClient,  # noqa: F811
    namespace: str,
) -> None:
    a, b = replicas["a"].start(), replicas["b"]
    held = wait_for(lambda: (s := lease_spec(api, namespace)).get("holderIdentity") and s, "Lease")
    assert held["holderIdentity"] == "a"
    assert held["leaseDurationSeconds"] == LEASE_SECONDS
    assert held["leaseTransitions"] == 0 and held["acquireTime"] and held["renewTime"]
    b.start()

    create_cr(api, quadratic(namespace, "first", steps=1, sleep=0, maxTrialCount=2))
    succeeded(api, namespace, "first", 2)
    renewed = lease_spec(api, namespace)
    assert renewed["holderIdentity"] == "a" and renewed["leaseTransitions"] == 0
    assert renewed["renewTime"] > held["renewTime"]  # the leader renews
    # Only the leader reconciles: it watches the resources and writes their status.
    status_writes = "replace_namespaced_custom_object_status"
    assert api_requests(a, status_writes) > 0
    assert api_requests(b, status_writes) == 0
    assert api_requests(b, "list_namespaced_custom_object") == 0

    a.stop(signal.SIGKILL)  # no release: b waits for the Lease to expire
    killed = time.monotonic()
    taken = wait_for(
        lambda: (s := lease_spec(api, namespace)).get("holderIdentity") == "b" and s,
        "b to take the Lease over",
        timeout=10 * LEASE_SECONDS,
    )
    print(f"takeover after {time.monotonic() - killed:.1f} s (lease {LEASE_SECONDS} s)")
    assert taken["leaseTransitions"] == 1 and taken["acquireTime"] > held["acquireTime"]
    create_cr(api, quadratic(namespace, "second", steps=1, sleep=0, maxTrialCount=2))
    succeeded(api, namespace, "second", 2)
    assert api_requests(b, status_writes) > 0

    b.stop()  # SIGTERM: the leader releases the Lease on its way out
    released = lease_spec(api, namespace)
    assert not released.get("holderIdentity"), released


@pytest.fixture
def server(k8s_cluster: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[Server]:
    s = Server(k8s_cluster, tmp_path, ["--namespace-scope", namespace]).start()
    yield s
    s.stop()


def test_rest_experiments_get_their_resource(
    server: Server,
    api: client.ApiClient,  # noqa: F811
    namespace: str,
) -> None:
    custom = client.CustomObjectsApi(api)
    with server.client(namespace) as c:
        submitted = c.submit(quadratic(namespace, "rest", steps=1, sleep=0, maxTrialCount=2))
        # The resource exists as soon as the submission is answered, labelled and marked.
        resource = get_cr(api, namespace, "rest")
        assert resource is not None
        meta = resource["metadata"]
        assert meta["labels"][INSTALLATION_LABEL] == "default"
        assert meta["annotations"][STORED_ANNOTATION] == "api"
        assert submitted["metadata"]["annotations"][UID_ANNOTATION] == meta["uid"]
        assert resource["spec"]["maxTrialCount"] == 2
        succeeded(api, namespace, "rest", 2)
        conditions = {c["type"] for c in cr_status(api, namespace, "rest")["conditions"]}
        assert "SpecChangeIgnored" not in conditions  # the resource's spec is the stored one
        for j in jobs(api, namespace, "rest"):  # owned by the resource, as applied ones are
            assert [o.uid for o in j.metadata.owner_references] == [meta["uid"]]

        # The name is the resource's: a second REST submission is a conflict, not a second run.
        with pytest.raises(Conflict):
            c.submit(quadratic(namespace, "rest", steps=1, sleep=0, maxTrialCount=2))
        assert get_cr(api, namespace, "rest")["metadata"]["uid"] == meta["uid"]  # type: ignore[index]

        # Deleting over REST deletes the resource...
        c.delete("rest")
        wait_for(lambda: get_cr(api, namespace, "rest") is None, "the resource to be deleted")
        # ... and deleting the resource deletes the experiment.
        c.submit(quadratic(namespace, "doomed", steps=1, sleep=0, maxTrialCount=2))
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "doomed")
        wait_for(lambda: not exists(c, "doomed"), "the experiment to leave the database")


def test_racing_candidates_one_wins_and_an_expired_lease_changes_hands(
    api: client.ApiClient,  # noqa: F811
    namespace: str,
) -> None:
    """In process, on the real apiserver: the resourceVersion decides races (409 = lost)."""
    from tuner.k8s.client import RetryingClient
    from tuner.operator.election import LeaderElection

    k8s = RetryingClient(api)

    def candidate(identity: str) -> LeaderElection:
        return LeaderElection(
            k8s, namespace=namespace, name="race", identity=identity, lease_duration=1
        )

    async def scenario() -> None:
        x, y = candidate("x"), candidate("y")
        won = await asyncio.gather(x.try_acquire_or_renew(), y.try_acquire_or_renew())
        assert sorted(won) == [False, True]
        holder, other = (x, y) if won[0] else (y, x)
        assert not await other.try_acquire_or_renew()  # held and fresh
        assert await holder.try_acquire_or_renew()  # renewed
        # The holder stops renewing: the other takes over once it saw no change for 1 s.
        deadline = time.monotonic() + 30
        while not await other.try_acquire_or_renew():
            assert time.monotonic() < deadline, "the expired Lease was never taken over"
            await asyncio.sleep(0.2)
        assert not await holder.try_acquire_or_renew()  # it sees the new holder, fresh
        spec = lease_spec_named(api, namespace, "race")
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == (other.identity, 1)

    try:
        asyncio.run(scenario())
    finally:
        k8s.close()


def lease_spec_named(k8s: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    lease = client.CoordinationV1Api(k8s).read_namespaced_lease(name, ns)
    spec: dict[str, Any] = k8s.sanitize_for_serialization(lease.spec)
    return spec
