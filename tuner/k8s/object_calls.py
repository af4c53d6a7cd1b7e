"""The client calls that create, read, list and delete objects of any resource.

Any resource goes through the custom-objects API (``/apis/{group}/{version}/...``), which serves
built-in groups too; a ``batch/v1`` Job goes through the typed Batch API, so that its requests keep
their operation names (``create_namespaced_job``...) in the request counters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from tuner.k8s.discovery import ApiResource

Call = tuple[Callable[..., Any], tuple[Any, ...]]
"""A client method and its positional arguments."""


class ObjectCalls:
    """``(method, args)`` of each operation on a resource's objects in a namespace."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)

    @staticmethod
    def _is_job(r: ApiResource) -> bool:
        return (r.group, r.version, r.plural) == ("batch", "v1", "jobs")

    def list(self, r: ApiResource, namespace: str) -> Call:
        if self._is_job(r):
            return self.batch.list_namespaced_job, (namespace,)
        return self.custom.list_namespaced_custom_object, (r.group, r.version, namespace, r.plural)

    def get(self, r: ApiResource, namespace: str, name: str) -> Call:
        if self._is_job(r):
            return self.batch.read_namespaced_job, (name, namespace)
        return self.custom.get_namespaced_custom_object, (
            r.group,
            r.version,
            namespace,
            r.plural,
            name,
        )

    def create(self, r: ApiResource, namespace: str, body: dict[str, Any]) -> Call:
        if self._is_job(r):
            return self.batch.create_namespaced_job, (namespace, body)
        return self.custom.create_namespaced_custom_object, (
            r.group,
            r.version,
            namespace,
            r.plural,
            body,
        )

    def delete(self, r: ApiResource, namespace: str, name: str) -> Call:
        if self._is_job(r):
            return self.batch.delete_namespaced_job, (name, namespace)
        return self.custom.delete_namespaced_custom_object, (
            r.group,
            r.version,
            namespace,
            r.plural,
            name,
        )

    def patch(self, r: ApiResource, namespace: str, name: str, body: dict[str, Any]) -> Call:
        """A merge patch (``application/merge-patch+json``: pass ``_content_type`` so)."""
        return self.custom.patch_namespaced_custom_object, (
            r.group,
            r.version,
            namespace,
            r.plural,
            name,
            body,
        )
