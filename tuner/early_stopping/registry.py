"""Stopping rules by ``earlyStopping.algorithmName``: their settings schemas, and building them.

Every rule is checked against Optuna's pruners in the tests, but Optuna's are not used at run
time: they answer only yes/no (our reasons carry the numbers) and its successive halving keeps
rung outcomes in the study's storage, which is state a restart would lose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuner.algorithms.settings import Problems, Schema, Setting, bounded_float, integer
from tuner.early_stopping.asha import AshaRule
from tuner.early_stopping.base import CurveRule, EarlyStoppingRule, fmt
from tuner.early_stopping.hyperband import HyperbandRule
from tuner.early_stopping.median import MedianStopRule
from tuner.early_stopping.patience import PatienceRule
from tuner.early_stopping.percentile import PercentileRule
from tuner.early_stopping.threshold import ThresholdRule
from tuner.early_stopping.wilcoxon import WilcoxonRule
from tuner.errors import FieldError, SpecError
from tuner.space import HasStudy, Study, study_of

__all__ = ["create_rule", "rule_names", "schema", "validate_early_stopping"]

Checker = Callable[[Mapping[str, Any]], Problems]


@dataclass(frozen=True)
class _Entry:
    """A rule's settings (listed alphabetically, as users are told), its class, a cross-check."""

    settings: tuple[Setting, ...]
    rule: Callable[..., CurveRule]
    check: Checker | None = None


def _check_threshold(v: Mapping[str, Any]) -> Problems:
    lower, upper = v.get("lower"), v.get("upper")
    if lower is None and upper is None:
        return [("lower", "at least one of lower and upper is required")]
    if lower is not None and upper is not None and lower > upper:
        return [("upper", f"must be >= lower ({fmt(lower)}), got {fmt(upper)}")]
    return []


def _check_hyperband(v: Mapping[str, Any]) -> Problems:
    if "max_resource" in v and v["max_resource"] <= v["min_resource"]:
        return [("max_resource", f"must be greater than min_resource ({v['min_resource']})")]
    return []


_RULES: dict[str, _Entry] = {
    "asha": _Entry(
        (
            Setting("min_early_stopping_rate", integer(0), 0),
            Setting("min_resource", integer(1), 1, description="step of the first rung"),
            Setting("reduction_factor", integer(2), 3),
        ),
        AshaRule,
    ),
    "hyperband": _Entry(
        (
            Setting("max_resource", integer(1), required=True, description="the last step"),
            Setting("min_resource", integer(1), 1),
            Setting("reduction_factor", integer(2), 3),
        ),
        HyperbandRule,
        _check_hyperband,
    ),
    "medianstop": _Entry(
        (
            Setting("min_trials_required", integer(1), 3),
            Setting("start_step", integer(1), 4),
        ),
        MedianStopRule,
    ),
    "patience": _Entry(
        (
            Setting("min_delta", bounded_float(0.0), 0.0),
            Setting("patience", integer(1), required=True, description="reports in a row"),
        ),
        PatienceRule,
    ),
    "percentile": _Entry(
        (
            Setting("interval_steps", integer(1), 1),
            Setting("n_startup_trials", integer(0), 5),
            Setting("n_warmup_steps", integer(0), 0),
            Setting("percentile", bounded_float(0.0, 100.0), required=True),
        ),
        PercentileRule,
    ),
    "threshold": _Entry(
        (Setting("lower", bounded_float()), Setting("upper", bounded_float())),
        ThresholdRule,
        _check_threshold,
    ),
    "wilcoxon": _Entry(
        (
            Setting("n_startup_steps", integer(1), 2),
            Setting("p_threshold", bounded_float(0.0, 1.0, low_open=True), 0.1),
        ),
        WilcoxonRule,
    ),
}


def rule_names() -> list[str]:
    """Every ``earlyStopping.algorithmName`` this service knows, sorted."""
    return sorted(_RULES)


def schema(name: str) -> Schema:
    """The settings schema of rule ``name``.

    Raises:
        KeyError: no rule has that name.
    """
    return Schema(name, _RULES[name].settings)


def _parse(name: str, settings: Mapping[str, str]) -> tuple[dict[str, Any], Problems]:
    entry = _RULES.get(name)
    if entry is None:
        return {}, [
            ("", f"unknown early stopping algorithm {name!r}; known: {', '.join(rule_names())}")
        ]
    values, problems = schema(name).parse(settings)
    if not problems and entry.check is not None:
        problems += entry.check(values)
    return values, problems


def validate_early_stopping(
    name: str, settings: Mapping[str, str], study: Study | HasStudy | None = None
) -> Problems:
    """Problems with an early-stopping choice: ``[(setting name or "", message)]``.

    The rules' settings do not depend on the rest of the experiment; ``study`` is accepted so
    that every plug point is validated alike.
    """
    return _parse(name, settings)[1]


def create_rule(source: Study | HasStudy) -> EarlyStoppingRule | None:
    """The rule a study (or a validated spec, through its ``study``) asks for, if any.

    Raises:
        SpecError: the early-stopping settings are invalid (a spec that bypassed validation).
    """
    study = study_of(source)
    es = study.early_stopping
    if es is None:
        return None
    values, problems = _parse(es.name, es.settings)
    if problems:
        raise SpecError(
            [
                FieldError(
                    "spec.earlyStopping." + ("algorithmSettings" if key else "algorithmName"),
                    f"{key}: {message}" if key else message,
                )
                for key, message in problems
            ]
        )
    return _RULES[es.name].rule(minimize=study.objective.minimize, **values)
