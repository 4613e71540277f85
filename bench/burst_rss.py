#!/usr/bin/env python3
"""Resident memory after bursts of connections (issue 19).

Starts its own sink and bordergate, takes the idle RSS (after a few warm-up
requests), then runs BURSTS bursts: COUNT client connections opened at once,
one POST sent on each before any answer is read (so that many exchanges are
in flight together), every answer read, every connection closed. After each
burst it waits for the daemon to settle and reads RSS again. Prints the idle,
peak (VmHWM) and after-burst figures and the bar: after-burst RSS within
2x of idle.

With --hold N, N keep-alive client connections are opened after the
warm-up, used once and kept open (idle) throughout: the idle figure includes
them, and the daemon never drains to nothing after a burst.

    bench/burst_rss.py                    # 3 bursts of 8,000
    bench/burst_rss.py --count 4000 --bursts 5
    bench/burst_rss.py --hold 400         # with 400 idle keep-alive clients
"""
import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BIN, free_port, raise_nofile, start_sink, status_kb, wait_port  # noqa: E402



def burst(port, count):
    """COUNT connections, a POST on each, then every answer; returns the
    number of 200s."""
    body = b'{"order":{"id":"A-1","items":[{"sku":"x","qty":1}]},"note":"burst"}'
    req = (b"POST /burst HTTP/1.1\r\nHost: burst.example\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(req)
        socks.append(s)
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    ok = 0
    deadline = time.time() + 120
    pending = len(socks)
    while pending > 0 and time.time() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                got[s] += chunk
                continue
            sel.unregister(s)
            pending -= 1
            if got[s].startswith(b"HTTP/1.1 200"):
                ok += 1
    for s in socks:
        s.close()
    sel.close()
    return ok


def hold(port, count):
    """COUNT keep-alive connections, one GET answered on each, left open."""
    req = b"GET /hold HTTP/1.1\r\nHost: burst.example\r\n\r\n"
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(req)
        socks.append(s)
    for s in socks:
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("a held connection was closed")
            got += chunk
    return socks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=8000)
    ap.add_argument("--bursts", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait after a burst")
    ap.add_argument("--hold", type=int, default=0,
                    help="idle keep-alive connections kept open throughout")
    args = ap.parse_args()

    raise_nofile((args.count + args.hold) * 2 + 1000)

    tmp = tempfile.mkdtemp(prefix="bg-burst-")
    sink_port, bg_port = free_port(), free_port()
    procs = []
    try:
        procs.append(start_sink(sink_port))
        cfg = {
            "listen": f"127.0.0.1:{bg_port}",
            "workers": args.workers,
            "limits": {"max_connections": args.count + args.hold + 500},
            "routes": [{"id": "burst", "match": {"path_prefix": "/"},
                        "upstream": f"http://127.0.0.1:{sink_port}",
                        "allow_private_addresses": True}],
            "geo": {"overrides": {"cidrs": {"127.0.0.0/8": "CN"}}},
            "audit": {"directory": os.path.join(tmp, "audit")},
            "log": {"level": "error"},
        }
        path = os.path.join(tmp, "bg.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        bg = subprocess.Popen([BIN, "run", "--config", path])
        procs.append(bg)
        wait_port(bg_port)
        burst(bg_port, 20)
        held = hold(bg_port, args.hold)
        time.sleep(args.settle)
        idle = status_kb(bg.pid, "VmRSS")
        print(f"idle RSS: {idle / 1024:.1f} MB" +
              (f" ({len(held)} idle keep-alive connections held)" if held else ""))
        after = idle
        for i in range(args.bursts):
            t0 = time.time()
            ok = burst(bg_port, args.count)
            took = time.time() - t0
            time.sleep(args.settle)
            after = status_kb(bg.pid, "VmRSS")
            print(f"burst {i + 1}: {args.count} connections, {ok} answered 200 in {took:.1f} s; "
                  f"peak {status_kb(bg.pid, 'VmHWM') / 1024:.1f} MB, after {after / 1024:.1f} MB")
        peak = status_kb(bg.pid, "VmHWM")
        ratio = after / idle if idle else 0
        print(f"idle {idle / 1024:.1f} MB, peak {peak / 1024:.1f} MB, after bursts {after / 1024:.1f} MB "
              f"({ratio:.2f}x idle)")
        ok = ratio <= 2.0
        print(f"bar: after-burst RSS within 2x of idle -> {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
