#!/usr/bin/env python3
"""Memory of idle keep-alive client connections.

Opens N client connections to a running bordergate (default 5,000), sends one
request on each (so every connection has been through a full exchange and
sits idle in keep-alive), then reads the daemon's resident memory from
/proc/PID/status and prints the figure and the bar (50 MB for 5,000).

    bench/idle_conns.py            # starts its own sink + bordergate
    bench/idle_conns.py --count 10000
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BIN, free_port, raise_nofile, start_sink, status_kb, wait_port  # noqa: E402


def rss_kb(pid):
    return status_kb(pid, "VmRSS")



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--bar-mb", type=float, default=50.0)
    args = ap.parse_args()

    raise_nofile(args.count * 2 + 1000)

    tmp = tempfile.mkdtemp(prefix="bg-idle-")
    sink_port, bg_port = free_port(), free_port()
    procs = []
    try:
        procs.append(start_sink(sink_port))
        cfg = {
            "listen": f"127.0.0.1:{bg_port}",
            "limits": {"max_connections": args.count + 100},
            "timeouts": {"idle_ms": 600000, "header_ms": 600000},
            "routes": [{"id": "idle", "match": {"path_prefix": "/"},
                        "upstream": f"http://127.0.0.1:{sink_port}",
                        "allow_private_addresses": True}],
            "log": {"level": "warn"},
        }
        path = os.path.join(tmp, "bg.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        bg = subprocess.Popen([BIN, "run", "--config", path])
        procs.append(bg)
        wait_port(bg_port)
        base = rss_kb(bg.pid)

        req = b"GET /ping HTTP/1.1\r\nHost: idle.example\r\n\r\n"
        socks = []
        t0 = time.time()
        for i in range(args.count):
            s = socket.create_connection(("127.0.0.1", bg_port))
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise SystemExit(f"connection {i} closed early")
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"connection {i}: {data[:40]!r}")
            socks.append(s)
        elapsed = time.time() - t0
        time.sleep(1.0)
        rss = rss_kb(bg.pid)
        per_conn = (rss - base) * 1024 / args.count
        print(f"idle keep-alive connections: {args.count} (opened and used in {elapsed:.1f}s)")
        print(f"bordergate RSS: {rss / 1024:.1f} MB (at start {base / 1024:.1f} MB, "
              f"{per_conn / 1024:.2f} KiB per idle connection)")
        ok = rss / 1024 < args.bar_mb * args.count / 5000
        print(f"bar: under {args.bar_mb * args.count / 5000:.0f} MB -> {'PASS' if ok else 'FAIL'}")
        for s in socks:
            s.close()
        return 0 if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
