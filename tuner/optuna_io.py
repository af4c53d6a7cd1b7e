"""An experiment as an Optuna study and back: export to any Optuna storage, import from one.

An exported study opens unchanged in ``optuna.load_study``, ``optuna.visualization`` and
``optuna-dashboard``. Mapping, both ways:

=======================================  =====================================================
tuner                                    Optuna
=======================================  =====================================================
``int`` (step, ``logUniform``)           ``IntDistribution(low, high, step, log)``
``double`` (step, ``logUniform``)        ``FloatDistribution(low, high, step, log)``
``discrete`` (numbers)                   ``CategoricalDistribution`` of the numbers
``categorical`` (strings)                ``CategoricalDistribution`` of the strings
``Succeeded`` with an objective          ``COMPLETE`` with that value
``EarlyStopped``                         ``PRUNED`` (with its objective value when it has one)
``Failed``, ``MetricsUnavailable``,      ``FAIL``
``Killed``, ``Succeeded`` without value
``Running`` / ``Created``                ``RUNNING`` / ``WAITING``
the objective metric's reports by step   intermediate values
=======================================  =====================================================

Exported trials carry ``tuner_trial``, ``tuner_state`` (and ``tuner_reason``) and the
additional metrics as user attributes, so nothing tuner knows is lost. A trial imported from
Optuna keeps its number, user attributes and the step of its final value in
``attrs["optuna"]``; exporting it again gives back exactly those, so a study that goes to
tuner and back is the same study (values, states, parameters, intermediate values, user
attributes). Unfinished Optuna trials (``RUNNING``, ``WAITING``) are not imported: they have
no result, and nobody would finish them.

On import, the final value of a trial is stored as one more report of the objective metric,
one step after its intermediate values, and the objective's strategy is ``latest``: the trial's
objective is then exactly Optuna's value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState
from sqlalchemy.exc import SQLAlchemyError

from tuner.algorithms import space as optuna_space
from tuner.errors import Conflict, InvalidRequest, NotFound
from tuner.spec import Experiment, load_spec
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.repository import utcnow
from tuner.trials import ExperimentPhase, Observation, Trial, TrialState

__all__ = ["STUDY_ANNOTATION", "Transfer", "export_study", "import_study"]

STUDY_ANNOTATION = "tuner.dev/optuna-study"
"""Annotation of an imported experiment: the study's name and user attributes (JSON)."""
IMPORTED_REASON = "OptunaStudyImported"
IMPORTED_ATTR = "optuna"


@dataclass(frozen=True)
class Transfer:
    """What an import or export did: the experiment and study, trials moved and left out."""

    experiment: str
    study: str
    trials: int
    skipped: int


def _naive(t: datetime | None) -> datetime | None:
    """Optuna stores local naive times (its own ``datetime.now()``)."""
    return None if t is None else t.astimezone().replace(tzinfo=None)


def _storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage of ``url`` (an RDB URL such as ``sqlite:///study.db``).

    Raises:
        InvalidRequest: the URL names no storage Optuna can open.
    """
    try:
        return optuna.storages.get_storage(url)
    except (ValueError, ImportError, SQLAlchemyError) as e:
        raise InvalidRequest(f"cannot open the Optuna storage {url!r}: {e}") from e


# -- export --------------------------------------------------------------------------------


def _optuna_state(trial: Trial) -> tuple[OptunaState, float | None]:
    value = trial.objective if trial.objective is not None else None
    if value is not None and not math.isfinite(value):
        value = None
    if trial.state is TrialState.SUCCEEDED and value is not None:
        return OptunaState.COMPLETE, value
    if trial.state is TrialState.EARLY_STOPPED:
        return OptunaState.PRUNED, value
    if trial.state is TrialState.RUNNING:
        return OptunaState.RUNNING, None
    if trial.state is TrialState.CREATED:
        return OptunaState.WAITING, None
    return OptunaState.FAIL, None


def _user_attrs(trial: Trial) -> dict[str, Any]:
    imported = trial.attrs.get(IMPORTED_ATTR)
    if isinstance(imported, Mapping):
        return dict(imported.get("user_attrs") or {})
    attrs: dict[str, Any] = {"tuner_trial": trial.name, "tuner_state": trial.state.value}
    if trial.reason:
        attrs["tuner_reason"] = trial.reason
    for name, value in trial.metrics.items():
        if math.isfinite(value):
            attrs[f"tuner_metric_{name}"] = value
    return attrs


def _intermediate(trial: Trial) -> dict[int, float]:
    imported = trial.attrs.get(IMPORTED_ATTR)
    value_step = imported.get("value_step") if isinstance(imported, Mapping) else None
    return {step: value for step, value in trial.curve if step != value_step}


def _frozen(
    trial: Trial, number: int, params: dict[str, Any], dists: dict[str, BaseDistribution]
) -> FrozenTrial:
    state, value = _optuna_state(trial)
    start = None if state is OptunaState.WAITING else (trial.started_at or trial.created_at)
    return FrozenTrial(
        number=number,
        state=state,
        value=value,
        datetime_start=_naive(start),
        datetime_complete=_naive(trial.finished_at) if state.is_finished() else None,
        params=params,
        distributions=dists,
        user_attrs=_user_attrs(trial),
        system_attrs={},
        intermediate_values=_intermediate(trial),
        trial_id=number,
    )


def export_study(
    repo: Repository, record: ExperimentRecord, storage: str, study_name: str | None = None
) -> Transfer:
    """Write the experiment's trials as a new study of the Optuna ``storage`` (a URL).

    Raises:
        Conflict: the storage already has a study of that name.
        InvalidRequest: the space has a parameter Optuna cannot represent.
    """
    spec = record.experiment.spec
    problems = optuna_space.space_problems(spec.space)
    if problems:
        raise InvalidRequest("cannot export to Optuna: " + "; ".join(problems))
    name = study_name or record.name
    minimize = spec.objective.domain.minimize
    direction = StudyDirection.MINIMIZE if minimize else StudyDirection.MAXIMIZE
    try:
        study = optuna.create_study(storage=_storage(storage), study_name=name, direction=direction)
    except optuna.exceptions.DuplicatedStudyError as e:
        raise Conflict(f"the Optuna storage already has a study named {name!r}") from e
    annotation = record.experiment.metadata.annotations.get(STUDY_ANNOTATION)
    study_attrs = json.loads(annotation).get("user_attrs", {}) if annotation else {}
    if not annotation:
        study_attrs = {
            "tuner_experiment": f"{record.namespace}/{record.name}",
            "tuner_objective": spec.objective.objective_metric_name,
        }
    for key, value in study_attrs.items():
        study.set_user_attr(key, value)
    parameters = list(spec.space)
    dists = optuna_space.distributions(spec.space)
    exported = skipped = 0
    for trial in repo.history(record.id, with_curves=True):
        params = optuna_space.optuna_params(parameters, dists, trial.parameters)
        if params is None:  # not in the current space (the spec changed since)
            skipped += 1
            continue
        study.add_trial(_frozen(trial, exported, params, dists))
        exported += 1
    return Transfer(f"{record.namespace}/{record.name}", name, exported, skipped)


# -- import --------------------------------------------------------------------------------


def parameter_spec(name: str, dist: BaseDistribution) -> dict[str, Any]:
    """The Katib parameter of an Optuna distribution.

    Raises:
        InvalidRequest: a categorical mixes types or holds values Katib cannot write.
    """
    if isinstance(dist, IntDistribution):
        space: dict[str, Any] = {"min": str(dist.low), "max": str(dist.high)}
        if dist.step != 1:
            space["step"] = str(dist.step)
        if dist.log:
            space["distribution"] = "logUniform"
        return {"name": name, "parameterType": "int", "feasibleSpace": space}
    if isinstance(dist, FloatDistribution):
        space = {"min": repr(float(dist.low)), "max": repr(float(dist.high))}
        if dist.step is not None:
            space["step"] = repr(float(dist.step))
        if dist.log:
            space["distribution"] = "logUniform"
        return {"name": name, "parameterType": "double", "feasibleSpace": space}
    if isinstance(dist, CategoricalDistribution):
        choices = list(dist.choices)
        if all(isinstance(c, str) for c in choices):
            return {
                "name": name,
                "parameterType": "categorical",
                "feasibleSpace": {"list": choices},
            }
        numbers = [c for c in choices if isinstance(c, int | float) and not isinstance(c, bool)]
        if len(numbers) == len(choices):
            texts = [str(c) if isinstance(c, int) else repr(c) for c in numbers]
            return {"name": name, "parameterType": "discrete", "feasibleSpace": {"list": texts}}
    raise InvalidRequest(
        f"parameter {name!r}: {dist!r} has no Katib parameter type (categoricals must be all "
        "strings or all numbers)"
    )


def _space_of(trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
    dists: dict[str, BaseDistribution] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if dists.setdefault(name, dist) != dist:
                raise InvalidRequest(
                    f"parameter {name!r} has different distributions in different trials "
                    f"({dists[name]!r} and {dist!r}): tuner keeps one search space"
                )
    for t in trials:
        missing = [n for n in dists if n not in t.params]
        if missing:
            raise InvalidRequest(
                f"trial {t.number} has no value for {missing} (a conditional search space): "
                "tuner gives every trial every parameter"
            )
    return dists


_STATES = {
    OptunaState.COMPLETE: TrialState.SUCCEEDED,
    OptunaState.PRUNED: TrialState.EARLY_STOPPED,
    OptunaState.FAIL: TrialState.FAILED,
}


def _experiment(
    study: optuna.Study,
    dists: Mapping[str, BaseDistribution],
    name: str,
    namespace: str,
    metric: str,
    algorithm: str,
) -> Experiment:
    direction = "minimize" if study.direction is StudyDirection.MINIMIZE else "maximize"
    annotation = json.dumps({"study": study.study_name, "user_attrs": study.user_attrs})
    return load_spec(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": {STUDY_ANNOTATION: annotation},
            },
            "spec": {
                "objective": {
                    "type": direction,
                    "objectiveMetricName": metric,
                    "metricStrategies": [{"name": metric, "value": "latest"}],
                },
                "algorithm": {"algorithmName": algorithm},
                "parameters": [parameter_spec(n, d) for n, d in dists.items()],
                "metricsCollectorSpec": {"collector": {"kind": "Push"}},
            },
        }
    )


def import_study(
    repo: Repository,
    storage: str,
    study_name: str,
    *,
    experiment: str | None = None,
    namespace: str = "default",
    metric: str = "value",
    algorithm: str = "tpe",
) -> Transfer:
    """Store an Optuna study as a new ask/tell experiment with its finished trials.

    Raises:
        NotFound: the storage has no such study.
        InvalidRequest: a study tuner cannot hold (several objectives, a conditional space).
        SpecError: the experiment name or a parameter is not valid in a spec.
        Conflict: the experiment exists.
    """
    try:
        study = optuna.load_study(study_name=study_name, storage=_storage(storage))
    except KeyError as e:
        raise NotFound(f"the Optuna storage has no study named {study_name!r}") from e
    if len(study.directions) != 1:
        raise InvalidRequest(
            f"study {study_name!r} has {len(study.directions)} objectives: import-optuna takes "
            "single-objective studies"
        )
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in _STATES]
    dists = _space_of(finished)
    if not dists:
        raise InvalidRequest(f"study {study_name!r} has no finished trial with parameters")
    name = experiment or study_name.lower().replace("_", "-")
    spec = _experiment(study, dists, name, namespace, metric, algorithm)
    record = repo.create_experiment(spec)
    space = spec.spec.space
    rows = []
    for t in finished:
        last = max(t.intermediate_values, default=-1)
        value_step = last + 1 if t.value is not None else None
        attrs = {"number": t.number, "user_attrs": t.user_attrs, "value_step": value_step}
        rows.append((space.convert(t.params), {IMPORTED_ATTR: attrs}))
    for t, trial in zip(finished, repo.create_trials(record, rows), strict=True):
        repo.mark_running(record.id, trial.name, "optuna-import")
        now = utcnow()
        steps = t.intermediate_values
        observations = [Observation(metric, step, float(v), now) for step, v in steps.items()]
        if t.value is not None:
            observations.append(Observation(metric, max(steps, default=-1) + 1, t.value, now))
        if observations:
            repo.add_observations(record, trial.name, observations)
        repo.finish_trial(record.id, trial.name, _STATES[t.state], reason=IMPORTED_REASON)
    repo.set_phase(
        record.id,
        ExperimentPhase.SUCCEEDED,
        IMPORTED_REASON,
        f"imported from Optuna study {study_name!r}: {len(finished)} finished trials",
    )
    skipped = len(study.trials) - len(finished)
    return Transfer(f"{namespace}/{name}", study_name, len(finished), skipped)
