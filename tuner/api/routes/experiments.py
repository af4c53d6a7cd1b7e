"""Experiments: submit (JSON or YAML), list, read, edit the budget, stop, delete."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query, Request, Response, status
from yaml.composer import ComposerError

from tuner.api.auth import APIAuth
from tuner.api.deps import (
    DNS_LABEL,
    ExperimentDep,
    NamespaceDep,
    OffsetQuery,
    RepoDep,
    ServiceDep,
)
from tuner.api.routes.common import AUTH_ERRORS, BODY_ERRORS, CONFLICT, INVALID, NOT_FOUND
from tuner.api.schemas import BudgetUpdate, ExperimentRead, experiment_read
from tuner.errors import FieldError, SpecError, TunerError
from tuner.limits import TooDeep, check_depth
from tuner.spec import load_spec
from tuner.spec.loading import check_yaml_depth
from tuner.templates import RESOURCE_UID_ANNOTATION
from tuner.trials import ExperimentPhase

router = APIRouter(
    prefix="/experiments",
    tags=["experiments"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **INVALID},
)

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
JSON_TYPES = frozenset({"application/json", ""})


class UnsupportedMediaType(TunerError):
    status_code = 415


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases (``*name``): they could expand a small body into a huge spec."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(None, None, "YAML aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)


def parse_spec_body(body: bytes, content_type: str) -> Any:
    """The submitted spec as a plain structure; problems raise :class:`SpecError`."""
    media = content_type.split(";", 1)[0].strip().lower()
    is_json = media in JSON_TYPES or media.endswith("+json")
    if not is_json and media not in YAML_TYPES:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {media!r}: send the spec as application/json "
            "or application/yaml"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([FieldError("<document>", "the body is not UTF-8 text")]) from e
    if not text.strip():
        raise SpecError([FieldError("<document>", "the body is empty: send an Experiment spec")])
    try:
        if is_json:
            data = json.loads(text)
        else:
            check_yaml_depth(text)  # before the composer, which recurses once per level
            data = yaml.load(text, Loader=_NoAliasLoader)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}"
        raise SpecError([FieldError(where, f"not valid JSON: {e.msg}")]) from e
    except (RecursionError, TooDeep):  # json recurses once per level, up to ~1000
        raise SpecError([FieldError("<document>", str(TooDeep()))]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError([FieldError(where, f"not valid YAML: {problem}")]) from e
    try:
        check_depth(data)
    except TooDeep as e:
        raise SpecError([FieldError("<document>", str(e))]) from None
    return data


def _apply_namespace(data: Any, namespace: str | None) -> None:
    if namespace is None or not isinstance(data, dict):
        return
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        return
    given = metadata.get("namespace")
    if given is None:
        metadata["namespace"] = namespace
    elif given != namespace:
        raise SpecError(
            [
                FieldError(
                    "metadata.namespace",
                    f"{given!r} does not match the namespace of the request ({namespace!r})",
                )
            ]
        )


_SPEC_BODY: Mapping[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "a Katib v1beta1 Experiment, as JSON or as YAML text",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Experiment"}},
            "application/yaml": {
                "schema": {"type": "string", "description": "the Experiment as YAML"}
            },
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Submit an Experiment spec (JSON or YAML); it starts at once",
    openapi_extra=dict(_SPEC_BODY),
    responses={**CONFLICT, **BODY_ERRORS},
)
async def create_experiment(
    request: Request,
    service: ServiceDep,
    namespace: Annotated[
        str | None,
        Query(
            max_length=63,
            pattern=DNS_LABEL,
            description="the namespace, when metadata.namespace does not give it",
        ),
    ] = None,
) -> ExperimentRead:
    data = parse_spec_body(await request.body(), request.headers.get("content-type", ""))
    if not isinstance(data, dict):  # load_spec would read a string as a file path
        raise SpecError([FieldError("<root>", "the spec must be a mapping (an Experiment object)")])
    _apply_namespace(data, namespace)
    experiment = load_spec(data)
    if RESOURCE_UID_ANNOTATION in experiment.metadata.annotations:
        raise SpecError(
            [
                FieldError(
                    f"metadata.annotations.{RESOURCE_UID_ANNOTATION}",
                    "set by the operator for experiments from Experiment resources only",
                )
            ]
        )
    record = await service.submit(experiment)
    return await service.db.run(experiment_read, record)


@router.get("", summary="List experiments, newest first")
def list_experiments(
    repo: RepoDep,
    namespace: NamespaceDep = "default",
    phase: Annotated[
        ExperimentPhase | None, Query(alias="status", description="only experiments in this phase")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> list[ExperimentRead]:
    records = repo.list_experiments(
        namespace=namespace,
        phase=phase.value if phase is not None else None,
        limit=limit,
        offset=offset,
    )
    return [experiment_read(repo, r) for r in records]


@router.get("/{name}", summary="An experiment: spec and Katib-style status", responses=NOT_FOUND)
def get_experiment(record: ExperimentDep, repo: RepoDep) -> ExperimentRead:
    return experiment_read(repo, record)


@router.patch(
    "/{name}",
    summary="Edit the budget; raising maxTrialCount resumes a finished experiment",
    responses={**NOT_FOUND, **BODY_ERRORS},
)
async def edit_budget(
    record: ExperimentDep, update: BudgetUpdate, service: ServiceDep
) -> ExperimentRead:
    edited = await service.edit_budget(record, update.changes())
    return await service.db.run(experiment_read, edited)


@router.post(
    "/{name}/stop",
    summary="Kill the running trials (Killed) and mark the experiment Stopped",
    responses={**NOT_FOUND, **CONFLICT},
)
async def stop_experiment(record: ExperimentDep, service: ServiceDep) -> ExperimentRead:
    stopped = await service.stop(record)
    return await service.db.run(experiment_read, stopped)


@router.post(
    "/{name}/resume",
    summary="Continue a Stopped experiment with its budget as it is",
    responses={**NOT_FOUND, **CONFLICT},
)
async def resume_experiment(record: ExperimentDep, service: ServiceDep) -> ExperimentRead:
    resumed = await service.resume(record)
    return await service.db.run(experiment_read, resumed)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop the experiment and remove it with its trials and observations",
    responses={**NOT_FOUND, **CONFLICT},
    response_class=Response,
)
async def delete_experiment(record: ExperimentDep, service: ServiceDep) -> None:
    await service.delete(record)
