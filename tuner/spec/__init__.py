"""The Experiment spec: Katib ``kubeflow.org/v1beta1`` accepted unchanged, plus our extensions.

Parsing happens in two passes, and both report every problem with a Katib-style field path
(``spec.parameters[1].feasibleSpace.min``):

1. structure, by pydantic (:mod:`tuner.spec.models`: unknown fields, wrong types);
2. Katib's semantic rules (:mod:`tuner.spec.validation`: budgets, feasible spaces, template
   references, collectors, algorithm and early-stopping settings).

Use :func:`load_spec` for any user input. A loaded spec's typed view, the one the algorithms
and stopping rules read, is ``experiment.spec.study`` (:class:`tuner.space.Study`).
"""

from tuner.spec.defaults import JOB_FAILURE_CONDITION, JOB_SUCCESS_CONDITION, apply_defaults
from tuner.spec.loading import format_path, load_spec
from tuner.spec.models import (
    AlgorithmSetting,
    AlgorithmSpec,
    CollectorKind,
    CollectorSpec,
    ConfigMapSource,
    Distribution,
    EarlyStoppingSetting,
    EarlyStoppingSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    FileFormat,
    FileSystemKind,
    FileSystemPath,
    FilterSpec,
    KatibStr,
    MetricsCollectorSpec,
    MetricStrategy,
    MetricStrategyType,
    Objective,
    ObjectiveType,
    ObjectMeta,
    ParameterSpec,
    ParameterType,
    ResumePolicy,
    SourceSpec,
    TrialParameterSpec,
    TrialTemplate,
    job_containers,
)
from tuner.spec.trial_rules import TRIAL_PARAM_REF
from tuner.spec.validation import spec_warnings, validate

__all__ = [
    "JOB_FAILURE_CONDITION",
    "JOB_SUCCESS_CONDITION",
    "TRIAL_PARAM_REF",
    "AlgorithmSetting",
    "AlgorithmSpec",
    "CollectorKind",
    "CollectorSpec",
    "ConfigMapSource",
    "Distribution",
    "EarlyStoppingSetting",
    "EarlyStoppingSpec",
    "Experiment",
    "ExperimentSpec",
    "FeasibleSpace",
    "FileFormat",
    "FileSystemKind",
    "FileSystemPath",
    "FilterSpec",
    "KatibStr",
    "MetricStrategy",
    "MetricStrategyType",
    "MetricsCollectorSpec",
    "ObjectMeta",
    "Objective",
    "ObjectiveType",
    "ParameterSpec",
    "ParameterType",
    "ResumePolicy",
    "SourceSpec",
    "TrialParameterSpec",
    "TrialTemplate",
    "apply_defaults",
    "format_path",
    "job_containers",
    "load_spec",
    "spec_warnings",
    "validate",
]
