"""Anonymous `PUT`s and `POST`s run from the event loop, ahead of the router (`DirectWriteHandler`):
the same write and the same answer as the router's (a refusal too), counted in the metrics as the
router counts them, pipelined responses in order, and every request that does not qualify (credentials, preconditions, other headers, debug logging) left to the router. Tables
with a `put` hook and limited anonymous roles are covered by DirectWriteHandlerTests."""

from __future__ import annotations

import json
import re
import socket

from prometheus_client.parser import text_string_to_metric_families

from test_fast_path import logged_by_the_router, read_responses
from test_metrics import ADMIN, ADMIN_ENV, ROLES, SCHEMA


def counters(server) -> dict[str, float]:
    """The direct writes by outcome, and the PUTs and POSTs by route and status, from GET /metrics."""
    r = server.get("/metrics", headers=ADMIN)
    assert r.status_code == 200, r.text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "microlith_http_direct_writes_total":
                out[sample.labels["outcome"]] = sample.value
            if sample.name == "microlith_http_requests_total" and sample.labels.get("method") in ("PUT", "POST"):
                out[f"{sample.labels['route']} {sample.labels['status']}"] = sample.value
    return out


def test_a_put_is_answered_on_the_event_loop_as_the_router_answers_it(factory):
    app = factory.app(SCHEMA)
    (app / "roles.yaml").write_text(ROLES)
    server = factory.server(app, env=ADMIN_ENV)
    direct = server.put("/Note/a", json={"text": "one", "n": 1})
    # Any other header sends the same request to the router.
    routed = server.put("/Note/b", json={"text": "one", "n": 1}, headers={"X-Trace-Me": "1"})
    assert direct.status_code == routed.status_code == 201
    drop = {"date", "x-request-id", "etag", "location", "content-length"}
    assert {k.lower(): v for k, v in direct.headers.items() if k.lower() not in drop} == {
        k.lower(): v for k, v in routed.headers.items() if k.lower() not in drop
    }
    assert direct.headers["Location"] == "/Note/a" and routed.headers["Location"] == "/Note/b"
    assert direct.json() | {"id": "b"} == routed.json()
    assert direct.headers["ETag"] == server.get("/Note/a").headers["ETag"]
    assert int(direct.headers["Content-Length"]) == len(direct.content)
    # As the router makes them (Hummingbird's RequestID: hex, not zero-padded), and never repeated.
    assert re.fullmatch(r"[0-9a-f]{16,32}", direct.headers["X-Request-Id"])
    assert direct.headers["X-Request-Id"] != routed.headers["X-Request-Id"]
    replaced = server.put("/Note/a", json={"text": "two"})
    assert replaced.status_code == 200 and "Location" not in replaced.headers
    assert server.get("/Note/a").json()["text"] == "two" and "n" not in server.get("/Note/a").json()
    seen = counters(server)
    assert seen.get("answered") == 2 and seen.get("refused") == 0, seen
    # Counted by route pattern as the router counts its own.
    assert seen.get("/Note/{id} 201") == 2 and seen.get("/Note/{id} 200") == 1, seen

    # Refusals are answered as the router answers them, and nothing is written.
    for body in (b'{"text":5}', b'{"text":', b"[1]"):
        refused = server.put("/Note/c", data=body, headers={"Content-Type": "application/json"})
        routed = server.put("/Note/c", data=body, headers={"Content-Type": "application/json", "X-Trace-Me": "1"})
        assert refused.status_code == routed.status_code == 400
        assert refused.headers["Content-Type"] == routed.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["requestId"] == refused.headers["X-Request-Id"]
        assert refused.json() | {"requestId": ""} == routed.json() | {"requestId": ""}
    assert server.get("/Note/c").status_code == 404
    seen = counters(server)
    assert seen.get("refused") == 3 and seen.get("/Note/{id} 400") == 6, seen

    # A POST: the server's key, answered as the router answers it.
    direct = server.post("/Note/", json={"text": "new"})
    routed = server.post("/Note/", json={"text": "new"}, headers={"X-Trace-Me": "1"})
    assert direct.status_code == routed.status_code == 201
    assert {k.lower(): v for k, v in direct.headers.items() if k.lower() not in drop} == {
        k.lower(): v for k, v in routed.headers.items() if k.lower() not in drop
    }
    key = direct.headers["Location"].removeprefix("/Note/")
    assert direct.json() == {"id": key, "text": "new"} and server.get(f"/Note/{key}").json() == direct.json()
    seen = counters(server)
    assert seen.get("answered") == 3 and seen.get("/Note/ 201") == 2, seen


def test_requests_that_do_not_qualify_go_to_the_router(factory):
    app = factory.app(SCHEMA)
    (app / "roles.yaml").write_text(ROLES)
    server = factory.server(app, env=ADMIN_ENV)
    assert server.put("/Note/a", json={"text": "one"}, headers=ADMIN).status_code == 201
    etag = server.get("/Note/a").headers["ETag"]
    assert server.put("/Note/a", json={"text": "two"}, headers={"If-Match": '"stale"'}).status_code == 412
    assert server.put("/Note/a", json={"text": "two"}, headers={"If-Match": etag}).status_code == 200
    assert server.put("/Note/a", json={"text": "x"}, headers={"Connection": "close"}).status_code == 200
    assert server.put("/Note/a?n=1", json={"text": "x"}).status_code == 200  # the router ignores the query string
    assert server.put("/Note/", json={"text": "x"}).status_code == 405
    assert server.put("/Note/b", json={"text": "x"}, headers={"Origin": f"http://127.0.0.1:{server.port}"}).status_code == 201
    seen = counters(server)
    assert seen.get("answered") == 0 and seen.get("refused") == 0, seen
    # Each reached the router, which counted it.
    assert sum(v for k, v in seen.items() if k.startswith("/Note/")) == 7, seen


def test_debug_logging_sends_every_write_to_the_router(factory):
    server = factory.server(factory.app(SCHEMA), env={"MICROLITH_LOG_LEVEL": "debug"})
    r = server.put("/Note/a", json={"text": "one"})
    assert r.status_code == 201
    assert logged_by_the_router(server, r.headers["x-request-id"]), "the write was not logged by the router\n" + server.logs()


def test_pipelined_writes_and_reads_keep_their_order(factory):
    server = factory.server(factory.app(SCHEMA), env=ADMIN_ENV)

    def put(key: str, body: str, extra: str = "") -> str:
        return (f"PUT /Note/{key} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n{body}")

    query = "GET /Note/?n=ge=1&sort(n) HTTP/1.1\r\nHost: x\r\n\r\n"
    stages = [
        # p1 is run from the event loop; the query, held meanwhile, must see it; p2 follows the
        # query to the router.
        [("PUT", put("p1", '{"text":"one","n":1}')), ("GET", query), ("PUT", put("p2", '{"text":"two","n":2}'))],
        # Refused (answered 400 from the event loop too); the cache hit after it must see p2.
        [("PUT", put("p3", '{"text":3}')), ("GET", "GET /Note/p2 HTTP/1.1\r\nHost: x\r\n\r\n")],
        # Another header: the router's. Then one run from the event loop again, then a query.
        [("PUT", put("p4", '{"text":"four","n":4}', "X-Other: 1\r\n"))],
        [("PUT", put("p5", '{"text":"five","n":5}')), ("GET", query)],
    ]
    responses = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for stage in stages:
            sock.sendall("".join(r for _, r in stage).encode())
            responses += read_responses(sock, [m for m, _ in stage])
    statuses = [r[0].split()[1] for r in responses]
    assert statuses == ["201", "200", "201", "400", "200", "201", "201", "200"]
    assert [n["id"] for n in json.loads(responses[1][2])] == ["p1"]
    assert b'"two"' in responses[4][2]
    assert [n["id"] for n in json.loads(responses[7][2])] == ["p1", "p2", "p4", "p5"]
    assert server.get("/Note/p3").status_code == 404
    seen = counters(server)
    assert seen.get("answered") == 2 and seen.get("refused") == 1, seen


def test_http_1_0_and_a_half_closed_connection_get_their_answers(factory):
    server = factory.server(factory.app(SCHEMA), env=ADMIN_ENV)
    body = '{"text":"old"}'

    def request(key: str, extra: str = "") -> str:
        return f"PUT /Note/{key} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n{body}"

    # HTTP/1.0 without keep-alive: answered, then closed (the router's, as a request that closes).
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request("h1").encode())
        (status, _, _), = read_responses(sock, ["PUT"])
        assert status.split()[1] == "201"
        assert sock.recv(1) == b"", "an HTTP/1.0 request without keep-alive closes the connection"
    # HTTP/1.0 with keep-alive: answered, and the connection serves the next request.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request("h2", "Connection: keep-alive\r\n").encode())
        sock.sendall(request("h3", "Connection: keep-alive\r\n").encode())
        statuses = [r[0].split()[1] for r in read_responses(sock, ["PUT", "PUT"])]
        assert statuses == ["201", "201"]
    # The request and the client's half-close in one go: the write is answered before the close.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"PUT /Note/h4 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        sock.shutdown(socket.SHUT_WR)
        (status, headers, content), = read_responses(sock, ["PUT"])
        assert status.split()[1] == "201" and headers["location"] == "/Note/h4" and b'"old"' in content
    assert [server.get(f"/Note/h{i}").status_code for i in range(1, 5)] == [200] * 4
    seen = counters(server)
    assert seen.get("answered", 0) >= 3, seen  # h2, h3 and h4 at least: plain requests
