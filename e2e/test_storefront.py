"""The storefront binary as a person runs it: `storefront serve --topology microlith|services`
opens a browsable shop, and stops cleanly (service processes included) on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from microlith_e2e import REPO, free_port, http_request

STOREFRONT_BIN = os.environ.get("STOREFRONT_BIN") or str(REPO / "Apps" / "Storefront" / ".build" / "debug" / "storefront")

pytestmark = pytest.mark.skipif(
    not os.path.exists(STOREFRONT_BIN) and not os.environ.get("SHOP_BIN_REQUIRED"),
    reason=f"the storefront is not built ({STOREFRONT_BIN}); scripts/test builds it",
)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize("topology", ["microlith", "services"])
def test_serve_opens_a_shop_and_stops_cleanly(tmp_path, topology):
    port = free_port()
    proc = subprocess.Popen(
        [STOREFRONT_BIN, "serve", "--topology", topology, "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--app", str(REPO / "Apps" / "Storefront" / "Sources" / "Storefront" / "app")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"serving the shop ({topology}) on http://127.0.0.1:{port}" in line, line + proc.stderr.read()
        home = http_request(port, "GET", "/")
        assert home.status_code == 200 and "Microlith Store" in home.text
        pdp = http_request(port, "GET", "/p/p000001")
        assert pdp.status_code == 200 and "<h1>" in pdp.text
        # A path parameter is percent-decoded once, strictly: an undecodable escape is a 400.
        bad = http_request(port, "GET", "/p/%FFz")
        assert bad.status_code == 400 and bad.json()["code"] == "badPath", bad.text
        services = children(proc.pid)
        assert len(services) == (4 if topology == "services" else 0), services
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") and
                                                  open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in services):
            time.sleep(0.1)
        assert not any(os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in services)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_binary_finds_its_own_templates_from_any_folder(tmp_path):
    """No --app, started from an empty folder: the schema and templates ship beside the binary."""
    port = free_port()
    proc = subprocess.Popen([STOREFRONT_BIN, "--port", str(port), "--data-dir", str(tmp_path / "data"), "--log-level", "error"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"serving the shop (microlith) on http://127.0.0.1:{port}" in line, line + proc.stderr.read()
        pdp = http_request(port, "GET", "/p/p000001")
        assert pdp.status_code == 200 and "<h1>" in pdp.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_arguments_are_refused_with_a_message(tmp_path):
    for args, fragment in ((["--topology", "mesh"], "--topology must be microlith or services"),
                           (["--port", "99999"], "--port must be 0 to 65535"),
                           (["--scale", "0"], "--scale must be 1 to 1000"),
                           (["--cache", "maybe"], "--cache must be on or off"),
                           (["--app", str(tmp_path)], "no storefront app folder"),
                           (["--bogus", "1"], "Unknown option '--bogus'"),
                           (["service", "billing", "--port", "0"], "no service named 'billing'")):
        r = subprocess.run([STOREFRONT_BIN, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, args
        assert fragment in r.stderr, (args, r.stderr)
