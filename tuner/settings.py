"""How to build the service (:class:`Settings`). Nothing is read from the environment here."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tuner.asktell import DEFAULT_ASK_TIMEOUT
from tuner.runners.base import Runner
from tuner.spec import Experiment
from tuner.storage import ExperimentRecord

Companion = Callable[[Any], Coroutine[Any, Any, None]]
"""A coroutine function run beside the service, given the started
:class:`~tuner.service.Service` (typed ``Any`` here: the service imports these settings)."""


def _replica_id() -> str:
    from tuner.processes import identity

    return identity("serve")


class ResourceHooks(Protocol):
    """Keeps outside resources of REST experiments (``tuner serve --runner kubernetes``: their
    Experiment resources, :class:`tuner.operator.mirror.ResourceMirror`)."""

    async def before_store(self, experiment: Experiment) -> Experiment:
        """Called by ``submit`` before storing; returns the experiment to store."""

    async def store_failed(self, experiment: Experiment) -> None:
        """Undoes ``before_store`` when storing failed."""

    async def after_delete(self, record: ExperimentRecord) -> None:
        """Called after an experiment was deleted."""


@dataclass
class Settings:
    """How to build the service.

    Attributes:
        db_url: SQLAlchemy URL (default: ``TUNER_DATABASE_URL`` or ``./tuner.db``).
        api_token: when set, every endpoint but ``/healthz`` needs ``Bearer <api_token>``.
        secret: the key trial tokens derive from; default: the content of ``secret_file``.
        secret_file: where the secret is kept (created when missing); default: the user's
            state directory (:func:`tuner.tokens.default_secret_path`), out of trials' reach.
        allowed_hosts: the names (``Host`` header, without port) requests may be addressed
            to; ``None``: any (see :mod:`tuner.api.guards`: DNS rebinding).
        workdir: trial directories and logs (local runner).
        api_url: the URL trials reach the API at (``TUNER_API_URL``).
        trial_cwd: where trial commands run (default: the current directory).
        trial_env: the environment trials inherit (default: this process's).
        runner: a runner to use instead of the local runner (tests, Kubernetes).
        events_poll_interval: seconds between database polls of an event stream.
        max_body_size: request bodies above this many bytes get 413.
        stop_timeout: seconds to wait for a controller to kill its trials on stop.
        replica_id: this replica's name in experiment leases (default: ``serve@`` host, pid and
            process start time, so that a restart replaces a dead replica's leases at once).
        lease_ttl: seconds a lease lasts without renewal: the failover time after a crash.
        lease_interval: seconds between lease renewals and scans for orphaned experiments.
        ask_timeout: seconds an asked (ask/tell) trial may go without a report or a tell;
            then it ends Killed (``AskExpired``) and frees its slot, like a lost heartbeat.
        max_pending_reports: metric pushes in flight beyond which a new one is answered 503
            with ``Retry-After`` at once (:mod:`tuner.api.admission`).
        wrong_token_limit: wrong API tokens from one address, within a minute, after which
            every token from it is refused for a while (:mod:`tuner.api.attempts`).
        companions: coroutines run beside the service from its start to its close, each given
            the started service (``tuner serve --runner kubernetes`` runs the operator so).
        resource_hooks: called on submit and delete (REST experiments' Experiment resources).
    """

    db_url: str | None = None
    api_token: str | None = field(default=None, repr=False)
    secret: bytes | None = field(default=None, repr=False)
    secret_file: Path | None = None
    allowed_hosts: frozenset[str] | None = None
    workdir: Path = Path(".tuner")
    api_url: str = "http://127.0.0.1:8000"
    trial_cwd: Path | None = None
    trial_env: Mapping[str, str] | None = field(default=None, repr=False)
    runner: Runner | None = None
    events_poll_interval: float = 1.0
    max_body_size: int = 4 << 20
    stop_timeout: float = 60.0
    replica_id: str = field(default_factory=_replica_id)
    lease_ttl: float = 10.0
    lease_interval: float = 2.0
    ask_timeout: float = DEFAULT_ASK_TIMEOUT
    max_pending_reports: int = 256
    wrong_token_limit: int = 10
    companions: list[Companion] = field(default_factory=list)
    resource_hooks: ResourceHooks | None = None
