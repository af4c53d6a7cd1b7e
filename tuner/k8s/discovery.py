"""Which resource a trial's kind is: its plural and whether it is served (API discovery).

A trial template may be any kind. Creating, watching and deleting it needs the resource's
plural (``pytorchjobs`` for ``kubeflow.org/v1`` ``PyTorchJob``), which only the apiserver's
discovery documents know. :class:`Discovery` asks once per ``apiVersion`` and caches the answer;
a kind whose group/version is not served, or that is not in it, is :class:`KindNotServed`, whose
message names the kind and the CustomResourceDefinition to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client

from tuner.k8s.client import RetryingClient


@dataclass(frozen=True)
class ApiResource:
    """A served resource: ``group`` is ``""`` for the core API."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``plural.group``, as a CRD is named."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


class KindNotServed(LookupError):
    """The apiserver does not serve the kind (its CRD is not installed)."""


def split_api_version(api_version: str) -> tuple[str, str]:
    """``(group, version)`` of ``group/version`` (``("", "v1")`` for the core API)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def guessed_crd(api_version: str, kind: str) -> str:
    """The CRD name a kind conventionally has (``pytorchjobs.kubeflow.org``): for messages."""
    group, _ = split_api_version(api_version)
    plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
    return f"{plural}.{group}" if group else plural


class Discovery:
    """Resolves ``(apiVersion, kind)`` to an :class:`ApiResource`, caching each group/version."""

    def __init__(self, retrying: RetryingClient) -> None:
        self.client = retrying
        self.custom = client.CustomObjectsApi(retrying.api)
        self.core = client.CoreV1Api(retrying.api)
        self._served: dict[str, dict[str, ApiResource]] = {}

    def forget(self, api_version: str | None = None) -> None:
        """Ask again next time (a CRD was installed or removed)."""
        if api_version is None:
            self._served.clear()
        else:
            self._served.pop(api_version, None)

    async def resource(self, api_version: str, kind: str) -> ApiResource:
        """The resource of ``kind`` in ``api_version``.

        Raises:
            KindNotServed: the group/version is not served, or has no such kind.
        """
        served = self._served.get(api_version)
        if served is None or kind not in served:
            served = await self._discover(api_version)
        found = served.get(kind)
        if found is None:
            crd = guessed_crd(api_version, kind)
            why = (
                f"the apiserver serves no {api_version} API"
                if not served
                else f"{api_version} has no kind {kind} (it has: {', '.join(sorted(served))})"
            )
            raise KindNotServed(
                f"the trial kind {kind} ({api_version}) is not installed in the cluster: "
                f"{why}; install its CustomResourceDefinition ({crd}) and its controller"
            )
        return found

    async def _discover(self, api_version: str) -> dict[str, ApiResource]:
        group, version = split_api_version(api_version)
        if group:
            listed = await self.client.get_json(self.custom.get_api_resources, group, version)
        elif version == "v1":
            listed = await self.client.get_json(self.core.get_api_resources)
        else:
            listed = None
        served: dict[str, ApiResource] = {}
        for r in (listed or {}).get("resources") or []:
            if not isinstance(r, dict) or "/" in str(r.get("name", "")):
                continue  # a subresource (jobs/status)
            served[str(r.get("kind"))] = _resource(group, version, r)
        if served:
            self._served[api_version] = served
        return served


def _resource(group: str, version: str, r: dict[str, Any]) -> ApiResource:
    return ApiResource(
        group=group,
        version=version,
        kind=str(r.get("kind")),
        plural=str(r.get("name")),
        namespaced=bool(r.get("namespaced", True)),
    )
