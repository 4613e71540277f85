"""Helpers shared by the Python benchmarks (idle_conns.py, burst_rss.py):
where the binary is, free loopback ports, waiting for a listener, and a
process's memory from /proc."""
import os
import resource
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BG_BIN", os.path.join(ROOT, "build", "bordergate"))


def free_port():
    """A free TCP port on 127.0.0.1."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0):
    """Wait until something accepts on 127.0.0.1:PORT (exit after TIMEOUT s)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def status_kb(pid, field="VmRSS"):
    """A /proc/PID/status field in kB (VmRSS, VmHWM...), 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def raise_nofile(need):
    """Raise this process's descriptor limit to NEED (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def start_sink(port):
    """`bordergate sink` on 127.0.0.1:PORT, listening when this returns."""
    p = subprocess.Popen([BIN, "sink", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    wait_port(port)
    return p
