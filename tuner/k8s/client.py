"""The Kubernetes client: configuration, and calls that retry temporary errors.

Every client call blocks, so :class:`RetryingClient` runs it in a small thread pool: the event
loop never blocks. Errors are sorted once, here (:func:`is_temporary`): 429, 5xx and connection
errors are temporary and retried with bounded exponential backoff (honouring ``Retry-After``);
other 4xx are permanent and raised at once, for the caller to give them a meaning (404: gone,
409: conflict, 410: too old to watch from).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiException
from kubernetes.config.config_exception import ConfigException

from tuner.errors import RunnerError
from tuner.k8s.ratelimit import TokenBucket

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses a request is retried on (with backoff); 409 is handled where it means something."""
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
"""Errors of the connection rather than of the request: always temporary."""
API_ERRORS: tuple[type[BaseException], ...] = (ApiException, *TRANSIENT_ERRORS)
"""Everything a client call may raise about the apiserver or the way to it."""


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    """Exponential backoff with jitter: about ``base * 2**attempt``, at most ``cap`` seconds."""
    delay: float = min(cap, base * 2**attempt)
    return delay * (0.5 + random.random() / 2)


def is_temporary(error: BaseException) -> bool:
    """Whether a failed request may succeed when sent again (429, 5xx, connection errors)."""
    if isinstance(error, ApiException):
        return error.status in RETRY_STATUSES
    return isinstance(error, TRANSIENT_ERRORS)


def retry_after(error: ApiException) -> float | None:
    """The seconds the server's ``Retry-After`` header asks for (at most 30), or ``None``."""
    headers = error.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(30.0, float(value)) if value is not None else None
    except ValueError:
        return None


def api_message(error: ApiException) -> str:
    """The ``message`` of the Status object the apiserver answered with, else the reason."""
    try:
        return str(json.loads(error.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(error.reason)


def load_api_client(
    kubeconfig: str | Path | None = None, context: str | None = None, pool_size: int = 64
) -> client.ApiClient:
    """In-cluster configuration inside a Pod, else ``kubeconfig`` / ``$KUBECONFIG``."""
    cfg = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig is not None else None,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as e:
        raise RunnerError(f"cannot configure the Kubernetes client: {e}") from e
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


class RetryingClient:
    """Blocking client calls run in a thread pool, temporary errors retried.

    Args:
        api: the configured ``kubernetes.client.ApiClient`` the calls go through.
        retries: attempts of a request that fails with a temporary error.
        rate: client-side flow control (:mod:`tuner.k8s.ratelimit`): every attempt takes a
            token first; ``None``: no limit. ``tuner serve`` sets it from ``--kube-api-qps``.

    Attributes:
        requests: requests sent (each attempt), by operation (the client method's name).
        errors: failed requests by operation and HTTP status (``connection`` without one);
            both are read by :mod:`tuner.telemetry` at each scrape.
    """

    def __init__(
        self, api: client.ApiClient, *, retries: int = 6, rate: TokenBucket | None = None
    ) -> None:
        self.api = api
        self.retries = retries
        self.rate = rate
        self.requests: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tuner-k8s")

    def close(self) -> None:
        """Stop the pool (calls under way finish; the ApiClient stays open)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call in the pool; retry it while it fails temporarily."""
        loop = asyncio.get_running_loop()
        attempt = 0
        operation = str(getattr(fn, "__name__", "request"))
        while True:
            if self.rate is not None:
                await self.rate.acquire()
            self.requests[operation] += 1
            try:
                return await loop.run_in_executor(
                    self._pool, functools.partial(fn, *args, **kwargs)
                )
            except API_ERRORS as e:
                code = str(e.status) if isinstance(e, ApiException) else "connection"
                self.errors[(operation, code)] += 1
                if not is_temporary(e) or attempt + 1 >= self.retries:
                    raise
                if isinstance(e, ApiException):
                    delay = retry_after(e) or backoff_delay(attempt)
                    what = f"{e.status} {e.reason}"
                else:
                    delay, what = backoff_delay(attempt), repr(e)
            log.warning("%s: %s; retrying in %.1f s", getattr(fn, "__name__", fn), what, delay)
            attempt += 1
            await asyncio.sleep(delay)

    async def json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A client call's reply as plain JSON (camelCase keys, as the API sends it)."""

        def request() -> Any:
            resp = fn(*args, _preload_content=False, _request_timeout=(10, 60), **kwargs)
            try:
                return json.loads(resp.data)
            finally:
                resp.release_conn()

        request.__name__ = getattr(fn, "__name__", "request")
        return await self.call(request)

    async def get_json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`json`, but ``None`` on 404."""
        try:
            return await self.json(fn, *args, **kwargs)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
