"""Helpers shared by the benchmark scripts: Debian installs, ports, fd limits, wrk runs, nginx."""
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ensure_debian(*commands_and_packages):
    """Installs the Debian packages whose commands are missing (apt-get update once)."""
    missing = [pkg for cmd, pkg in commands_and_packages if shutil.which(cmd) is None and not os.path.exists(f"/usr/sbin/{cmd}")]
    if missing:
        print(f"installing {' '.join(missing)} from Debian", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    """The body of `url` once it answers 200; exits the script after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {url}")


def raise_fd_limit():
    """Raises this process's open-file limit to the hard limit (children inherit it)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(target, 65536), max(target, 65536)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except Exception:
        pass


def parse_latency(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, duration, connections, threads, script=None, timeout_s=10):
    """One wrk run; returns req/s, p50/p90/p99 (ms; p95 is not printed by wrk, p90 is), errors, requests."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", f"--timeout={timeout_s}s"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: parse_latency(re.search(rf"\s{p}%\s+(\S+)", out).group(1)) for p in ("50", "75", "90", "99")}
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"url": url, "connections": connections, "duration_s": duration, "requests": requests,
            "requests_per_second": rps, "p50_ms": latency["50"], "p90_ms": latency["90"], "p99_ms": latency["99"],
            "errors": errors, "error_rate": errors / requests if requests else 0.0}


def start_nginx(work, www, port):
    """nginx serving the folder `www` on 127.0.0.1:`port`; returns the process."""
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
daemon off;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  default_type text/html;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {www};
    location / {{ etag on; try_files $uri /page.html; }}
  }}
}}
""")
    return subprocess.Popen([nginx_bin, "-c", conf, "-p", work], stderr=subprocess.DEVNULL)
