"""A trial that serves its metrics with prometheus-client, one scrape per epoch.

It serves exactly one request after each epoch's values are set, so every epoch is scraped
once, whatever the machine's speed; it gives up (exit 3) if nobody scrapes within a minute.
"""

import argparse
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Gauge, make_wsgi_app

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--x", type=float, required=True)
args = parser.parse_args()

registry = CollectorRegistry()
accuracy = Gauge("accuracy", "validation accuracy", registry=registry)
loss = Gauge("loss", "training loss", registry=registry)
epoch = Gauge("epoch", "the epoch just finished", registry=registry)
unrelated = Gauge("batch_size", "not a metric of the spec", registry=registry)
unrelated.set(32)


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


served = 0


def app(environ, start_response):  # type: ignore[no-untyped-def]
    global served
    served += 1
    return make_wsgi_app(registry)(environ, start_response)


server = make_server("127.0.0.1", args.port, app, handler_class=Quiet)
server.timeout = 60
for e in range(3):
    epoch.set(e)
    accuracy.set(0.5 + 0.1 * e + args.x / 10)
    loss.set(1.0 / (e + 1))
    before = served
    server.handle_request()
    if served == before:
        sys.exit(3)
server.server_close()
