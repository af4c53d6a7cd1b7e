"""A Python client for ``tuner serve``, for notebooks and scripts.

Example::

    from tuner.client import Client

    client = Client("http://127.0.0.1:8000")  # token: $TUNER_API_TOKEN or the user's token file
    client.submit("examples/digits-auto.yaml")
    client.wait("digits-auto")              # a progress bar, until the experiment ends
    client.leaderboard("digits-auto")       # a pandas DataFrame, best first

Ask/tell, for training in the notebook itself (a spec without ``trialTemplate``)::

    while trials := client.ask("my-exp", count=2):
        for trial in trials:
            loss = train(**trial.parameters)
            client.tell("my-exp", trial, metrics={"loss": loss})

Errors from the server raise the :mod:`tuner.errors` class of their status code (404
:class:`~tuner.errors.NotFound`, 409 :class:`~tuner.errors.Conflict`, 422
:class:`~tuner.errors.SpecError` with one :class:`~tuner.errors.FieldError` per problem, 401
:class:`~tuner.errors.Unauthorized`, 403 :class:`~tuner.errors.Forbidden`, 400
:class:`~tuner.errors.InvalidRequest`), carrying the server's message.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from tuner import names
from tuner.api.tabular import BASE_COLUMNS, TAIL_COLUMNS, flatten_rows
from tuner.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    SpecError,
    TunerError,
    Unauthorized,
)
from tuner.tokens import read_default_api_token

if TYPE_CHECKING:
    import pandas as pd

    from tuner.spec import Experiment

API = "/api/v1"
TOKEN_ENV = names.ENV_API_TOKEN
TRIAL_TOKEN_HEADER = names.HEADER_TRIAL_TOKEN
FINISHED = frozenset({"Succeeded", "Failed", "Stopped"})
TRIAL_FINISHED = frozenset({"Succeeded", "Failed", "EarlyStopped", "MetricsUnavailable", "Killed"})
_ERRORS: dict[int, type[TunerError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


@dataclass(frozen=True)
class TrialAssignment:
    """A trial from :meth:`Client.ask`: train with ``parameters``, then :meth:`Client.tell`."""

    experiment: str
    name: str
    parameters: dict[str, Any]
    token: str


def _is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this host (``localhost``, 127.0.0.0/8, ``::1``)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    """Talks to ``tuner serve`` over HTTP.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000``.
        token: the API token; default ``$TUNER_API_TOKEN``, else, for a server on a loopback
            address, the token ``tuner serve`` keeps in the user's state directory
            (:func:`tuner.tokens.default_api_token_path`); none when neither exists. The token
            file is never sent to another host.
        namespace: the namespace of every call (default ``default``). When given, it is also
            the namespace of submitted specs that do not name one in ``metadata.namespace``.
        timeout: seconds per request.
        transport: an httpx transport (tests: ``httpx.ASGITransport``/``MockTransport``).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if token is None and _is_loopback_url(url):
            token = read_default_api_token()
        headers = {"Accept": "application/json"}
        if token:
            headers[names.HEADER_AUTHORIZATION] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self.namespace = namespace or "default"
        self._explicit_namespace = namespace
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._trial_tokens: dict[tuple[str, str, str], str] = {}
        self._has_api_token = bool(token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- experiments ---------------------------------------------------------------------

    def submit(
        self, spec: Experiment | Mapping[str, Any] | str | Path, *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Submit an Experiment: a path to a YAML/JSON file, YAML text, a dict or a model.

        The server validates it; problems raise :class:`SpecError` with field paths. The
        experiment goes to ``metadata.namespace``, else to ``namespace`` (or the client's
        explicit namespace), else to ``default``.
        """
        namespace = namespace or self._explicit_namespace
        params = {"namespace": namespace} if namespace else {}
        if isinstance(spec, Mapping):
            return self._json("POST", "/experiments", json=dict(spec), params=params, ns=False)
        if isinstance(spec, str | Path):
            text = spec if isinstance(spec, str) and "\n" in spec else Path(spec).read_text()
            return self._json(
                "POST",
                "/experiments",
                content=text.encode(),
                headers={"Content-Type": "application/yaml"},
                params=params,
                ns=False,
            )
        return self._json("POST", "/experiments", json=spec.dump(), params=params, ns=False)

    def get(self, name: str) -> dict[str, Any]:
        """The experiment: ``apiVersion``, ``kind``, ``metadata``, ``spec`` and ``status``."""
        return self._json("GET", f"/experiments/{name}")

    def list_experiments(
        self, status: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Experiments of the namespace, newest first, optionally only in phase ``status``."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        return self._json_list("GET", "/experiments", params=params)

    def wait(
        self,
        name: str,
        *,
        progress: bool = True,
        timeout: float | None = None,
        poll: float = 0.5,
        file: TextIO | None = None,
    ) -> dict[str, Any]:
        """Block until the experiment is Succeeded, Failed or Stopped; returns it.

        Args:
            progress: show a progress bar (tqdm: a widget in notebooks, text in terminals)
                of finished trials out of ``maxTrialCount``, with the best value so far.
            timeout: give up after this many seconds (``TimeoutError``).
            poll: seconds between status requests.
            file: where the text bar goes (default stderr).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        try:
            while True:
                experiment = self.get(name)
                status = experiment["status"]
                if progress:
                    bar = bar or _progress_bar(experiment, file)
                    _update_bar(bar, experiment)
                if status["phase"] in FINISHED:
                    return experiment
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"experiment {name} is still {status['phase']} after {timeout}s"
                    )
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()

    def stop(self, name: str) -> dict[str, Any]:
        """Kill the running trials (Killed) and end the experiment as Stopped."""
        return self._json("POST", f"/experiments/{name}/stop")

    def resume(self, name: str) -> dict[str, Any]:
        """Continue a Stopped experiment with its budget as it is (to continue one that reached
        its maxTrialCount, with resumePolicy LongRunning or FromVolume, raise that with
        :meth:`edit_budget`)."""
        return self._json("POST", f"/experiments/{name}/resume")

    def delete(self, name: str) -> None:
        """Stop the experiment and remove it with its trials and observations."""
        self._request("DELETE", f"/experiments/{name}")

    def edit_budget(
        self,
        name: str,
        *,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
    ) -> dict[str, Any]:
        """Change the budget (arguments left ``None`` stay as they are).

        Raising ``max_trial_count`` of a finished experiment resumes it.
        """
        changes = {
            "maxTrialCount": max_trial_count,
            "parallelTrialCount": parallel_trial_count,
            "maxFailedTrialCount": max_failed_trial_count,
        }
        body = {k: v for k, v in changes.items() if v is not None}
        return self._json("PATCH", f"/experiments/{name}", json=body)

    def enqueue(
        self, name: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Enqueue one parameter set (or several) to try before the algorithm's suggestions.

        Returns ``{"enqueued": ..., "pending": ...}``; a point outside the space raises
        :class:`SpecError` with paths ``points[i].<parameter>``.
        """
        points = [dict(params)] if isinstance(params, Mapping) else [dict(p) for p in params]
        return self._json("POST", f"/experiments/{name}/enqueue", json={"points": points})

    # -- trials and results --------------------------------------------------------------

    def leaderboard_rows(
        self,
        name: str,
        *,
        limit: int = 20,
        offset: int = 0,
        metric: str | None = None,
        status: str | Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Leaderboard rows, best first, as ``tuner leaderboard --json`` prints them.

        ``status``: states (or comma lists, or ``"all"``); by default only the trials that
        finished with their metrics (Succeeded, EarlyStopped).
        """
        params = _params(limit=limit, offset=offset, metric=metric, status=status)
        return self._json_list("GET", f"/experiments/{name}/leaderboard", params=params)

    def leaderboard(
        self,
        name: str,
        *,
        limit: int = 20,
        offset: int = 0,
        metric: str | None = None,
        status: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The leaderboard as a DataFrame, best first (by default Succeeded and EarlyStopped
        trials only; ``status`` as in :meth:`leaderboard_rows`).

        Columns: ``trial``, ``status``, ``objective``, one per parameter (spec order), one per
        metric (the objective first), ``steps``, ``reason``. A parameter or metric name that
        clashes with another column gets a ``parameters.`` or ``metrics.`` prefix.
        """
        import pandas as pd

        parameters, metrics = self._names(name)
        rows = self.leaderboard_rows(name, limit=limit, offset=offset, metric=metric, status=status)
        columns, records = flatten_rows(rows, parameters, metrics)
        return _numeric(pd.DataFrame.from_records(records, columns=columns), parameters, metrics)

    def pareto_rows(self, name: str) -> list[dict[str, Any]]:
        """The Pareto front's rows (leaderboard-shaped), as ``tuner pareto --json`` prints them."""
        return self._json_list("GET", f"/experiments/{name}/pareto")

    def pareto(self, name: str) -> pd.DataFrame:
        """The Pareto front as a DataFrame, in creation order, with the leaderboard's columns."""
        import pandas as pd

        parameters, metrics = self._names(name)
        columns, records = flatten_rows(self.pareto_rows(name), parameters, metrics)
        return _numeric(pd.DataFrame.from_records(records, columns=columns), parameters, metrics)

    def trial_rows(
        self, name: str, *, state: str | Iterable[str] | None = None, page: int = 1000
    ) -> list[dict[str, Any]]:
        """Every trial (all pages), in creation order, as the API returns them."""
        out: list[dict[str, Any]] = []
        while True:
            params = _params(limit=page, offset=len(out), state=state)
            batch = self._json_list("GET", f"/experiments/{name}/trials", params=params)
            out += batch
            if len(batch) < page:
                return out

    def trials(self, name: str, *, state: str | Iterable[str] | None = None) -> pd.DataFrame:
        """Every trial as a DataFrame (creation order), with parameter and metric columns."""
        import pandas as pd

        parameters, metrics = self._names(name)
        rows = self.trial_rows(name, state=state)
        extra = ("number", "message", "createdAt", "startedAt", "finishedAt")
        columns, records = flatten_rows(rows, parameters, metrics, extra=extra)
        frame = _numeric(pd.DataFrame.from_records(records, columns=columns), parameters, metrics)
        for column in ("createdAt", "startedAt", "finishedAt"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def trial(self, name: str, trial: str) -> dict[str, Any]:
        return self._json("GET", f"/experiments/{name}/trials/{trial}")

    def observations(self, name: str, trial: str, metric: str | None = None) -> pd.DataFrame:
        """A trial's metric curves: columns ``metric``, ``step``, ``value``, ``time``."""
        import pandas as pd

        data = self._json(
            "GET", f"/experiments/{name}/trials/{trial}/observations", params=_params(metric=metric)
        )
        records = [
            {"metric": m, "step": p["step"], "value": p["value"], "time": p["time"]}
            for m, points in data["metrics"].items()
            for p in points
        ]
        frame = pd.DataFrame.from_records(records, columns=["metric", "step", "value", "time"])
        frame["value"] = frame["value"].astype(float)
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
        return frame

    def logs(self, name: str, trial: str) -> str:
        return self._request("GET", f"/experiments/{name}/trials/{trial}/logs").text

    # -- ask / tell ----------------------------------------------------------------------

    def ask(self, name: str, count: int = 1) -> list[TrialAssignment]:
        """New Running trials of an ask/tell experiment (at most ``count``; none when the
        experiment has ended or no slot is free: complete running trials first)."""
        data = self._json("POST", f"/experiments/{name}/suggestions", json={"count": count})
        return self._assignments(name, data)

    def open_trials(self, name: str) -> list[TrialAssignment]:
        """The trials of an ask/tell experiment asked for (by any client) and not told yet:
        after a notebook restart, go on with them by name. Those silent for longer than the
        server's ``--ask-timeout`` have expired (Killed, ``AskExpired``) and are not listed."""
        return self._assignments(name, self._json("GET", f"/experiments/{name}/suggestions"))

    def report(
        self,
        name: str,
        trial: str | TrialAssignment,
        metrics: Mapping[str, float],
        step: int | None = None,
    ) -> bool:
        """Report intermediate values of an ask/tell trial; returns whether it should stop."""
        trial_name, headers = self._trial_auth(name, trial)
        data = self._json(
            "POST",
            f"/experiments/{name}/trials/{trial_name}/observations",
            json={"step": step, "metrics": dict(metrics)},
            headers=headers,
        )
        return bool(data["should_stop"])

    def tell(
        self,
        name: str,
        trial: str | TrialAssignment,
        metrics: Mapping[str, float] | None = None,
        *,
        failed: bool = False,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Finish an ask/tell trial with its final metric values (or as failed). ``trial``
        may be the name of a trial any client asked for (see :meth:`open_trials`)."""
        trial_name, headers = self._trial_auth(name, trial)
        body: dict[str, Any] = {
            "status": "Failed" if failed else "Succeeded",
            "metrics": dict(metrics or {}),
        }
        if message is not None:
            body["message"] = message
        return self._json(
            "POST",
            f"/experiments/{name}/trials/{trial_name}/complete",
            json=body,
            headers=headers,
        )

    # -- plumbing ------------------------------------------------------------------------

    def _names(self, name: str) -> tuple[list[str], list[str]]:
        """Parameter names in spec order, and metric names with the objective first."""
        spec = self.get(name)["spec"]
        objective = spec["objective"]
        metrics = [objective["objectiveMetricName"], *objective.get("additionalMetricNames", [])]
        return [p["name"] for p in spec.get("parameters", [])], metrics

    def _assignments(self, name: str, data: dict[str, Any]) -> list[TrialAssignment]:
        out = []
        for t in data["trials"]:
            self._trial_tokens[(self.namespace, name, t["trial"])] = t["token"]
            out.append(TrialAssignment(name, t["trial"], dict(t["parameters"]), t["token"]))
        return out

    def _trial_auth(self, name: str, trial: str | TrialAssignment) -> tuple[str, dict[str, str]]:
        """The trial's name and the headers that let this client act for it: with an API
        token that is enough; an open server lists the tokens of open trials."""
        if isinstance(trial, TrialAssignment):
            return trial.name, {TRIAL_TOKEN_HEADER: trial.token}
        key = (self.namespace, name, trial)
        if key not in self._trial_tokens and not self._has_api_token:
            self.open_trials(name)
            if key not in self._trial_tokens:
                found = self.trial(name, trial)  # NotFound for an unknown trial
                why = f" ({found['reason']})" if found.get("reason") else ""
                raise Conflict(f"trial {trial} is not open: it is {found['status']}{why}")
        token = self._trial_tokens.get(key)
        return trial, ({TRIAL_TOKEN_HEADER: token} if token else {})

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = self._request(method, path, **kwargs).json()
        if not isinstance(data, dict):
            raise TunerError(f"unexpected answer from {path}: {type(data).__name__}")
        return data

    def _json_list(self, method: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        data = self._request(method, path, **kwargs).json()
        if not isinstance(data, list):
            raise TunerError(f"unexpected answer from {path}: {type(data).__name__}")
        return data

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        ns: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        query = {"namespace": self.namespace} if ns else {}
        query.update(params or {})
        try:
            response = self._http.request(method, API + path, params=query, **kwargs)
        except httpx.TransportError as e:
            raise TunerError(f"cannot reach the tuner server at {self.url}: {e}") from e
        if response.is_success:
            return response
        raise _error(response)

    # Last in the class: a method named `list` would shadow the builtin in later annotations.
    def list(
        self, status: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[dict[str, Any]]:
        """Experiments of the namespace, newest first, optionally only in phase ``status``."""
        return self.list_experiments(status, limit=limit, offset=offset)


def _params(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, str | int | float) else list(value)
    return out


def _error(response: httpx.Response) -> TunerError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or response.text or response.reason_phrase)
    if response.status_code == 422:
        errors = [
            FieldError(str(e.get("path")), str(e.get("message")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        error = SpecError(errors or [FieldError("<request>", detail)])
        error.message = detail
        error.args = (detail,)
        return error
    cls = _ERRORS.get(response.status_code)
    if cls is not None:
        return cls(detail)
    return TunerError(f"server error {response.status_code}: {detail}")


def _progress_bar(experiment: dict[str, Any], file: TextIO | None) -> Any:
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    total = experiment["spec"].get("maxTrialCount")
    return tqdm(total=total, desc=experiment["metadata"]["name"], unit="trial", file=file)


def _update_bar(bar: Any, experiment: dict[str, Any]) -> None:
    status = experiment["status"]
    counts = status["trialCounts"]
    done = sum(n for state, n in counts.items() if state in TRIAL_FINISHED)
    bar.update(done - bar.n)
    optimal = status.get("currentOptimalTrial")
    if isinstance(optimal, list):  # several objectives: the front has no single best
        optimal = None
    postfix: dict[str, Any] = {
        "phase": status["phase"],
        "running": counts.get("Running", 0) + counts.get("Created", 0),
    }
    if optimal:
        objective = experiment["spec"]["objective"]["objectiveMetricName"]
        for metric in optimal["observation"]["metrics"]:
            if metric["name"] == objective and metric["value"] is not None:
                postfix[f"best {objective}"] = f"{metric['value']:.4g}"
    bar.set_postfix(postfix, refresh=True)


def _numeric(
    frame: pd.DataFrame, parameters: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """Metric columns as floats: the API writes non-finite values as "NaN", "Infinity"."""
    taken = {*parameters, *BASE_COLUMNS, *TAIL_COLUMNS}
    columns = [f"metrics.{m}" if m in taken else m for m in metrics]
    for column in ("objective", *columns):
        if column in frame.columns:
            frame[column] = frame[column].astype(float)
    return frame
