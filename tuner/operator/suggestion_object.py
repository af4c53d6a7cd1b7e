"""Katib's ``Suggestion`` object (``suggestions.kubeflow.org``) of a ``kubeflow.org`` experiment,
for ``KatibClient.get_suggestion`` and ``kubectl get suggestions``.

tuner's algorithms run inside the service, so the object is only a summary, named like the
experiment, labelled and owned like its Trial objects: ``spec.algorithm`` (and ``earlyStopping``,
``resumePolicy``) from the experiment, ``spec.requests`` and ``status.suggestionCount`` the number
of trials made so far, and conditions ``Created`` (``SuggestionCreated``), ``Running``
(``SuggestionRunning``; ``False`` once the experiment ended) and, at the end, ``Succeeded`` or
``Failed`` with the experiment's reason. The assignments themselves (Katib's
``status.suggestions``) are left out: the Trial objects and the database have them.
"""

from __future__ import annotations

from typing import Any

from tuner.storage import ExperimentRecord
from tuner.trials import ExperimentPhase

SUGGESTIONS = "suggestions"


def _condition(type_: str, status: bool, reason: str | None, when: Any) -> dict[str, Any]:
    condition = {"type": type_, "status": "True" if status else "False", "reason": reason}
    if when is not None:
        stamp = when.isoformat()
        condition.update(lastTransitionTime=stamp, lastUpdateTime=stamp)
    return {k: v for k, v in condition.items() if v is not None}


def suggestion_spec(record: ExperimentRecord, trials: int) -> dict[str, Any]:
    """The Suggestion's spec: the experiment's algorithm and the trials requested so far."""
    spec = record.experiment.dump()["spec"]
    result = {
        "algorithm": spec.get("algorithm"),
        "earlyStopping": spec.get("earlyStopping"),
        "resumePolicy": spec.get("resumePolicy"),
        "requests": trials,
    }
    return {k: v for k, v in result.items() if v is not None}


def suggestion_status(record: ExperimentRecord, trials: int) -> dict[str, Any]:
    """The Suggestion's status: its count and Katib's conditions, from the experiment's phase."""
    phase = record.phase
    ended = phase.finished
    conditions = [_condition("Created", True, "SuggestionCreated", record.created_at)]
    if record.started_at is not None:
        when = record.completed_at if ended else record.started_at
        conditions.append(_condition("Running", not ended, "SuggestionRunning", when))
    if ended:
        final = "Succeeded" if phase is ExperimentPhase.SUCCEEDED else "Failed"
        conditions.append(_condition(final, True, record.reason, record.completed_at))
    status: dict[str, Any] = {"suggestionCount": trials, "conditions": conditions}
    if record.started_at is not None:
        status["startTime"] = record.started_at.isoformat()
    if ended and record.completed_at is not None:
        status["completionTime"] = record.completed_at.isoformat()
    return status
