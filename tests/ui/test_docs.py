"""``/docs`` works offline: the page loads Swagger UI from this server only, and a browser that
may reach no other host renders the API's operations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.servers import Server
from tests.ui.browser import Console, screenshot, start_server, stop_server

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("docs")
    server = start_server(tmp, f"sqlite:///{tmp / 'docs.db'}", None)
    yield server
    stop_server(server)


def test_docs_page_references_only_this_server(server: Server) -> None:
    page = httpx.get(f"{server.url}/docs", timeout=30)
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*'([^']+)'""", page.text)  # the OpenAPI document
    assert urls, page.text
    kinds: dict[str, str] = {}
    for url in urls:
        absolute = urljoin(server.url + "/docs", url)
        assert urlsplit(absolute).netloc == urlsplit(server.url).netloc, f"{url} is not local"
        answer = httpx.get(absolute, timeout=30)
        assert answer.status_code == 200, f"{url}: {answer.status_code}"
        kinds[url.rsplit(".", 1)[-1]] = answer.headers["content-type"]
    assert "javascript" in kinds["js"]
    assert kinds["css"].startswith("text/css")
    assert kinds["json"].startswith("application/json")
    # No ReDoc package is installed, so its CDN page is not offered either.
    assert httpx.get(f"{server.url}/redoc", timeout=30).status_code == 404


def test_docs_render_with_other_hosts_blocked(server: Server, page: Any) -> None:
    here = urlsplit(server.url).netloc
    blocked: list[str] = []

    def only_this_server(route: Any) -> None:
        if urlsplit(route.request.url).netloc == here:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    console = Console(page)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/experiments']")
    operations = page.locator(".opblock").count()
    assert operations > 10
    assert "tuner" in (page.text_content(".info .title") or "")
    screenshot(page, "docs")
    assert blocked == []
    assert console.errors == []
