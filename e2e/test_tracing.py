"""Tracing with a real `shop serve` (the example app, whose checkout is an operation that writes):
with `tracing.endpoint` set, spans go to an OTLP/HTTP collector (here a small one in this test,
decoding the protobuf with the OpenTelemetry project's own message definitions), and a checkout is
one trace: the request, the operation inside it, the store writes inside that."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from microlith_e2e import free_port, serve_must_fail, wait_for
from shop_app import CART, ShopServer, copy_app, requires_shop

pytestmark = requires_shop


class Collector:
    """An OTLP/HTTP receiver of spans on a loopback port."""

    def __init__(self):
        self.spans: list = []
        self.resources: list = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    for resource_spans in request.resource_spans:
                        collector.resources.append(resource_spans.resource)
                        for scope in resource_spans.scope_spans:
                            collector.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, prefix: str) -> list:
        with self.lock:
            return [s for s in self.spans if s.name.startswith(prefix)]

    def close(self):
        self.server.shutdown()


def test_a_checkout_is_one_trace_of_request_operation_and_writes(tmp_path):
    collector = Collector()
    env = {"MICROLITH_TRACING_ENDPOINT": f"http://127.0.0.1:{collector.port}", "MICROLITH_TRACING_SERVICE_NAME": "shop-under-test",
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    server = ShopServer(copy_app(tmp_path), tmp_path / "data", env=env)
    server.start()
    try:
        assert "tracing: spans go to" in server.logs()
        r = server.post("/_operations/orders/checkout", json={"cart": CART, "processingMs": 0},
                        headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        assert r.status_code == 200, r.text
        operation = wait_for(lambda: next(iter(collector.named("operation orders.checkout")), None), timeout=20)
        writes = wait_for(lambda: [s for s in collector.named("store.write") if s.trace_id == operation.trace_id] or None, timeout=20)
        request = wait_for(lambda: next((s for s in collector.spans if s.span_id == operation.parent_span_id), None), timeout=20)
        # One trace, continued from the caller's traceparent: request → operation → writes.
        assert operation.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert request.parent_span_id.hex() == "00f067aa0ba902b7"
        assert request.name.startswith("/_operations") or "POST" in request.name, request.name
        assert all(w.parent_span_id == operation.span_id for w in writes), [(w.name, w.parent_span_id.hex()) for w in writes]
        attributes = {a.key: a.value.string_value for a in writes[0].attributes}
        assert attributes["db.system"] == "sqlite" and attributes["db.name"] == "data"
        service_names = {a.value.string_value for r in collector.resources for a in r.attributes if a.key == "service.name"}
        assert service_names == {"shop-under-test"}
    finally:
        server.stop()
        collector.close()


def test_a_bad_endpoint_stops_the_start(tmp_path):
    result = serve_must_fail(copy_app(tmp_path), tmp_path / "data", env={"MICROLITH_TRACING_ENDPOINT": "127.0.0.1:4318"})
    assert "MICROLITH_TRACING_ENDPOINT must be the http:// or https:// URL of an OTLP/HTTP collector" in result.stderr
