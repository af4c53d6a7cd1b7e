"""Real Chromium against a real `tuner serve` WITHOUT an API token: web pages get nothing done.

* A page of another origin (a real HTTP server on another port) sends the issue's request,
  ``fetch(url, {mode: "no-cors", body: new Blob([json])})``, a ``text/plain`` one and a CORS
  JSON one: the server refuses the first two (403 from its Origin check, seen in its access
  log), the browser never sends the third (the preflight gets no CORS headers).
* DNS rebinding: Chromium resolves ``evil.example`` to 127.0.0.1 (``--host-resolver-rules``);
  the page it loaded from ``http://evil.example:<port>/`` before the "rebinding" is served by
  a test double of the attacker's server (Playwright's ``route``), and its same-origin
  requests reach the real server with ``Host: evil.example``: 403, nothing created or read.
* The dashboard itself works under its Content-Security-Policy: no ``securitypolicyviolation``
  event (Playwright's console events do not carry CSP reports), plots drawn.

No experiment exists on the server afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ask_tell_dict
from tests.servers import Server, start_server, stop_server
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS
from tests.waiting import wait_for

ATTACK = """<!doctype html><title>attack</title><script>
const attempt = async (label, url, init) => {
  try { const r = await fetch(url, init); return `${label} ${r.type} ${r.status}`; }
  catch (e) { return `${label} error ${e.name}`; }
};
const spec = (name) => JSON.stringify({...SPEC, metadata: {name, namespace: "default"}});
(async () => {
  const url = TARGET + "/api/v1/experiments";
  const results = [];
  for (const [label, init] of PLAN) {
    if (init.body) init.body = init.body === "blob" ? new Blob([spec(label)]) : spec(label);
    results.push(await attempt(label, init.url || url, init));
  }
  window.results = results;
  document.title = "done";
})();
</script>"""


def attack_page(target: str, plan: list[tuple[str, dict[str, Any]]]) -> str:
    spec = ask_tell_dict("x")
    return (
        ATTACK.replace("SPEC", json.dumps(spec))
        .replace("TARGET", json.dumps(target))
        .replace("PLAN", json.dumps(plan))
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("cross-site")
    # No token (the explicit opt-out), access log on: the refusals are seen there.
    running = start_server(tmp, f"sqlite:///{tmp / 'cs.db'}", args=["--log-level", "info"])
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def chromium(playwright: Any, server: Server) -> Iterator[Any]:
    """Chromium that resolves evil.example to 127.0.0.1, as a rebound DNS name would."""
    args = [
        *CHROMIUM_ARGS,
        "--host-resolver-rules=MAP evil.example 127.0.0.1",
        # Chromium's own Local Network Access checks would stop a public page's requests to
        # 127.0.0.1 before the server sees them; not every browser has them: the server must
        # refuse on its own.
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
        "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults",
    ]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()  # the page's CSP applies: no bypass here
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


class OtherOrigin:
    """A real HTTP server on another port of 127.0.0.1: another origin than the tuner's."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> OtherOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def run_attack(page: Any, url: str) -> list[str]:
    page.goto(url)
    page.wait_for_function("document.title === 'done'", polling=100)
    results: list[str] = page.evaluate("window.results")
    return results


def access_log(server: Server, status: int) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if f'" {status} ' in line]


def experiments(server: Server) -> set[str]:
    listed = httpx.get(f"{server.url}/api/v1/experiments", timeout=30)
    assert listed.status_code == 200, listed.text
    return {e["metadata"]["name"] for e in listed.json()}


def test_a_page_of_another_origin_cannot_create_an_experiment(server: Server, page: Any) -> None:
    plan = [
        ("blob", {"method": "POST", "mode": "no-cors", "body": "blob"}),  # the request
        ("text", {"method": "POST", "mode": "no-cors", "body": "text"}),  # text/plain
        ("cors", {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": 1}),
    ]
    with OtherOrigin(attack_page(server.url, plan)) as other:
        results = run_attack(page, other.url)
    # The page learns nothing (no-cors answers are opaque, or blocked by the server's
    # Cross-Origin-Resource-Policy); the CORS request fails at its preflight.
    assert set(results[:2]) <= {"blob opaque 0", "blob error TypeError", "text opaque 0",
                                "text error TypeError"}, results  # fmt: skip
    assert results[2] == "cors error TypeError", results
    # The two no-cors POSTs reached the server, which refused them (cross-origin: 403).
    posts = '"POST /api/v1/experiments HTTP/1.1" 403'
    wait_for(
        lambda: sum(posts in line for line in access_log(server, 403)) >= 2,
        "the two refused no-cors POSTs in the access log",
        timeout=30,
    )
    assert access_log(server, 405) == [
        line for line in access_log(server, 405) if '"OPTIONS /api/v1/experiments' in line
    ]
    assert len(access_log(server, 405)) == 1  # the preflight, answered without CORS headers
    assert not experiments(server) & {"blob", "text", "cors"}


def test_a_rebound_dns_name_gets_403(server: Server, page: Any) -> None:
    port = server.url.rsplit(":", 1)[1]
    rebound = f"http://evil.example:{port}"
    plan = [
        ("create", {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": 1}),
        ("read", {"method": "GET", "url": f"{rebound}/api/v1/experiments"}),
    ]
    # The attacker's server, before its DNS name was re-pointed (a test double: route).
    page.route(
        f"{rebound}/attack",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body=attack_page(rebound, plan)
        ),
    )
    before = len(access_log(server, 403))
    results = run_attack(page, f"{rebound}/attack")
    assert results == ["create basic 403", "read basic 403"], results  # same-origin: readable
    wait_for(
        lambda: len(access_log(server, 403)) >= before + 2, "the 403s in the access log", timeout=30
    )
    assert "create" not in experiments(server)


def test_the_dashboard_works_under_its_content_security_policy(
    server: Server, page: Any, tmp_path: Path
) -> None:
    api = f"{server.url}/api/v1"
    name = "csp-check"
    assert httpx.post(f"{api}/experiments", json=ask_tell_dict(name), timeout=30).is_success
    for _ in range(2):
        asked = httpx.post(f"{api}/experiments/{name}/suggestions", json={"count": 2}, timeout=30)
        for trial in asked.json()["trials"]:
            x = trial["parameters"]["x"]
            done = httpx.post(
                f"{api}/experiments/{name}/trials/{trial['trial']}/complete",
                json={"status": "Succeeded", "metrics": {"loss": x * x, "accuracy": 0.5}},
                headers={"X-Tuner-Trial-Token": trial["token"]},
                timeout=30,
            )
            assert done.is_success, done.text
    page.add_init_script(
        "window.violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(f"{server.url}/ui/experiments/default/{name}")
    page.locator("#plot-history .scatterlayer .trace").first.wait_for()
    page.locator("#plot-parallel .parcoords .y-axis").first.wait_for()
    page.goto(f"{server.url}/")
    page.get_by_text(name).first.wait_for()
    assert page.evaluate("window.violations") == []
    httpx.delete(f"{api}/experiments/{name}", timeout=30)
