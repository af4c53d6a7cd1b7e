"""Katib's DB-manager gRPC API, served by ``tuner serve --katib-db-manager-port PORT``.

``kubeflow.katib.report_metrics`` (inside a trial) and ``KatibClient.get_trial_metrics`` (in a
notebook) speak to it unchanged:

* ``ReportObservationLog`` stores a trial's values through the same path as an HTTP push
  (:meth:`tuner.service.Service.push`): each report of a metric is its next step, metrics the
  objective does not list are dropped (as with every collector), a finished trial's reports
  are accepted and dropped, and a running controller's early stopping decides at once.
* ``GetObservationLog`` answers a trial's stored observations, optionally of one metric and
  within ``[start_time, end_time]`` (RFC3339, both ends included), oldest first.

The API names a trial only: tuner looks the name up in every namespace; when several
experiments have a trial of that name, the newest experiment is meant.

**No authentication**, as in Katib: a gRPC report carries no trial token, so anyone who can
reach the port can add observations to a running trial of the objective's metrics and read
any trial's observations. The port is closed unless ``--katib-db-manager-port`` opens it;
open it only where trials and trusted clients alone reach it (on Kubernetes, a
NetworkPolicy around the Service).

Bad requests get ``INVALID_ARGUMENT``; an unknown trial ``NOT_FOUND``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tuner.errors import InvalidRequest, NotFound, TooManyAttempts, TunerError
from tuner.katib_grpc.protos import api
from tuner.storage import ExperimentRecord, Repository
from tuner.trials import Observation

if TYPE_CHECKING:
    import grpc.aio

    from tuner.service import Service

log = logging.getLogger(__name__)


def rfc3339(moment: datetime) -> str:
    """A stored time as RFC3339 in UTC, with microseconds (``...T12:00:00.000001Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str, field: str) -> datetime | None:
    """An RFC3339 time of a request (``None`` when empty); InvalidRequest otherwise."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise InvalidRequest(f"{field}: {text!r} is not an RFC3339 time") from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def report_batches(metric_logs: Iterable[Any]) -> list[dict[str, float]]:
    """The values of a report, in order, as pushes: a metric named again starts a new one."""
    batches: list[dict[str, float]] = [{}]
    for i, entry in enumerate(metric_logs):
        name, text = entry.metric.name, entry.metric.value
        if not name:
            raise InvalidRequest(f"observation_log.metric_logs[{i}].metric.name: must be set")
        try:
            value = float(text)
        except ValueError as e:
            raise InvalidRequest(
                f"observation_log.metric_logs[{i}].metric.value: {text!r} is not a number"
            ) from e
        if name in batches[-1]:
            batches.append({})
        batches[-1][name] = value
    return [b for b in batches if b]


def window(
    observations: Sequence[Observation], start: datetime | None, end: datetime | None
) -> list[Observation]:
    """The observations within ``[start, end]``, oldest first (then by metric and step)."""
    far = datetime.min.replace(tzinfo=UTC)

    def when(o: Observation) -> datetime:
        t = o.time or far
        return t if t.tzinfo is not None else t.replace(tzinfo=UTC)

    kept = [
        o
        for o in observations
        if (start is None or when(o) >= start) and (end is None or when(o) <= end)
    ]
    return sorted(kept, key=lambda o: (when(o), o.metric, o.step))


def trial_experiment(repo: Repository, trial_name: str) -> ExperimentRecord:
    """The experiment of a trial named alone (the newest of several); NotFound if none."""
    if not trial_name:
        raise InvalidRequest("trial_name: must be set")
    found = repo.experiments_with_trial(trial_name)
    if not found:
        raise NotFound(f"trial {trial_name!r} not found")
    return found[0]


class DBManager:
    """The servicer: each call goes through the started :class:`~tuner.service.Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def ReportObservationLog(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        messages, _ = api()
        try:
            batches = report_batches(request.observation_log.metric_logs)
            record = await self.service.db.run(trial_experiment, request.trial_name)
            for values in batches:
                await self.service.push(
                    record.namespace, record.name, request.trial_name, None, values
                )
        except TunerError as e:
            await _abort(context, e)
        return messages.ReportObservationLogReply()

    async def GetObservationLog(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        messages, _ = api()
        try:
            start = parse_time(request.start_time, "start_time")
            end = parse_time(request.end_time, "end_time")
            record = await self.service.db.run(trial_experiment, request.trial_name)
            stored = await self.service.db.run(
                Repository.observations,
                record.id,
                request.trial_name,
                request.metric_name or None,
            )
        except TunerError as e:
            await _abort(context, e)
        logs = [
            messages.MetricLog(
                time_stamp=rfc3339(o.time) if o.time is not None else "",
                metric=messages.Metric(name=o.metric, value=repr(o.value)),
            )
            for o in window(stored, start, end)
        ]
        return messages.GetObservationLogReply(
            observation_log=messages.ObservationLog(metric_logs=logs)
        )


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: TunerError) -> None:
    import grpc

    if isinstance(error, NotFound):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(error, TooManyAttempts):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
    elif isinstance(error, InvalidRequest):
        code = grpc.StatusCode.INVALID_ARGUMENT
    else:
        code = grpc.StatusCode.FAILED_PRECONDITION
    await context.abort(code, error.message)


async def serve_db_manager(service: Service, host: str, port: int) -> None:
    """A :attr:`~tuner.settings.Settings.companions` coroutine: the DB-manager on
    ``host:port`` from the service's start to its close."""
    import asyncio

    import grpc.aio

    _, services = api()
    server = grpc.aio.server()
    services.add_DBManagerServicer_to_server(DBManager(service), server)
    address = f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:
        bound = 0
        log.error("cannot listen on %s for Katib's DB-manager API: %s", address, e)
    if bound == 0:
        raise TunerError(f"cannot listen on {address} for Katib's DB-manager API")
    await server.start()
    log.info("Katib DB-manager gRPC API on %s (no authentication)", address)
    try:
        await asyncio.Event().wait()  # until the service cancels its companions
    finally:
        await server.stop(grace=1)
