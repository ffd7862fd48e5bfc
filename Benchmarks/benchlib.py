"""Helpers shared by the benchmark scripts: core pinning, Debian installs, ports, fd limits, wrk
runs, nginx.

Core pinning (every benchmark): the system under test (servers, brokers, nginx) runs on core 0
and the load generators (wrk, the scripts' own Python clients) on core 1, so the two do not
compete for one core and a figure is the server's, not the generator's. `sut(cmd)` and
`load(cmd)` prefix a command with `taskset`; `pin_self_to_load()` moves the calling script (and
what it forks later) to the load core; `pinning_note()` is the line every benchmark prints and
writes beside its figures. BENCH_SUT_CPUS and BENCH_LOAD_CPUS (taskset lists, default 0 and 1)
choose other cores; BENCH_PIN=off, or a machine with fewer than 2 cores, runs everything
unpinned (and the note says so).
"""
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}

SUT_CPUS = os.environ.get("BENCH_SUT_CPUS", "0")
LOAD_CPUS = os.environ.get("BENCH_LOAD_CPUS", "1")


def cpu_list(spec):
    """The set of CPU numbers in a taskset list such as "0", "1,3" or "0-2"."""
    cpus = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.update(range(int(a), int(b) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def pinning_enabled():
    """Whether the benchmarks pin (BENCH_PIN is not off, taskset exists, both core lists exist)."""
    if os.environ.get("BENCH_PIN", "on").lower() in ("0", "off", "no", "false"):
        return False
    if shutil.which("taskset") is None:
        return False
    try:
        allowed = os.sched_getaffinity(0) | cpu_list(SUT_CPUS) | cpu_list(LOAD_CPUS)
        online = set(range(os.cpu_count() or 1))
        return len(online) >= 2 and allowed <= online
    except (ValueError, OSError):
        return False


def pinning_note():
    """The one line every benchmark prints (and records) about where things ran."""
    if pinning_enabled():
        return (f"pinned: system under test on core {SUT_CPUS} (taskset -c {SUT_CPUS}), "
                f"load generator on core {LOAD_CPUS} (taskset -c {LOAD_CPUS})")
    return "not pinned: system under test and load generator share all cores (BENCH_PIN=off, no taskset, or fewer than 2 cores)"


def pinning():
    """The pinning as a record for the JSON results."""
    on = pinning_enabled()
    return {"pinned": on, "sut_cpus": SUT_CPUS if on else None, "load_cpus": LOAD_CPUS if on else None, "note": pinning_note()}


def sut(cmd):
    """`cmd` (a list) run on the system-under-test core."""
    return (["taskset", "-c", SUT_CPUS] if pinning_enabled() else []) + list(cmd)


def load(cmd):
    """`cmd` (a list) run on the load-generator core."""
    return (["taskset", "-c", LOAD_CPUS] if pinning_enabled() else []) + list(cmd)


def pin_self_to_load():
    """Moves this script (its Python clients and samplers, and processes it starts later without
    `sut`) to the load-generator core."""
    if pinning_enabled():
        os.sched_setaffinity(0, cpu_list(LOAD_CPUS))


def pin_pid_to_sut(pid):
    """Moves a running process, every thread of it and its child processes, to the system-under-test
    core (for servers started by helpers that do not take a command prefix)."""
    if not pinning_enabled():
        return
    cpus = cpu_list(SUT_CPUS)
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    except Exception:
        pass
    for p in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            tids = [p]
        for t in tids:
            try:
                os.sched_setaffinity(t, cpus)
            except OSError:
                pass


def sut_worker_count():
    """nginx workers for the system-under-test core(s): one per pinned core, else one per core."""
    return len(cpu_list(SUT_CPUS)) if pinning_enabled() else "auto"


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


def wait_http(url, timeout=60, proc=None, log=None):
    """The body of `url` once it answers 200; exits the script after `timeout` seconds, or at once
    when `proc` (the server, if given) exits first, with the end of its output file `log`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if log:
                with open(log, errors="replace") as f:
                    tail = f.read()[-600:]
            raise SystemExit(f"{proc.args} exited with {proc.returncode} before {url} answered:\n{tail}")
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


def wrk_command(url, duration, connections, threads, script=None, timeout_s=10, cpus=None, headers=()):
    """The wrk command line: on the load-generator core (or on `cpus` when given)."""
    pin = ["taskset", "-c", cpus] if cpus else (["taskset", "-c", LOAD_CPUS] if pinning_enabled() else [])
    cmd = pin + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", f"--timeout={timeout_s}s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    return cmd + [url]


def wrk(url, duration, connections, threads, script=None, timeout_s=10, cpus=None, headers=()):
    """One wrk run on the load-generator core (or on `cpus`, e.g. "1", when given); returns req/s,
    p50/p90/p99 (ms; p95 is not printed by wrk, p90 is), errors, requests."""
    out = subprocess.run(wrk_command(url, duration, connections, threads, script, timeout_s, cpus, headers),
                         check=True, capture_output=True, text=True).stdout
    return parse_wrk(out, url, duration, connections)


def parse_wrk(out, url, duration, connections):
    """The figures of one wrk run's output (see `wrk`)."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: parse_latency(re.search(rf"\s{p}%\s+(\S+)", out).group(1)) for p in ("50", "75", "90", "99")}
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = socket_errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        non_2xx = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        socket_errors = sum(int(x) for x in m.groups())
    errors = non_2xx + socket_errors
    return {"url": url, "connections": connections, "duration_s": duration, "requests": requests,
            "requests_per_second": rps, "p50_ms": latency["50"], "p90_ms": latency["90"], "p99_ms": latency["99"],
            "errors": errors, "non_2xx": non_2xx, "socket_errors": socket_errors,
            "error_rate": errors / requests if requests else 0.0}


def start_nginx(work, www, port):
    """nginx serving the folder `www` on 127.0.0.1:`port`, on the system-under-test core (one
    worker per pinned core); returns the process."""
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes {sut_worker_count()};
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
    return subprocess.Popen(sut([nginx_bin, "-c", conf, "-p", work]), stderr=subprocess.DEVNULL)


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
