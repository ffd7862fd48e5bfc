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


def wrk(url, duration, connections, threads, script=None, timeout_s=10, cpus=None):
    """One wrk run (pinned to `cpus`, e.g. "1", when given); returns req/s, p50/p90/p99 (ms; p95 is
    not printed by wrk, p90 is), errors, requests."""
    cmd = (["taskset", "-c", cpus] if cpus else []) + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
                                                       f"--timeout={timeout_s}s"]
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


def ensure_pip(*modules_and_packages):
    """Installs the PyPI packages whose modules cannot be imported; returns the modules still missing."""
    import importlib
    import sys
    missing = []
    for module, package in modules_and_packages:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append((module, package))
    if missing:
        print(f"installing {' '.join(p for _, p in missing)} from PyPI", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *(p for _, p in missing)], check=False)
        importlib.invalidate_caches()
    still = []
    for module, _ in missing:
        try:
            importlib.import_module(module)
        except ImportError:
            still.append(module)
    return still


def wait_tcp(host, port, timeout=60, proc=None):
    """Waits until `host:port` accepts a connection; exits the script after `timeout` seconds or if `proc` exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process {proc.args[0]} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {host}:{port}")


def percentile(sorted_values, p):
    """The nearest-rank p-th percentile (0 < p <= 100) of an ascending sequence; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def cpu_seconds(pid):
    """User + system CPU seconds used so far by process `pid` (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_note():
    """One line naming the CPU, core count, kernel and memory."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f", {int(f.readline().split()[1]) // 1024 // 1024} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores, Linux {os.uname().release}{mem}"


def stop_process(proc, timeout=30):
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    import signal
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
