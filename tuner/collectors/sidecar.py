"""The ``Custom`` collector on Kubernetes: the user's collector container as a sidecar.

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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.spec import ExperimentSpec

METRICS_VOLUME = "metrics-volume"


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
    names = {e.get("name") for e in given}
    sidecar["env"] = given + [{"name": k, "value": v} for k, v in env.items() if k not in names]
    pod_spec.setdefault("containers", []).append(sidecar)
    pod_spec["shareProcessNamespace"] = True
    fsp = mc.source.file_system_path if mc.source is not None else None
    if fsp is None or not fsp.path:
        return
    directory = fsp.path if fsp.kind is not None and fsp.kind.value == "Directory" else None
    mount = {"name": METRICS_VOLUME, "mountPath": directory or posixpath.dirname(fsp.path)}
    for container in (primary, sidecar):
        mounts = container.setdefault("volumeMounts", [])
        if not any(m.get("name") == METRICS_VOLUME for m in mounts if isinstance(m, dict)):
            mounts.append(dict(mount))
    volumes = pod_spec.setdefault("volumes", [])
    if not any(v.get("name") == METRICS_VOLUME for v in volumes if isinstance(v, dict)):
        volumes.append({"name": METRICS_VOLUME, "emptyDir": {}})
