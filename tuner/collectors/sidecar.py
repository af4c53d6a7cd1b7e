"""Collector sidecars on Kubernetes: the user's ``Custom`` collector container, and tuner's own
relay for ``File`` and ``TensorFlowEvent`` (:mod:`tuner.collectors.relay`).

As Katib's Pod webhook does, the spec's ``collector.customCollector`` container joins the trial's
Pod next to the primary container; the Pod shares its process namespace (so the collector can
watch the training process end), and when ``source.fileSystemPath`` is given, an ``emptyDir``
volume named ``metrics-volume`` is mounted in both containers at the path's directory (the path
itself for kind ``Directory``). The sidecar gets the trial's ``TUNER_*`` environment too, so it
reports what it collects through the push API (``tuner.report``). It must end by itself when the
training process has ended, or the Job never completes.

Pure manifest editing (no Kubernetes client): :func:`tuner.k8s.jobs.job_manifest` calls it.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tuner import names
from tuner.collectors.relay import config_of

if TYPE_CHECKING:
    from tuner.spec import ExperimentSpec

METRICS_VOLUME = "metrics-volume"
COLLECTOR_CONTAINER = "tuner-metrics-collector"
"""The name of the File / TensorFlowEvent collector's sidecar container."""
RELAY_COMMAND = ("python", "-m", "tuner.collectors.relay")
"""How the sidecar starts the relay in the collector image (the tuner image)."""
DEFAULT_COLLECTOR_IMAGE = "tuner:latest"
"""The collector image when neither ``--collector-image`` nor ``TUNER_COLLECTOR_IMAGE`` names
one: the image ``deploy/`` builds and runs the service from."""


def add_custom_collector(
    pod_spec: dict[str, Any],
    primary: dict[str, Any],
    spec: ExperimentSpec,
    env: Mapping[str, str],
) -> None:
    """Add a Custom collector's sidecar to ``pod_spec`` (in place); nothing for other kinds."""
    mc = spec.metrics_collector_spec
    if mc.kind.value != "Custom" or not mc.collector.custom_collector:
        return
    sidecar = copy.deepcopy(dict(mc.collector.custom_collector))
    given = [e for e in sidecar.get("env") or [] if isinstance(e, dict)]
    named = {e.get("name") for e in given}
    sidecar["env"] = given + [{"name": k, "value": v} for k, v in env.items() if k not in named]
    pod_spec.setdefault("containers", []).append(sidecar)
    pod_spec["shareProcessNamespace"] = True
    _share_metrics_volume(pod_spec, (primary, sidecar), spec)


def add_file_collector(
    pod_spec: dict[str, Any],
    primary: dict[str, Any],
    spec: ExperimentSpec,
    env: Mapping[str, str],
    image: str,
    command: Sequence[str] = RELAY_COMMAND,
) -> None:
    """Add the metrics-collector sidecar of a File or TensorFlowEvent spec to ``pod_spec`` (in
    place; nothing for other kinds): ``command`` (the relay, :mod:`tuner.collectors.relay`)
    in ``image``, with the trial's ``TUNER_*`` environment, sharing the ``metrics-volume`` and
    the Pod's process namespace with the primary container."""
    mc = spec.metrics_collector_spec
    if mc.kind.value not in ("File", "TensorFlowEvent"):
        return
    sidecar_env = {**env, "PYTHONUNBUFFERED": "1", names.ENV_SIDECAR: "metrics-collector"}
    config = config_of(mc.dump(), spec.objective.dump())
    sidecar = {
        "name": COLLECTOR_CONTAINER,
        "image": image,
        "command": list(command),
        # Kubernetes expands $(VAR) in args; $$ keeps a filter's `$` as it is.
        "args": ["--config", config.replace("$", "$$")],
        "env": [{"name": k, "value": v} for k, v in sidecar_env.items()],
    }
    pod_spec.setdefault("containers", []).append(sidecar)
    pod_spec["shareProcessNamespace"] = True
    _share_metrics_volume(pod_spec, (primary, sidecar), spec)


def _share_metrics_volume(
    pod_spec: dict[str, Any], containers: Sequence[dict[str, Any]], spec: ExperimentSpec
) -> None:
    """Mount an ``emptyDir`` named ``metrics-volume`` in ``containers`` at the directory of the
    spec's ``fileSystemPath`` (the path itself for kind ``Directory``); nothing without one."""
    mc = spec.metrics_collector_spec
    fsp = mc.source.file_system_path if mc.source is not None else None
    if fsp is None or not fsp.path:
        return
    directory = fsp.path if fsp.kind is not None and fsp.kind.value == "Directory" else None
    mount = {"name": METRICS_VOLUME, "mountPath": directory or posixpath.dirname(fsp.path)}
    for container in containers:
        mounts = container.setdefault("volumeMounts", [])
        if not any(m.get("name") == METRICS_VOLUME for m in mounts if isinstance(m, dict)):
            mounts.append(dict(mount))
    volumes = pod_spec.setdefault("volumes", [])
    if not any(v.get("name") == METRICS_VOLUME for v in volumes if isinstance(v, dict)):
        volumes.append({"name": METRICS_VOLUME, "emptyDir": {}})
