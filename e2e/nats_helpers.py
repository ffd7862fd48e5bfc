"""A real nats-server with JetStream for the replication tests: started on a free loopback
port with its own store folder, stopped, killed and started again on the same port and store."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from microlith_e2e import _die_with_parent, free_port


def nats_binary() -> str | None:
    return shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


class NatsServer:
    """One nats-server process (`-js`), on one port and store folder for its whole life."""

    def __init__(self, store_dir: Path):
        binary = nats_binary()
        assert binary, "nats-server is not installed (scripts/test installs it)"
        self.binary = binary
        self.store_dir = Path(store_dir)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> "NatsServer":
        self.process = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(7) == b"INFO {\"":
                        return self
            except OSError:
                pass
            assert self.process.poll() is None, "nats-server exited at start"
            time.sleep(0.05)
        raise AssertionError(f"nats-server did not listen on {self.port} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def nats_request(port: int, subject: str, payload: bytes, timeout: float = 5) -> bytes:
    """One request over the NATS text protocol (CONNECT, SUB to an inbox, PUB with it as the
    reply subject), returning the answer's payload."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"INFO ")
        inbox = "_INBOX.e2e"
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        s.sendall(f"SUB {inbox} 1\r\n".encode())
        s.sendall(f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\nPING\r\n")
        while True:
            line = f.readline()
            if not line:
                raise AssertionError("NATS closed the connection")
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                size = int(line.split()[-1])
                data = f.read(size + 2)[:size]
                return data
            elif line.startswith(b"-ERR"):
                raise AssertionError(line.decode())
