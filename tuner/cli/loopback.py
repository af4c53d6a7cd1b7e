"""The push endpoint ``tuner run`` serves on loopback, so that ``tuner.report()`` works locally.

A spec whose ``metricsCollectorSpec`` is ``Push`` gets its metrics from the trials over HTTP.
Under ``tuner serve`` the server's API takes them; ``tuner run`` has no server, so it starts
this one: uvicorn on an ephemeral port of 127.0.0.1, in ``tuner run``'s own event loop, with the
very routers of ``tuner serve`` that trials call (:data:`tuner.api.routes.trials.push_router`)
and nothing else. Trials find it as they would find ``tuner serve``: ``TUNER_API_URL`` and their
own ``TUNER_TRIAL_TOKEN`` (derived from the user's secret, as ``tuner serve`` does),
so a trial behaves the same on a laptop and on a server, early-stopping answer included.

It is started only for Push specs: importing the web stack adds 0.5 to 1 s to the
start of ``tuner run`` (serving then takes some 50 ms more; measured on a loaded 2-core
machine), which other specs do not pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tuner import names
from tuner.api.app import API_PREFIX, install_error_handlers
from tuner.api.guards import LOOPBACK_NAMES, Guards
from tuner.api.routes import trials
from tuner.controller import ExperimentController, TrialEnv
from tuner.errors import InvalidRequest, NotFound, TunerError
from tuner.pushes import objective_metrics, pushed_observations
from tuner.storage import ExperimentRecord
from tuner.tokens import default_secret_path, derive_trial_token, load_or_create_secret
from tuner.trial_env import base_trial_env
from tuner.trials import Trial

STARTUP_TIMEOUT = 30.0


@dataclass
class _Settings:
    """The part of :class:`tuner.settings.Settings` the push routes read: no API token, so only
    a trial's own token is accepted."""

    api_token: str | None = field(default=None, repr=False)


class RunEndpoint:
    """Stands in for :class:`tuner.service.Service` behind the push routes, for the one
    experiment ``tuner run`` drives: the same checks, the values go to its controller."""

    def __init__(self, secret: bytes) -> None:
        self.settings = _Settings()
        self._secret = secret
        self._controller: ExperimentController | None = None
        self.closed = False

    def attach(self, controller: ExperimentController) -> None:
        self._controller = controller

    def get(self, namespace: str, name: str) -> ExperimentRecord:
        controller = self._controller
        if controller is None or (controller.record.namespace, controller.record.name) != (
            namespace,
            name,
        ):
            raise NotFound(f"experiment {namespace}/{name} not found (this run drives another)")
        return controller.record

    async def push_target(self, namespace: str, name: str, fresh: bool = False) -> ExperimentRecord:
        """The experiment a push names: this run's own (as :meth:`Service.push_target`)."""
        return self.get(namespace, name)

    def trial_token(self, record: ExperimentRecord, trial: str) -> str:
        return derive_trial_token(self._secret, record.uid, trial)

    async def push(
        self,
        namespace: str,
        name: str,
        trial_name: str,
        step: int | None,
        values: Mapping[str, float],
    ) -> tuple[bool, list[str]]:
        """As :meth:`tuner.service.Service.push` (the push route's call)."""
        return await self.observe(self.get(namespace, name), trial_name, step, values)

    async def observe(
        self,
        record: ExperimentRecord,
        trial_name: str,
        step: int | None,
        values: Mapping[str, float],
    ) -> tuple[bool, list[str]]:
        """As :meth:`tuner.service.Service.observe`: (should stop, ignored metric names)."""
        kept, ignored = objective_metrics(record, values)
        controller = self._controller
        if controller is None or self.closed:
            return True, ignored  # the run is over: whoever still pushes should stop
        observations = await controller.db.run(pushed_observations, record, trial_name, step, kept)
        if observations is None:
            return True, ignored
        if not observations:
            return False, ignored
        return await controller.observe(trial_name, observations), ignored

    async def complete(self, record: ExperimentRecord, *_: object, **__: object) -> Trial:
        raise InvalidRequest(
            f"experiment {record.name} has a trialTemplate: its trials finish when their "
            "process exits"
        )

    def trial_env(self, url: str) -> TrialEnv:
        """The ``TUNER_*`` environment of a trial: where to push, and its own token."""

        def env(record: ExperimentRecord, trial: Trial) -> dict[str, str]:
            return {
                **base_trial_env(record, trial),
                names.ENV_API_URL: url,
                names.ENV_TRIAL_TOKEN: self.trial_token(record, trial.name),
            }

        return env


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: ``tuner run`` handles Ctrl-C and SIGTERM itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Loopback:
    """The running endpoint: :attr:`url` for the trials, :attr:`endpoint` for the controller."""

    def __init__(self, endpoint: RunEndpoint, server: _Server, sock: socket.socket) -> None:
        self.endpoint = endpoint
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = server
        self._sock = sock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve (in the running event loop) once the server accepts connections."""
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._sock]), name="push endpoint"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while not self._server.started:
            if self._task.done():
                error = self._task.exception()
                raise TunerError(f"the push endpoint of this run did not start: {error}")
            if loop.time() > deadline:
                raise TunerError(
                    f"the push endpoint of this run did not start within {STARTUP_TIMEOUT:.0f}s"
                )
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.endpoint.closed = True
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._sock.close()


PORT_FILE = "loopback-port"
"""Where the port of the last run is kept: a run that re-adopts the trials of one that died
binds the same port when it is free, so those trials' reports reach it."""


def bind_loopback(port_file: Path) -> socket.socket:
    """A socket on 127.0.0.1: the port in ``port_file`` when it is free, else a new one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with contextlib.suppress(OSError, ValueError):
        sock.bind(("127.0.0.1", int(port_file.read_text())))
        return sock
    sock.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port_file.parent.mkdir(parents=True, exist_ok=True)
    port_file.write_text(str(sock.getsockname()[1]))
    return sock


def make_loopback(workdir: Path) -> Loopback:
    """The endpoint, bound to a port of 127.0.0.1 (the last run's, when free; serving once
    :meth:`Loopback.start` runs in the event loop)."""
    endpoint = RunEndpoint(load_or_create_secret(default_secret_path()))
    app = FastAPI(title="tuner run: push endpoint", openapi_url=None, docs_url=None)
    app.state.service = endpoint  # what tuner.api.deps.get_service hands to the routes
    app.include_router(trials.push_router, prefix=API_PREFIX)
    install_error_handlers(app)
    app.add_middleware(Guards, allowed_hosts=LOOPBACK_NAMES)  # as tuner serve's: no web page
    sock = bind_loopback(workdir / PORT_FILE)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return Loopback(endpoint, _Server(config), sock)
