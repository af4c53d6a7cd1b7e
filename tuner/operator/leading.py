"""The operator as a companion of ``tuner serve``: one :class:`~tuner.operator.reconcile.Operator`
per API group of Experiment resources, on the elected leader of the replicas.

``experiments.tuner.dev`` is always reconciled; Katib's ``experiments.kubeflow.org`` as well
whenever its CRD is installed (``deploy/overlays/katib-compat``, or Katib's own manifests on a
cluster without Katib's controllers), found through the API discovery when this replica starts
leading and again every ``resync_interval`` seconds (a CRD installed later is picked up).
"""

from __future__ import annotations

import asyncio
import logging

from kubernetes import client

from tuner.events import Event as ServiceEvent
from tuner.k8s.client import API_ERRORS
from tuner.operator.election import LeaderElection, lease_name
from tuner.operator.reconcile import Operator
from tuner.operator.status import GROUP, KATIB_GROUP, PLURAL, VERSION
from tuner.runners.kubernetes import KubernetesRunner
from tuner.service import Service

log = logging.getLogger(__name__)


async def served_groups(runner: KubernetesRunner) -> list[str]:
    """The API groups whose Experiment resources to reconcile: ``tuner.dev``, and
    ``kubeflow.org`` when the apiserver's discovery lists its ``experiments``."""
    groups = [GROUP]
    custom = client.CustomObjectsApi(runner.api)
    try:  # GET /apis/kubeflow.org/v1beta1 (404 when the group is not served)
        found = await runner.client.get_json(custom.get_api_resources, KATIB_GROUP, VERSION)
    except API_ERRORS as e:
        log.warning("discovery of %s/%s failed: %r", KATIB_GROUP, VERSION, e)
        return groups
    names = {r.get("name") for r in (found or {}).get("resources") or []}
    if PLURAL in names:
        groups.append(KATIB_GROUP)
    return groups


async def run_operator(
    service: Service,
    *,
    runner: KubernetesRunner,
    namespace: str | None = None,
    resync_interval: float = 30.0,
    lease_namespace: str | None = None,
    lease_duration: float = 15.0,
) -> None:
    """A :attr:`Settings.companions <tuner.service.Settings.companions>` entry for the operator.

    With ``lease_namespace``, only the elected leader of the replicas runs the operators
    (:class:`~tuner.operator.election.LeaderElection`, a Lease in that namespace named after
    the installation); without it, this replica runs them unconditionally.
    """

    current: list[Operator] = []  # the operators of this leadership term, if any

    def forward(event: ServiceEvent) -> None:
        for operator in current:
            operator.on_service_event(event)

    async def lead() -> None:
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:  # discovery again every resync: a CRD installed later is served too
                for group in await served_groups(runner):
                    if group not in tasks:
                        log.info("reconciling %s.%s", PLURAL, group)
                        operator = Operator(
                            service,
                            runner,
                            namespace=namespace,
                            resync_interval=resync_interval,
                            listen=False,
                            group=group,
                        )
                        current.append(operator)
                        tasks[group] = asyncio.create_task(operator.run(), name=f"operator {group}")
                done, _ = await asyncio.wait(
                    tasks.values(), timeout=resync_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()  # an operator that failed fails the term
                if done:
                    return
        finally:
            current.clear()
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    service.add_listener(forward)

    if lease_namespace is None:
        await lead()
        return
    election = LeaderElection(
        runner.client,
        namespace=lease_namespace,
        name=lease_name(runner.installation, namespace),
        identity=service.settings.replica_id,
        lease_duration=lease_duration,
    )
    await election.run(lead)
