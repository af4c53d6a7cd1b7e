"""The shared informer on a real apiserver, through the fault proxy (a test fixture): watches cut
mid-stream, 410 Gone, 500s. Its cache must follow the truth, and wake whoever waits for a name.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.controlplane import ControlPlane
from tests.k8s.fault_proxy import FaultProxy

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tuner.k8s.client import RetryingClient, load_api_client
from tuner.k8s.informer import Informers, Resource

pytestmark = pytest.mark.k8s


def names(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {o["metadata"]["name"]: (o.get("data") or {}).get("v", "") for o in objects.values()}


def test_informer_cache_follows_the_truth_through_watch_faults(
    k8s_cluster: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    pki = k8s_cluster.workdir / "pki"
    proxy = FaultProxy(
        k8s_cluster.server, pki / "apiserver.crt", pki / "apiserver.key", gone_every=2
    ).start()
    config = json.loads(k8s_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    direct = client.CoreV1Api(api)
    retrying = RetryingClient(load_api_client(kubeconfig))
    core = client.CoreV1Api(retrying.api)
    truth: dict[str, str] = {}

    async def go() -> tuple[int, bool]:
        informers = Informers(retrying, window=2.0)
        informer = informers.get(
            ("cm", namespace),
            Resource(core.list_namespaced_config_map, (namespace,), f"configmaps in {namespace}"),
        )
        await asyncio.wait_for(informer.synced(), 30)
        woken = False
        async with informer.watching(["cm-3"]) as event:
            for i in range(8):
                name = f"cm-{i % 5}"
                body = {"metadata": {"name": name}, "data": {"v": str(i)}}
                if name in truth:
                    await asyncio.to_thread(
                        direct.replace_namespaced_config_map, name, namespace, body
                    )
                else:
                    await asyncio.to_thread(direct.create_namespaced_config_map, namespace, body)
                truth[name] = str(i)
                await asyncio.sleep(0.4)  # across cut and Gone watches
            await asyncio.to_thread(direct.delete_namespaced_config_map, "cm-0", namespace)
            del truth["cm-0"]
            woken = await _set_within(event, 10)
        deadline = time.monotonic() + 30
        while names(informer.objects) != truth:
            assert time.monotonic() < deadline, (names(informer.objects), truth)
            await asyncio.sleep(0.1)
        lists = informer.lists
        await informers.close()
        return lists, woken

    try:
        lists, woken = asyncio.run(asyncio.wait_for(go(), 90))
    finally:
        retrying.close()
        retrying.api.close()
        proxy.stop()
    assert woken, "a change of cm-3 woke nobody"
    assert proxy.counts["gone"] >= 1 or proxy.counts["cut"] >= 1, proxy.counts
    assert lists >= 2, "the informer never listed again after a 410 or a broken watch"


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
        return True
    except TimeoutError:
        return False
