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


class TcpProxy:
    """A TCP proxy on a free loopback port to `target_port`, which a test can cut (every
    connection closed, new ones refused at once) and heal: a network partition between one
    node and NATS."""

    def __init__(self, target_port: int):
        import threading

        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.cut_off = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _accept(self):
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data or self.cut_off:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.close()
            except OSError:
                pass

    def cut(self):
        self.cut_off = True
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets = []

    def heal(self):
        self.cut_off = False

    def close(self):
        self.cut()
        self.listener.close()
