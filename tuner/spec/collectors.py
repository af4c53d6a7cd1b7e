"""Katib's rules for ``spec.metricsCollectorSpec``, per collector kind.

They judge the spec, not a runner: a Katib-valid collector validates even where the runner at
hand cannot collect that way (the runner refuses it at submit time, see
:meth:`tuner.runners.base.Runner.check`). Defaults (a File collector's path and format, ...)
are already filled in by :mod:`tuner.spec.defaults`.
"""

from __future__ import annotations

import re
from typing import Any

from tuner.errors import FieldError
from tuner.spec.models import (
    CollectorKind,
    ExperimentSpec,
    FileFormat,
    FileSystemKind,
    FileSystemPath,
    MetricsCollectorSpec,
)

PATH = "spec.metricsCollectorSpec"
SOURCE = f"{PATH}.source"


def collector_errors(spec: ExperimentSpec) -> list[FieldError]:
    mc = spec.metrics_collector_spec
    kind = mc.kind
    fsp = mc.source.file_system_path if mc.source is not None else None
    errors: list[FieldError] = []
    if kind is CollectorKind.FILE:
        errors += _file_errors(mc, fsp)
    elif kind is CollectorKind.TF_EVENT:
        if fsp is None or fsp.kind is not FileSystemKind.DIRECTORY or not _absolute(fsp.path):
            errors.append(
                FieldError(
                    SOURCE,
                    "the absolute path of the directory where the trial writes TensorFlow event "
                    "files is required (source.fileSystemPath.path, kind Directory)",
                )
            )
        if fsp is not None and fsp.format is not None:
            errors.append(FieldError(f"{SOURCE}.fileSystemPath.format", "must be empty"))
    elif kind is CollectorKind.PROMETHEUS:
        errors += _prometheus_errors(mc.source.http_get if mc.source is not None else None)
    elif kind is CollectorKind.CUSTOM:
        if not mc.collector.custom_collector:
            errors.append(
                FieldError(
                    f"{PATH}.collector.customCollector",
                    "the collector container is required for collector kind Custom",
                )
            )
        if fsp is not None and (
            not _absolute(fsp.path)
            or fsp.kind not in (FileSystemKind.FILE, FileSystemKind.DIRECTORY)
        ):
            errors.append(
                FieldError(
                    f"{SOURCE}.fileSystemPath",
                    "an absolute path and a kind (File or Directory) are required",
                )
            )
    errors += _filter_errors(mc)
    if spec.trial_template is None and kind not in (
        CollectorKind.PUSH,
        CollectorKind.NONE,
        CollectorKind.STDOUT,
    ):
        errors.append(
            FieldError(
                f"{PATH}.collector.kind",
                "an experiment without trialTemplate is driven by ask/tell; use Push",
            )
        )
    return errors


def _absolute(path: str | None) -> bool:
    return bool(path) and str(path).startswith("/")


def _file_errors(mc: MetricsCollectorSpec, fsp: FileSystemPath | None) -> list[FieldError]:
    errors = []
    if fsp is None or fsp.kind is not FileSystemKind.FILE or not _absolute(fsp.path):
        errors.append(
            FieldError(
                f"{SOURCE}.fileSystemPath.path",
                "an absolute path of kind File where the trial writes its metrics is required",
            )
        )
    if fsp is None or fsp.format is None:
        errors.append(
            FieldError(
                f"{SOURCE}.fileSystemPath.format",
                "format of the metrics file is required (TEXT or JSON)",
            )
        )
    elif fsp.format is FileFormat.JSON and mc.source is not None and mc.source.filter is not None:
        errors.append(
            FieldError(f"{SOURCE}.filter", "filter must be omitted when the metrics file is JSON")
        )
    return errors


def _prometheus_errors(http: dict[str, Any] | None) -> list[FieldError]:
    http = http or {}
    errors = []
    port = http.get("port")
    if isinstance(port, bool) or not (
        (isinstance(port, int) and port > 0)
        or (isinstance(port, str) and port.isdigit() and int(port) > 0)
    ):
        errors.append(
            FieldError(
                f"{SOURCE}.httpGet.port",
                f"must be a positive integer for collector kind PrometheusMetric (got {port!r})",
            )
        )
    path = http.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        errors.append(
            FieldError(
                f"{SOURCE}.httpGet.path",
                f"must be an absolute URL path such as /metrics (got {path!r})",
            )
        )
    return errors


def _filter_errors(mc: MetricsCollectorSpec) -> list[FieldError]:
    if mc.source is None or mc.source.filter is None:
        return []
    errors = []
    for i, fmt in enumerate(mc.source.filter.metrics_format):
        path = f"{SOURCE}.filter.metricsFormat[{i}]"
        try:
            compiled = re.compile(fmt)
        except re.error as e:
            errors.append(FieldError(path, f"invalid regular expression: {e}"))
            continue
        if compiled.groups < 2:
            errors.append(
                FieldError(
                    path, "two top subexpressions are required: the metric name, then its value"
                )
            )
    return errors
