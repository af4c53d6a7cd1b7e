"""``tuner suggestion-service --algorithm X``: one of tuner's algorithms behind Katib's
Suggestion API, for Katib (or another tuner) to call.

Each call is answered from the request alone, as tuner's algorithms are pure functions of the
trial history: the study comes from the experiment, the suggestions from the trials. A
suggester is kept per experiment (the same experiment message: name, space, objective and
settings), for speed only, as the controller keeps its own: it catches up with the history it
is given, and a restarted service rebuilds it from the next request.

The algorithm served is always ``X``; the request's ``algorithm_name`` is not consulted (a
Katib installation routes names to services, and a tuner spec may call it anything), its
settings are.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent import futures
from typing import Any

from tuner.algorithms.base import Suggester
from tuner.algorithms.registry import create_suggester, validate_algorithm
from tuner.katib_grpc.convert import study_of_message, trials_of_message
from tuner.katib_grpc.protos import api
from tuner.katib_grpc.remote import ATTRS_LABEL
from tuner.space import AlgorithmChoice, SpaceError, Study

log = logging.getLogger(__name__)


CACHED_SUGGESTERS = 64


class SuggestionService:
    """The servicer of Katib's ``Suggestion`` service for one of tuner's algorithms."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._suggesters: OrderedDict[bytes, tuple[threading.Lock, Suggester]] = OrderedDict()
        self._lock = threading.Lock()

    def _suggester(self, experiment: Any, study: Study) -> tuple[threading.Lock, Suggester]:
        key = experiment.SerializeToString(deterministic=True)
        with self._lock:
            entry = self._suggesters.get(key)
            if entry is None:
                entry = (threading.Lock(), create_suggester(study))
                self._suggesters[key] = entry
                if len(self._suggesters) > CACHED_SUGGESTERS:
                    self._suggesters.popitem(last=False)
            self._suggesters.move_to_end(key)
            return entry

    def _study(self, experiment: Any, context: Any) -> Study:
        import grpc

        messages, _ = api()
        try:
            study = study_of_message(messages, experiment)
        except (SpaceError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"experiment: {e}")
        return Study(
            space=study.space,
            objective=study.objective,
            algorithm=AlgorithmChoice(self.algorithm, dict(study.algorithm.settings)),
            parallel_trial_count=study.parallel_trial_count,
        )

    def ValidateAlgorithmSettings(self, request: Any, context: Any) -> Any:
        import grpc

        messages, _ = api()
        study = self._study(request.experiment, context)
        problems = validate_algorithm(self.algorithm, study.algorithm.settings, study)
        if problems:
            text = "; ".join(f"{k}: {m}" if k else m for k, m in problems)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{self.algorithm}: {text}")
        return messages.ValidateAlgorithmSettingsReply()

    def GetSuggestions(self, request: Any, context: Any) -> Any:
        import grpc

        messages, _ = api()
        study = self._study(request.experiment, context)
        problems = validate_algorithm(self.algorithm, study.algorithm.settings, study)
        if problems:
            text = "; ".join(f"{k}: {m}" if k else m for k, m in problems)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{self.algorithm}: {text}")
        try:
            history = trials_of_message(messages, study, request.trials)
        except (KeyError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"trials: {e!r}")
        for message, trial in zip(request.trials, history, strict=True):
            if ATTRS_LABEL in message.spec.labels:
                trial.attrs = json.loads(message.spec.labels[ATTRS_LABEL])
        count = max(0, request.current_request_number)
        lock, suggester = self._suggester(request.experiment, study)
        with lock:
            suggestions = suggester.suggest(history, count)
        reply = messages.GetSuggestionsReply()
        for s in suggestions:
            entry = reply.parameter_assignments.add()
            for name, value in s.parameters.items():
                text = repr(value) if isinstance(value, float) else str(value)
                entry.assignments.add(name=name, value=text)
            if s.attrs:
                entry.labels[ATTRS_LABEL] = json.dumps(s.attrs)
        return reply


def start_server(algorithm: str, host: str, port: int, workers: int = 4) -> Any:
    """Start a gRPC server of ``algorithm`` on ``host:port``; returns it (and its port)."""
    import grpc

    _, services = api()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    services.add_SuggestionServicer_to_server(SuggestionService(algorithm), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


def serve_forever(algorithm: str, host: str, port: int, stop: threading.Event) -> None:
    """Serve until ``stop`` is set (the command's signal handler sets it)."""
    server, bound = start_server(algorithm, host, port)
    log.info("Katib Suggestion API for algorithm %s on %s:%d", algorithm, host, bound)
    print(f"tuner suggestion-service: {algorithm} on {host}:{bound}", flush=True)
    stop.wait()
    server.stop(grace=2).wait()
