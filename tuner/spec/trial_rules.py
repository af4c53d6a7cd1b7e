"""Katib's rules for ``spec.trialTemplate``: the source, the conditions, the trial parameters
and their substitutions, and (for a ``batch/v1`` Job) the Job's structure.

Only the spec is judged: a template from a ConfigMap, or a trial of another kind (a
PyTorchJob), is valid when Katib would accept it; the runner that cannot run it refuses it at
submit time (:meth:`tuner.runners.base.Runner.check`).
"""

from __future__ import annotations

import json
import re

from tuner.errors import FieldError
from tuner.spec.jobschema import job_structure_errors
from tuner.spec.models import ExperimentSpec, TrialTemplate, job_containers

PATH = "spec.trialTemplate"
TRIAL_PARAM_REF = re.compile(r"\$\{trialParameters\.([^}]*)\}")
_META_REF = re.compile(
    r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[[^\]]+\]|Annotations\[[^\]]+\])\}$"
)


def is_batch_job(template: TrialTemplate) -> bool:
    """Whether the trials are ``batch/v1`` Jobs written inline."""
    job = template.trial_spec
    return job is not None and job.get("apiVersion") == "batch/v1" and job.get("kind") == "Job"


def template_errors(spec: ExperimentSpec) -> list[FieldError]:
    tt = spec.trial_template
    if tt is None:
        return []  # an ask/tell experiment, driven from outside
    errors: list[FieldError] = []
    if not tt.success_condition or not tt.failure_condition:
        errors.append(
            FieldError(
                PATH,
                "successCondition and failureCondition must be specified (they are filled in "
                "only for a batch/v1 Job or a Kubeflow training job written in trialSpec)",
            )
        )
    if "trial_parameters" not in tt.model_fields_set:
        errors.append(
            FieldError(f"{PATH}.trialParameters", "must be specified (an empty list if none)")
        )
    if tt.trial_spec is None and tt.config_map is None:
        return [
            *errors,
            FieldError(f"{PATH}.trialSpec", "trialSpec or configMap must be specified"),
        ]
    if tt.trial_spec is not None and tt.config_map is not None:
        return [*errors, FieldError(PATH, "only one of trialSpec and configMap can be specified")]
    if tt.config_map is not None:
        cm = tt.config_map
        if not (cm.config_map_name and cm.config_map_namespace and cm.template_path):
            errors.append(
                FieldError(
                    f"{PATH}.configMap",
                    "configMapName, configMapNamespace and templatePath must be specified",
                )
            )
        errors += _trial_parameter_errors(spec, tt, None)
        return errors
    job = tt.trial_spec
    assert job is not None
    if not job.get("apiVersion") or not job.get("kind"):
        errors.append(FieldError(f"{PATH}.trialSpec", "apiVersion and kind must be specified"))
    meta = job.get("metadata") or {}
    if isinstance(meta, dict) and (meta.get("name") or meta.get("namespace")):
        errors.append(
            FieldError(
                f"{PATH}.trialSpec.metadata", "metadata.name and metadata.namespace must be omitted"
            )
        )
    if is_batch_job(tt):
        errors += _job_errors(tt)
    elif not tt.primary_container_name:
        errors.append(
            FieldError(f"{PATH}.primaryContainerName", "must be specified for this trial kind")
        )
    errors += _trial_parameter_errors(spec, tt, json.dumps(job))
    return errors


def _job_errors(tt: TrialTemplate) -> list[FieldError]:
    job = tt.trial_spec or {}
    errors = job_structure_errors(job, f"{PATH}.trialSpec")
    containers = job_containers(job)
    if not containers:
        errors.append(
            FieldError(
                f"{PATH}.trialSpec.spec.template.spec.containers",
                "must hold at least one container",
            )
        )
    names = [c.get("name") for c in containers]
    if tt.primary_container_name is None:
        if len(containers) > 1:
            errors.append(
                FieldError(
                    f"{PATH}.primaryContainerName",
                    "must be specified when the Job has several containers",
                )
            )
    elif containers and tt.primary_container_name not in names:
        errors.append(
            FieldError(
                f"{PATH}.primaryContainerName",
                f"{tt.primary_container_name!r} is not a container of the trialSpec "
                f"(containers: {names})",
            )
        )
    for i, c in enumerate(containers):
        cpath = f"{PATH}.trialSpec.spec.template.spec.containers[{i}]"
        for key in ("command", "args"):
            if key in c and not (
                isinstance(c[key], list) and all(isinstance(a, str | int | float) for a in c[key])
            ):
                errors.append(FieldError(f"{cpath}.{key}", "must be a list of strings"))
        env = c.get("env", [])
        if not isinstance(env, list) or not all(isinstance(e, dict) and "name" in e for e in env):
            errors.append(FieldError(f"{cpath}.env", "must be a list of {name, value} objects"))
    return errors


def _trial_parameter_errors(
    spec: ExperimentSpec, tt: TrialTemplate, text: str | None
) -> list[FieldError]:
    """The trial parameters' rules; ``text`` is the template as text (``None``: a ConfigMap's,
    which only the cluster can read, so its substitutions are not checked here)."""
    errors: list[FieldError] = []
    param_names = {p.name for p in spec.parameters}
    used = set(TRIAL_PARAM_REF.findall(text)) if text is not None else set()
    declared: set[str] = set()
    refs: set[str] = set()
    for i, tp in enumerate(tt.trial_parameters):
        ppath = f"{PATH}.trialParameters[{i}]"
        if not tp.name or "{" in tp.name or "}" in tp.name or not tp.reference:
            errors.append(
                FieldError(
                    ppath,
                    "name and reference must be specified and name must not contain '{' or '}'",
                )
            )
            continue
        if tp.name in declared:
            errors.append(
                FieldError(f"{ppath}.name", f"duplicate trial parameter name {tp.name!r}")
            )
            continue
        if tp.reference in refs:
            errors.append(FieldError(f"{ppath}.reference", f"duplicate reference {tp.reference!r}"))
            continue
        declared.add(tp.name)
        refs.add(tp.reference)
        if param_names and not _META_REF.match(tp.reference) and tp.reference not in param_names:
            errors.append(
                FieldError(
                    f"{ppath}.reference",
                    f"{tp.reference!r} is neither a parameter in spec.parameters "
                    f"({sorted(param_names)}) "
                    "nor a trial metadata reference such as ${trialSpec.Name}",
                )
            )
        if text is not None and tp.name not in used:
            errors.append(
                FieldError(
                    f"{ppath}.name",
                    f"trial parameter {tp.name!r} is never used in spec.trialTemplate.trialSpec "
                    f"as ${{trialParameters.{tp.name}}}",
                )
            )
    for name in sorted(used - declared):
        errors.append(
            FieldError(
                PATH,
                f"spec.trialTemplate.trialSpec references ${{trialParameters.{name}}}, "
                "which spec.trialTemplate.trialParameters does not declare",
            )
        )
    return errors
