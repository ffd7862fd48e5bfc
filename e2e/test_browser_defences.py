"""Browser-facing defences (issue 14, part 6): a page from another site must not write through a
visitor's browser, open a WebSocket (or MQTT over one) in the visitor's name, or reach an instance
on loopback through DNS rebinding. Every case here was served before the defences existed."""

from __future__ import annotations

import json
import time

import pytest

from microlith_e2e import http_request, raw_exchange

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect as ws_connect
except ImportError as e:  # pragma: no cover - the test command installs it
    raise ImportError("websockets is needed: pip install -r e2e/requirements.txt") from e

SCHEMA = """
type Todo @table @export {
    id: ID @primaryKey
    title: String
}
"""

EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def server(module_factory):
    return module_factory.server(module_factory.app(SCHEMA), extra_args=("--mqtt-port", "0"))


def assert_refused(status: int, body: bytes, code: str):
    assert status == 403, (status, body)
    problem = json.loads(body)
    assert problem["code"] == code and problem["detail"], problem


# -- DNS rebinding ------------------------------------------------------------------------------


def test_a_host_name_not_allowed_is_refused_even_for_a_cached_record(server):
    assert server.put("/Todo/r1", json={"title": "secret"}).status_code in (200, 201, 204)
    assert server.get("/Todo/r1").status_code == 200  # now answered from the cache, in the event loop
    for target in ("/Todo/r1", "/Todo/", "/openapi.json"):
        status, _, body = raw_exchange(server.port, f"GET {target} HTTP/1.1\r\nHost: rebind.evil.example:{server.port}\r\n\r\n".encode())
        assert_refused(status, body, "hostNotAllowed")
        assert b"secret" not in body
    # IP addresses and localhost names are allowed: an attacker cannot make a browser send them for its page.
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "app.localhost", f"[::1]:{server.port}"):
        status, _, body = raw_exchange(server.port, f"GET /Todo/r1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert status == 200 and b"secret" in body, (host, status, body)


def test_allowed_hosts_lets_a_named_host_in(factory):
    srv = factory.server(factory.app(SCHEMA, yaml="http:\n  allowedHosts: [shop.example.com]\n"))
    status, _, _ = raw_exchange(srv.port, b"GET /Todo/ HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
    assert status == 200
    status, _, body = raw_exchange(srv.port, b"GET /Todo/ HTTP/1.1\r\nHost: other.example.com\r\n\r\n")
    assert_refused(status, body, "hostNotAllowed")


# -- cross-origin writes ---------------------------------------------------------------------------


def test_a_cross_origin_simple_post_is_refused_and_writes_nothing(server):
    before = server.get("/Todo/").json()
    r = http_request(server.port, "POST", "/Todo/", data='{"id":"x1","title":"pwned"}',
                     headers={"Content-Type": "text/plain", "Origin": EVIL})
    assert_refused(r.status_code, r.content, "crossOriginRequest")
    r = http_request(server.port, "DELETE", "/Todo/r1", headers={"Sec-Fetch-Site": "cross-site"})
    assert_refused(r.status_code, r.content, "crossOriginRequest")
    assert server.get("/Todo/").json() == before
    assert server.get("/Todo/x1").status_code == 404


def test_same_origin_and_non_browser_writes_are_served(server):
    own = f"http://127.0.0.1:{server.port}"
    r = http_request(server.port, "POST", "/Todo/", json={"id": "ok1", "title": "mine"}, headers={"Origin": own})
    assert r.status_code == 201, r.text
    r = http_request(server.port, "PUT", "/Todo/ok2", json={"title": "form"}, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code in (200, 201, 204), r.text
    r = http_request(server.port, "PUT", "/Todo/ok3", json={"title": "curl"})  # no browser headers at all
    assert r.status_code in (200, 201, 204), r.text
    # Reads are not refused for their Origin: the browser keeps a foreign page from reading them.
    assert http_request(server.port, "GET", "/Todo/ok1", headers={"Origin": EVIL}).status_code == 200


def test_allowed_origins_may_write(factory):
    srv = factory.server(factory.app(SCHEMA), env={"MICROLITH_HTTP_ALLOWED_ORIGINS": "https://app.example.com"})
    r = http_request(srv.port, "PUT", "/Todo/a", json={"title": "t"}, headers={"Origin": "https://app.example.com"})
    assert r.status_code in (200, 201, 204), r.text
    r = http_request(srv.port, "PUT", "/Todo/b", json={"title": "t"}, headers={"Origin": EVIL})
    assert_refused(r.status_code, r.content, "crossOriginRequest")


# -- WebSockets -------------------------------------------------------------------------------------


def ws_refused(port: int, path: str, origin: str, subprotocols=None) -> dict:
    """The error event of a WebSocket opened with `origin`, after which the server closes with 4403."""
    with ws_connect(f"ws://127.0.0.1:{port}{path}", origin=origin, subprotocols=subprotocols, open_timeout=10) as ws:
        event = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4403, ws.close_code
        return event


def test_a_websocket_from_a_foreign_origin_is_refused(server):
    event = ws_refused(server.port, "/Todo/", EVIL)
    assert event["type"] == "error" and event["code"] == "crossOriginRequest", event
    with ws_connect(f"ws://127.0.0.1:{server.port}/Todo/", origin=f"http://127.0.0.1:{server.port}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        server.put("/Todo/live", json={"title": "seen"})
        assert any("seen" in ws.recv(timeout=10) for _ in range(5))


def test_mqtt_over_a_websocket_from_a_foreign_origin_writes_nothing(server):
    with ws_connect(f"ws://127.0.0.1:{server.port}/mqtt", origin=EVIL, subprotocols=["mqtt"], open_timeout=10) as ws:
        # MQTT CONNECT and a retained PUBLISH to a record topic, as the attack sent them.
        connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 0])
        topic, payload = b"Todo/mq1", b'{"title":"pwned"}'
        body = len(topic).to_bytes(2, "big") + topic + payload
        try:
            ws.send(connect + bytes([0x31, len(body)]) + body)
        except ConnectionClosed:
            pass
        event = json.loads(ws.recv(timeout=10))
        assert event["type"] == "error" and event["code"] == "crossOriginRequest", event
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4403, ws.close_code
    assert server.get("/Todo/mq1").status_code == 404
    # From the server's own origin the same bytes write the record (the broker is there and working).
    with ws_connect(f"ws://127.0.0.1:{server.port}/mqtt", origin=f"http://127.0.0.1:{server.port}", subprotocols=["mqtt"],
                    open_timeout=10) as ws:
        ws.send(connect + bytes([0x31, len(body)]) + body)
        assert ws.recv(timeout=10)[:1] == bytes([0x20])  # CONNACK
    for _ in range(50):
        if server.get("/Todo/mq1").status_code == 200:
            break
        time.sleep(0.1)
    assert server.get("/Todo/mq1").json()["title"] == "pwned"


# -- page headers -------------------------------------------------------------------------------------


def test_html_pages_carry_the_page_headers_and_json_does_not(factory):
    srv = factory.server(factory.app(SCHEMA, web={"index.html": "<h1>shop</h1>\n", "app.js": "console.log(1)\n"}))
    page = srv.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert srv.put("/Todo/h1", json={"title": "t"}).status_code in (200, 201, 204)
    for path in ("/app.js", "/Todo/h1", "/Todo/"):
        r = srv.get(path)
        assert r.status_code == 200 and "X-Frame-Options" not in r.headers, (path, dict(r.headers))


# -- CORS ---------------------------------------------------------------------------------------------


def test_cors_is_closed_by_default_and_open_to_the_allowed_origins_only(factory):
    app = factory.app(SCHEMA, yaml="http:\n  allowedOrigins: [https://app.example.com]\n")
    srv = factory.server(app)
    assert srv.put("/Todo/c1", json={"title": "t"}).status_code in (200, 201, 204)
    assert srv.get("/Todo/c1").status_code == 200  # kept in the record cache: a hit from now on
    allowed = {"Origin": "https://app.example.com"}
    pre = http_request(srv.port, "OPTIONS", "/Todo/c1",
                       headers={**allowed, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204, pre.text
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
    assert "content-type" in pre.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in pre.headers
    hit = http_request(srv.port, "GET", "/Todo/c1", headers=allowed)
    assert hit.status_code == 200 and hit.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "ETag" in hit.headers["Access-Control-Expose-Headers"]
    missing = http_request(srv.port, "GET", "/Todo/none", headers=allowed)
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    put = http_request(srv.port, "PUT", "/Todo/c2", json={"title": "x"}, headers=allowed)
    assert put.status_code in (200, 201, 204) and put.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    # Another origin gets no CORS headers (its page cannot read the answer) and may not write.
    other = http_request(srv.port, "GET", "/Todo/c1", headers={"Origin": EVIL})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    pre = http_request(srv.port, "OPTIONS", "/Todo/c1", headers={"Origin": EVIL, "Access-Control-Request-Method": "PUT"})
    assert "Access-Control-Allow-Origin" not in pre.headers


def test_no_cors_headers_without_allowed_origins(server):
    r = http_request(server.port, "OPTIONS", "/Todo/r1",
                     headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = http_request(server.port, "GET", "/Todo/r1", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers
