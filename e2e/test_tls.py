"""TLS (the Deployment article's "TLS" section): HTTPS and MQTT over TLS from certificate files,
the plain-HTTP redirect port, certificates read again on SIGHUP (a broken file keeps the one in
use), client certificates, and settings that cannot serve stopping the start with their names.
Certificates are made with the openssl command for each test."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from microlith_e2e import free_port, serve_must_fail

SCHEMA = """
type Reading @table @export {
    id: ID @primaryKey
    value: Int
}
"""


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


class Authority:
    """A certificate authority in `directory` that signs server and client certificates."""

    def __init__(self, directory: Path, name: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.certificate = directory / "ca.pem"
        self.key = directory / "ca-key.pem"
        openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(self.key), "-out", str(self.certificate), "-days", "30", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )

    def issue(self, name: str, *, server: bool = True) -> tuple[Path, Path]:
        """A certificate for `name` (a server's: valid for localhost and 127.0.0.1) and its key."""
        key = self.directory / f"{name}-key.pem"
        request = self.directory / f"{name}.csr"
        certificate = self.directory / f"{name}.pem"
        extensions = self.directory / f"{name}.ext"
        lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
                 "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        lines.append("extendedKeyUsage=serverAuth" if server else "extendedKeyUsage=clientAuth")
        if server:
            lines.append("subjectAltName=DNS:localhost,IP:127.0.0.1")
        extensions.write_text("\n".join(lines) + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", str(request), "-CA", str(self.certificate), "-CAkey", str(self.key),
                "-CAcreateserial", "-out", str(certificate), "-days", "7", "-extfile", str(extensions))
        return certificate, key


def tls_env(certificate: Path, key: Path, **more) -> dict:
    env = {"MICROLITH_TLS_CERTIFICATE": str(certificate), "MICROLITH_TLS_PRIVATE_KEY": str(key)}
    env.update({k: str(v) for k, v in more.items()})
    return env


def https(server, path: str, ca: Path, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"https://localhost:{server.port}{path}", verify=str(ca), timeout=15, **kwargs)


def presented_issuer(port: int) -> str:
    """The issuer's common name of the certificate the server presents now (on a new connection)."""
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=10)
    text = subprocess.run(["openssl", "x509", "-noout", "-issuer"], input=pem, capture_output=True, text=True, check=True).stdout
    return text.strip().split("CN = ")[-1].split("CN=")[-1]


def wait_for(predicate, timeout: float = 15, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_https_and_the_redirect_port_and_sighup_reload(factory, tmp_path):
    first = Authority(tmp_path / "first", "First Test CA")
    second = Authority(tmp_path / "second", "Second Test CA")
    certificate, key = first.issue("localhost")
    redirect = free_port()
    app = factory.app(SCHEMA, web={"index.html": "<!doctype html><title>shop</title><p>hello</p>"})
    server = factory.server(app, env=tls_env(certificate, key, MICROLITH_HTTP_REDIRECT_PORT=redirect))
    assert any(f"on https://127.0.0.1:{server.port}" in line for line in server.stdout), server.stdout

    # Pages over HTTPS tell the browser to keep to HTTPS.
    page = https(server, "/", first.certificate)
    assert page.status_code == 200 and page.headers["Strict-Transport-Security"] == "max-age=31536000", page.headers
    # The server's own origin is its https:// one: a page injected into plain http:// under the same name may not write.
    r = https(server, "/Reading/r0", first.certificate, "PUT", json={"value": 1}, headers={"Origin": f"http://localhost:{server.port}"})
    assert r.status_code == 403 and r.json()["code"] == "crossOriginRequest", r.text
    r = https(server, "/Reading/r0", first.certificate, "PUT", json={"value": 1}, headers={"Origin": f"https://localhost:{server.port}"})
    assert r.status_code == 201, r.text

    r = https(server, "/Reading/r1", first.certificate, "PUT", json={"value": 7})
    assert r.status_code == 201, r.text
    for _ in range(3):  # the later reads come from the event loop's cache: over TLS too
        r = https(server, "/Reading/r1", first.certificate)
        assert r.status_code == 200 and r.json()["value"] == 7, r.text
    # Plain HTTP on the HTTPS port gets no HTTP answer.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/Reading/r1", timeout=5)

    # The redirect port: 308 to the same path and query on HTTPS, a POST included.
    r = requests.get(f"http://localhost:{redirect}/Reading/?value=gt=1", allow_redirects=False, timeout=5)
    assert r.status_code == 308, r.text
    assert r.headers["Location"] == f"https://localhost:{server.port}/Reading/?value=gt=1"
    r = requests.post(f"http://127.0.0.1:{redirect}/Reading/", json={"value": 1}, allow_redirects=False, timeout=5)
    assert r.status_code == 308 and r.headers["Location"] == f"https://127.0.0.1:{server.port}/Reading/"
    r = requests.get(f"http://localhost:{redirect}/Reading/r1", verify=str(first.certificate), timeout=15)
    assert r.status_code == 200 and r.json()["value"] == 7, "followed to HTTPS"
    r = requests.get(f"http://127.0.0.1:{redirect}/", headers={"Host": "rebind.example"}, allow_redirects=False, timeout=5)
    assert r.status_code == 403 and r.json()["code"] == "hostNotAllowed"

    # SIGHUP: a renewed certificate (here from another authority) serves new connections.
    assert presented_issuer(server.port) == "First Test CA"
    renewed, renewed_key = second.issue("localhost")
    certificate.write_bytes(renewed.read_bytes())
    key.write_bytes(renewed_key.read_bytes())
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any("SIGHUP: TLS reloaded" in line for line in server.stderr + server.stdout), what="the reload to be logged")
    assert presented_issuer(server.port) == "Second Test CA"
    assert https(server, "/Reading/r1", second.certificate).json()["value"] == 7
    with pytest.raises(requests.exceptions.SSLError):
        https(server, "/Reading/r1", first.certificate)

    # A broken file (a key that is not the certificate's): logged, and the certificate in use stays.
    other, other_key = first.issue("other")
    key.write_bytes(other_key.read_bytes())
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any("SIGHUP: TLS not reloaded" in line for line in server.stderr + server.stdout), what="the failure to be logged")
    logs = "\n".join(server.stderr + server.stdout)
    assert "is not the private key of the certificate" in logs, logs
    assert server.running, "a failed reload must not end the process"
    assert https(server, "/Reading/r1", second.certificate).json()["value"] == 7


def _get_health(port: int, context: ssl.SSLContext, session=None) -> tuple[ssl.SSLSession, bool, str]:
    """One `GET /health` over a new TLS connection (offering `session`), read to the end: the session,
    whether it was resumed, and the TLS version."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        # Read after the whole answer: a TLS 1.3 ticket arrives after the handshake.
        return tls.session, tls.session_reused, tls.version()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_returning_client_resumes_its_tls_session(factory, tmp_path, version):
    """A client that comes back offers the session it had and skips the full handshake (RFC 5077 tickets
    for TLS 1.2, RFC 8446 §2.2 for 1.3): a browser's or proxy's reconnect costs far less than a first visit."""
    authority = Authority(tmp_path / "ca", "Resumption Test CA")
    certificate, key = authority.issue("localhost")
    server = factory.server(factory.app(SCHEMA), env=tls_env(certificate, key))
    context = ssl.create_default_context(cafile=str(authority.certificate))
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    session, reused, spoken = _get_health(server.port, context)
    assert not reused and session is not None and spoken == version.replace("_", "."), spoken
    _, reused, spoken = _get_health(server.port, context, session=session)
    assert spoken == version.replace("_", "."), spoken
    assert reused, f"{version}: the session was not resumed"


def test_mqtt_over_tls_with_paho(factory, tmp_path):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    authority = Authority(tmp_path / "ca", "MQTT Test CA")
    certificate, key = authority.issue("localhost")
    server = factory.server(factory.app(SCHEMA), env=tls_env(certificate, key))
    port = server.mqtt_port
    assert any(f"MQTT on mqtts://127.0.0.1:{port}" in line for line in server.stdout), server.stdout

    received: list = []
    connected = threading.Event()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-e2e", protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(authority.certificate))
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = lambda c, u, m: received.append(m)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert connected.wait(15), "no CONNACK over TLS"
        client.subscribe("Reading/m1", qos=1)
        assert subscribed.wait(15)
        # A write over HTTPS reaches the MQTT subscriber over TLS.
        assert https(server, "/Reading/m1", authority.certificate, "PUT", json={"value": 3}).status_code == 201
        wait_for(lambda: received, what="the record over MQTT")
        assert json.loads(received[-1].payload)["value"] == 3
    finally:
        client.loop_stop()
        client.disconnect()

    # A plain MQTT client on the TLS port gets no CONNACK.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        plain.sendall(bytes([0x10, 16, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 4]) + b"none")
        try:
            reply = plain.recv(16)
        except (ConnectionResetError, socket.timeout):
            reply = b""
        assert not reply.startswith(b"\x20\x02\x00\x00"), reply


def test_required_client_certificates(factory, tmp_path):
    authority = Authority(tmp_path / "ca", "Client Test CA")
    stranger = Authority(tmp_path / "stranger", "Stranger CA")
    certificate, key = authority.issue("localhost")
    client, client_key = authority.issue("device-1", server=False)
    foreign, foreign_key = stranger.issue("device-2", server=False)
    env = tls_env(certificate, key, MICROLITH_TLS_CLIENT_CA=authority.certificate, MICROLITH_TLS_CLIENT_CERTIFICATES="required")
    server = factory.server(factory.app(SCHEMA), env=env, extra_args=("--no-mqtt",))
    r = https(server, "/Reading/", authority.certificate, cert=(str(client), str(client_key)))
    assert r.status_code == 200, r.text
    for cert in (None, (str(foreign), str(foreign_key))):
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            https(server, "/Reading/", authority.certificate, cert=cert)


def test_settings_that_cannot_serve_stop_the_start(factory, tmp_path):
    authority = Authority(tmp_path / "ca", "Start Test CA")
    certificate, key = authority.issue("localhost")
    other, other_key = authority.issue("other")
    app = factory.app(SCHEMA)
    cases = [
        (tls_env(certificate, tmp_path / "missing.pem"), f"tls.privateKey: {tmp_path / 'missing.pem'} does not exist"),
        (tls_env(certificate, other_key), "is not the private key of the certificate"),
        ({"MICROLITH_TLS_CERTIFICATE": str(certificate)}, "tls.certificate is set but tls.privateKey is not"),
        ({"MICROLITH_HTTP_REDIRECT_PORT": "8080"}, "but this server has no certificate"),
        (tls_env(certificate, key, MICROLITH_TLS_CLIENT_CERTIFICATES="sometimes"), "must be none, optional or required"),
        (tls_env(certificate, key, MICROLITH_TLS_CLIENT_CERTIFICATES="required"), "tls.clientCA is not set"),
        (tls_env(certificate, key, MICROLITH_TLS_CLIENT_CA=authority.certificate, MICROLITH_TLS_CLIENT_CERTIFICATES="required",
                 MICROLITH_MQTT_TLS="false"), "tls.clientCertificates is required but mqtt.tls is false"),
    ]
    for env, words in cases:
        result = serve_must_fail(app, factory.data_dir(), env=env)
        assert words in result.stderr, (env, result.stderr)
        assert "Fatal error" not in result.stderr
