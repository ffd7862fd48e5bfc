"""Fixtures for the end-to-end suite: app folders in temporary directories and real
`microlith serve` processes on free loopback ports; MQTT brokers and clients (helpers in
mqtt_helpers.py). Test modules import helpers, never each other."""

from __future__ import annotations

import itertools
import os
import shutil

import pytest

from microlith_e2e import BINARY, MicrolithServer, write_app
from mqtt_helpers import MosquittoSub, Paho, RawClient, make_broker


def pytest_report_header(config):
    return f"microlith binary: {BINARY}" + ("" if os.path.exists(BINARY) else " (MISSING)")


class _Factory:
    """Makes app folders and servers under one base directory and stops every server at the end."""

    def __init__(self, base):
        self.base = base
        self.servers: list[MicrolithServer] = []
        self.counter = itertools.count(1)

    def app(self, schema: str, **kwargs):
        """An app folder with `schema` (and optional data=, yaml=, web=)."""
        return write_app(self.base / f"app{next(self.counter)}", schema, **kwargs)

    def data_dir(self):
        path = self.base / f"data{next(self.counter)}"
        return path

    def server(self, app_dir, data_dir=None, *, start=True, **kwargs) -> MicrolithServer:
        """A server for `app_dir` on a fresh (or the given) data folder, started unless start=False."""
        server = MicrolithServer(app_dir, data_dir or self.data_dir(), **kwargs)
        self.servers.append(server)
        if start:
            server.start()
        return server

    def close(self):
        failures = []
        for server in self.servers:
            try:
                server.stop()
            except Exception as e:  # keep stopping the others
                failures.append(e)
        if failures:
            raise failures[0]


@pytest.fixture
def factory(tmp_path):
    """Per-test app folders and servers, all stopped when the test ends."""
    f = _Factory(tmp_path)
    yield f
    f.close()


@pytest.fixture(scope="module")
def module_factory(tmp_path_factory, request):
    """App folders and servers shared by the tests of one module."""
    f = _Factory(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    yield f
    f.close()


# -- MQTT ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(module_factory, tmp_path_factory):
    b, stop = make_broker(module_factory, tmp_path_factory.mktemp("broker"))
    yield b
    stop()
    if b.server is not None:
        assert b.server.running, "microlith died during the MQTT tests\n" + b.server.logs()


@pytest.fixture(scope="module")
def auth_broker(module_factory, tmp_path_factory):
    b, stop = make_broker(module_factory, tmp_path_factory.mktemp("authbroker"), users={"alice": "secret"})
    yield b
    stop()


@pytest.fixture(scope="module")
def mosquitto_clients():
    missing = [t for t in ("mosquitto_pub", "mosquitto_sub") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install the Debian package mosquitto-clients "
                    "(apt-get install -y mosquitto-clients); these tests do not skip without it")


def _closing(make, close):
    """A fixture body: `make` builds a client for the test, `close` ends each one afterwards."""
    made = []

    def build(*args, **kwargs):
        c = make(*args, **kwargs)
        made.append(c)
        return c

    yield build
    for c in made:
        close(c)


@pytest.fixture
def clients():
    """Makes paho clients and closes them all at the end of the test."""
    yield from _closing(Paho, Paho.close)


@pytest.fixture
def raw():
    """Makes raw MQTT socket clients (by port) and closes them at the end of the test."""
    yield from _closing(RawClient, RawClient.close)


@pytest.fixture
def subs():
    """Starts mosquitto_sub processes and stops them at the end of the test."""
    yield from _closing(MosquittoSub, MosquittoSub.stop)
