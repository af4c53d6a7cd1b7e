"""Algorithms served by an external Katib Suggestion service, called over gRPC.

A spec names such an algorithm with the algorithm setting :data:`ADDRESS_SETTING`::

    algorithm:
      algorithmName: my-bayes          # any name: it is passed on to the service
      algorithmSettings:
        - {name: suggestionServiceAddress, value: "my-bayes.kubeflow:6789"}
        - {name: suggestionServiceTimeout, value: "30"}   # seconds per call, default 60
        - {name: random_state, value: "7"}                 # the rest go to the service

``tuner serve --suggestion-service NAME=HOST:PORT`` does the same for every spec whose
``algorithmName`` is ``NAME`` (:func:`tuner.algorithms.registry.use_suggestion_service`); the
address is written into such a spec when it is submitted (:func:`validate_remotely`).

The two ``suggestionService*`` settings are tuner's and are not sent; every other setting is.
The spec is checked here without a call (the address's shape); :func:`validate_remotely`
asks the service's ``ValidateAlgorithmSettings`` when the experiment is submitted to
``tuner serve``, and a refusal is a 422 naming the settings. The suggester calls
``GetSuggestions`` with the experiment, every trial with its metrics (under the spec's metric
strategies) and the counts, retrying an unreachable or overloaded service
(:data:`ATTEMPTS` calls, backing off) before it gives up with
:class:`~tuner.errors.SuggestionServiceError`, which fails the experiment with the reason.

Trial attributes a tuner algorithm keeps (Hyperband's bracket, PBT's generation) travel as
the label :data:`ATTRS_LABEL` (JSON), so that ``tuner suggestion-service`` serves those too.

The ``grpc`` extra is imported only when a call is made.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tuner.algorithms.base import Suggestion
from tuner.algorithms.registry import SERVICE_SETTING, service_settings
from tuner.errors import FieldError, GrpcMissing, SpecError, SuggestionServiceError
from tuner.space import Study
from tuner.trials import Trial

if TYPE_CHECKING:
    from tuner.spec import Experiment

ADDRESS_SETTING = SERVICE_SETTING
TIMEOUT_SETTING = "suggestionServiceTimeout"
OWN_SETTINGS = (ADDRESS_SETTING, TIMEOUT_SETTING)
ATTRS_LABEL = "tuner.dev/attrs"
DEFAULT_TIMEOUT = 60.0
VALIDATE_TIMEOUT = 10.0
ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the 2nd call, doubled for each next one
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


def valid_address(address: str) -> bool:
    """Whether ``address`` has the form ``HOST:PORT`` (``[IPv6]:PORT`` too)."""
    return _ADDRESS.match(address) is not None


def uses_service(settings: Mapping[str, str]) -> bool:
    return ADDRESS_SETTING in settings


def sent_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """The settings the service receives: all but tuner's own."""
    return {k: v for k, v in settings.items() if k not in OWN_SETTINGS}


def _timeout(settings: Mapping[str, str]) -> float:
    return float(settings.get(TIMEOUT_SETTING, DEFAULT_TIMEOUT))


def validate_settings(
    name: str, settings: Mapping[str, str], study: Study
) -> list[tuple[str, str]]:
    """Checks made without calling the service (a spec parses the same everywhere)."""
    problems: list[tuple[str, str]] = []
    address = settings.get(ADDRESS_SETTING, "")
    if not valid_address(address):
        problems.append((ADDRESS_SETTING, f"{address!r} is not an address of the form HOST:PORT"))
    if TIMEOUT_SETTING in settings:
        try:
            ok = 0 < _timeout(settings) <= 3600
        except ValueError:
            ok = False
        if not ok:
            problems.append((TIMEOUT_SETTING, "must be a number of seconds in (0, 3600]"))
    return problems


def create(name: str, settings: Mapping[str, str], study: Study) -> RemoteSuggester:
    return RemoteSuggester(settings[ADDRESS_SETTING], study, _timeout(settings))


def validate_remotely(experiment: Experiment) -> Experiment:
    """Ask the service of the experiment's algorithm, if it has one, to validate it.

    Returns the experiment, with the service's address written into its algorithm settings
    when it came from this process's table (``tuner serve --suggestion-service``), so that the
    stored spec names it wherever it is read.

    Raises:
        SpecError: the service refused the settings, or cannot be reached (field path of
            the address setting).
        GrpcMissing: the ``grpc`` extra is not installed.
    """
    algorithm = experiment.spec.algorithm
    settings = service_settings(algorithm.algorithm_name, algorithm.settings)
    if not uses_service(settings):
        return experiment
    if not uses_service(algorithm.settings):
        from tuner.spec import load_spec

        data = experiment.dump()
        written = data["spec"]["algorithm"].setdefault("algorithmSettings", [])
        written.append({"name": ADDRESS_SETTING, "value": settings[ADDRESS_SETTING]})
        experiment = load_spec(data)
        algorithm = experiment.spec.algorithm
    client = RemoteSuggester(settings[ADDRESS_SETTING], experiment.spec.study, _timeout(settings))
    try:
        client.validate(experiment.metadata.name)
    except SuggestionServiceError as e:
        index = next(
            i for i, s in enumerate(algorithm.algorithm_settings) if s.name == ADDRESS_SETTING
        )
        path = f"spec.algorithm.algorithmSettings[{index}].value"
        raise SpecError([FieldError(path, e.message)]) from e
    return experiment


class RemoteSuggester:
    """A :class:`~tuner.algorithms.base.Suggester` that asks a Katib Suggestion service."""

    def __init__(self, address: str, study: Study, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            import grpc
        except ImportError as e:
            raise GrpcMissing(
                f"algorithm {study.algorithm.name!r} is served at {address}: calling it needs "
                "the grpc extra: pip install 'tuner[grpc]'"
            ) from e
        from tuner.katib_grpc.protos import api

        self.address = address
        self.study = study
        self.timeout = timeout
        self._m, services = api()
        self._channel = grpc.insecure_channel(address)
        self._stub = services.SuggestionStub(self._channel)

    def _experiment(self, name: str) -> Any:
        from tuner.katib_grpc.convert import experiment_message

        settings = sent_settings(self.study.algorithm.settings)
        return experiment_message(self._m, name, self.study, settings)

    def validate(self, experiment_name: str) -> None:
        """``ValidateAlgorithmSettings``; SuggestionServiceError with the service's reason."""
        request = self._m.ValidateAlgorithmSettingsRequest(
            experiment=self._experiment(experiment_name)
        )
        # at submit, while a client waits: each attempt bounded by VALIDATE_TIMEOUT
        self._call("ValidateAlgorithmSettings", request, min(self.timeout, VALIDATE_TIMEOUT))

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        from tuner.katib_grpc.convert import objective_spec, trial_message

        objective = objective_spec(self._m, self.study.objective)
        trials = []
        for trial in history:
            message = trial_message(self._m, trial, objective)
            if trial.attrs:
                message.spec.labels[ATTRS_LABEL] = json.dumps(trial.attrs)
            trials.append(message)
        name = history[0].name.rsplit("-", 1)[0] if history else ""
        request = self._m.GetSuggestionsRequest(
            experiment=self._experiment(name),
            trials=trials,
            current_request_number=count,
            total_request_number=len(history) + count,
        )
        reply = self._call("GetSuggestions", request)
        return [self._suggestion(a) for a in reply.parameter_assignments[:count]]

    def _suggestion(self, assignment: Any) -> Suggestion:
        values = {a.name: a.value for a in assignment.assignments}
        try:
            parameters = self.study.space.convert(values)
        except (KeyError, ValueError) as e:
            raise SuggestionServiceError(
                f"the suggestion service at {self.address} answered an assignment this "
                f"experiment cannot use ({values}): {e!r}"
            ) from e
        outside = [k for k, v in parameters.items() if not self.study.space[k].contains(v)]
        if outside:
            raise SuggestionServiceError(
                f"the suggestion service at {self.address} suggested values outside the "
                f"feasible space of {', '.join(outside)}: {values}"
            )
        attrs: dict[str, Any] = {}
        if ATTRS_LABEL in assignment.labels:
            attrs = json.loads(assignment.labels[ATTRS_LABEL])
        return Suggestion(parameters, attrs)

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        import grpc

        retried = {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        }
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return getattr(self._stub, method)(request, timeout=timeout or self.timeout)
            except grpc.RpcError as e:
                code, details = e.code(), e.details()
                if code not in retried or attempt == ATTEMPTS:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise SuggestionServiceError(
                        f"{method} of the suggestion service at {self.address} for algorithm "
                        f"{self.study.algorithm.name!r} failed{tries}: {code.name}: {details}"
                    ) from e
            time.sleep(BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")
