#!/usr/bin/python3
"""
Hostile peers and exhausted resources (issue 19): small misbehaving
upstreams written here in Python, on loopback, against the real daemon.

  * never deliver twice: an upstream that reads a request on a pooled
    keep-alive connection and resets without answering gets each POST
    once; the caller gets 502 and the completion record says
    "upstream_outcome_unknown";
  * descriptors run out (prlimit): every worker and the admin listener
    accept again within a second once descriptors are free, without a busy
    loop or a flood of log lines, and /readyz says when a worker cannot
    accept;
  * a client that leaves while the upstream hangs is noticed at once: its
    connection and the upstream exchange are released within 100 ms;
  * routes.max_upstream_concurrency: a dead partner cannot take every
    connection; a healthy route keeps answering in milliseconds.
"""
import http.client
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import make_config, route, t, wait_for  # noqa: E402
from test_audit import audit_records, completions_of  # noqa: E402


def reset(sock):
    """Close SOCK with a TCP reset (SO_LINGER 0), not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


class Upstream:
    """
    A threaded HTTP/1.1 upstream whose behaviour per request is chosen by
    DECIDE(conn_index, request_index_on_conn, head) -> "answer", "reset"
    (read the request, then reset without a byte), "hang" (read it, never
    answer), "close" (answer, then close with a FIN without saying so).
    Counts every request it has read by target (.seen) and the
    connections it has accepted and seen closed.
    """

    def __init__(self, tc, decide):
        self.decide = decide
        self.lock = threading.Lock()
        self.seen = {}
        self.accepted = 0
        self.closed_by_peer = 0
        self.hanging = 0
        self.max_hanging = 0
        self.open_conns = set()
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1024)
        self.port = self.srv.getsockname()[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.stop = False
        threading.Thread(target=self._accept_loop, daemon=True).start()
        tc.addCleanup(self.close)

    def _accept_loop(self):
        while not self.stop:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                n = self.accepted
                self.accepted += 1
                self.open_conns.add(s)
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _read_request(self, s, buf):
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None, None, buf
            buf += chunk
        i = buf.index(b"\r\n\r\n") + 4
        head, buf = buf[:i], buf[i:]
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":", 1)[1])
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                return None, None, buf
            buf += chunk
        return head, buf[:n], buf[n:]

    def _serve(self, s, n):
        buf = b""
        k = 0
        try:
            while not self.stop:
                head, body, buf = self._read_request(s, buf)
                if head is None:
                    with self.lock:
                        self.closed_by_peer += 1
                    return
                target = head.split(b" ", 2)[1].decode()
                with self.lock:
                    self.seen[target] = self.seen.get(target, 0) + 1
                what = self.decide(n, k, head)
                k += 1
                if what == "reset":
                    reset(s)
                    return
                if what == "hang":
                    with self.lock:
                        self.hanging += 1
                        self.max_hanging = max(self.max_hanging, self.hanging)
                    s.settimeout(None)
                    try:
                        s.recv(1)
                    finally:
                        with self.lock:
                            self.hanging -= 1
                            self.closed_by_peer += 1
                    return
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
                if what == "close":
                    s.close()
                    return
        except OSError:
            pass
        finally:
            with self.lock:
                self.open_conns.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def duplicates(self):
        with self.lock:
            return {k: v for k, v in self.seen.items() if v > 1}

    def close(self):
        self.stop = True
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()
        with self.lock:
            conns = list(self.open_conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass


def completions(px):
    d = os.path.splitext(px.config_path)[0] + "-audit"
    return completions_of(audit_records(d))


def decisions_by_path(px):
    d = os.path.splitext(px.config_path)[0] + "-audit"
    return [r for r in audit_records(d) if r.get("type") == "decision"]


def keepalive_requests(port, method, paths, host, results, body=b"{}", pause=0):
    """Send each of PATHS on one keep-alive connection (reconnecting when
    the proxy closes), PAUSE seconds apart; append (path, status) to
    RESULTS."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=t(30))
    for p in paths:
        time.sleep(pause)
        for _attempt in range(2):
            try:
                c.request(method, p, body=body if method in ("POST", "PUT") else None,
                          headers={"Host": host, "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                results.append((p, r.status))
                if r.getheader("connection", "").lower() == "close":
                    c.close()
                break
            except (http.client.HTTPException, OSError):
                # The proxy closed an idle keep-alive connection: reconnect
                # and send again (a client-side retry the test counts too).
                c.close()
                results.append((p, "conn"))
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=t(30))
    c.close()


class NeverDeliverTwice(bgtest.TestCase):
    def run_clients(self, px, method, n, threads=8, prefix="/p/"):
        results = []
        per = [["%s%d-%d" % (prefix, i, j) for j in range(n // threads)] for i in range(threads)]
        ths = [threading.Thread(target=keepalive_requests, args=(px.port, method, paths, "a.example", results))
               for paths in per]
        for th in ths:
            th.start()
        for th in ths:
            th.join(t(300))
        return results

    def test_post_read_then_reset_is_never_sent_twice(self):
        # Every connection answers its first request (so it is pooled),
        # then reads and resets on every other one: the defect sent those
        # POSTs again, sometimes on another pooled connection.
        up = Upstream(self, lambda n, k, head: "answer" if k % 2 == 0 else "reset")
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        timeouts={"upstream_idle_ms": 60000})
        results = self.run_clients(px, "POST", 1200)
        self.assertGreaterEqual(len(up.seen), 1200)
        self.assertEqual(up.duplicates(), {}, "POSTs delivered more than once")
        statuses = [s for _, s in results]
        self.assertEqual(statuses.count("conn"), 0, "the proxy dropped client connections")
        n502 = statuses.count(502)
        self.assertGreater(n502, 100, "the upstream reset many requests after reading them")
        self.assertEqual(statuses.count(200) + n502, len(statuses))
        # Each 502 was recorded as an exchange whose upstream outcome is unknown.
        want = n502
        recs = wait_for(lambda: (lambda c: c if sum(1 for r in c if r["result"] == "upstream_outcome_unknown") >= want
                                 else None)(completions(px)), t(20), "completion records")
        self.assertEqual(sum(1 for r in recs if r["result"] == "upstream_outcome_unknown"), n502)
        self.assertEqual(sum(1 for r in recs if r["result"] == "ok"), statuses.count(200))
        self.assertIn("upstream outcome unknown (not retried)", px.log())

    def test_get_read_then_reset_on_pooled_connection_is_retried_once(self):
        # GET is idempotent (RFC 9110 9.2.2): the keep-alive race is hidden
        # from the caller by one retry on a fresh connection, never two.
        up = Upstream(self, lambda n, k, head: "answer" if k % 2 == 0 else "reset")
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        timeouts={"upstream_idle_ms": 60000})
        results = self.run_clients(px, "GET", 200, threads=4)
        statuses = [s for _, s in results]
        self.assertEqual(statuses.count(200), len(statuses), statuses)
        self.assertLessEqual(max(up.seen.values()), 2)
        self.assertGreater(sum(1 for v in up.seen.values() if v == 2), 10)

    def test_post_after_upstream_closed_idle_connection_goes_on_a_fresh_one(self):
        # The upstream answers without "Connection: close" and then closes:
        # the pooled connection is found closed before a byte is written,
        # so the POST provably never left and goes on a new connection.
        # (The requests are 20 ms apart so that the close has reached the
        # proxy: a POST written at the very moment the upstream closes is
        # the unknowable case, answered 502.)
        up = Upstream(self, lambda n, k, head: "close")
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        timeouts={"upstream_idle_ms": 60000})
        results = []
        keepalive_requests(px.port, "POST", ["/c/%d" % i for i in range(200)], "a.example", results,
                           pause=0.02)
        self.assertEqual([s for _, s in results], [200] * 200)
        self.assertEqual(up.duplicates(), {})
        self.assertEqual(len(up.seen), 200)


def cpu_seconds(pid):
    """User + system CPU time of PID so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class OutOfDescriptors(bgtest.TestCase):
    def test_every_listener_accepts_again_without_busy_loop(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], workers=2)
        self.assertEqual(self.get(px, "/warm", host="a.example").status_code, 200)
        # A keep-alive admin connection opened before the descriptors run out.
        hold = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        self.addCleanup(hold.close)

        def admin_on_hold(path):
            hold.request("GET", path)
            r = hold.getresponse()
            return r.status, r.read()

        self.assertEqual(admin_on_hold("/readyz")[0], 200)
        limit = open_fds(px.pid) + 16
        subprocess.run(["prlimit", "--pid", str(px.pid), "--nofile=%d:%d" % (limit, limit)], check=True)
        socks = []

        def connect(port, n, send=None):
            for _ in range(n):
                c = socket.create_connection(("127.0.0.1", port), timeout=t(5))
                if send:
                    c.sendall(send)
                socks.append(c)

        try:
            # The admin listener takes what is left, then hits EMFILE; then
            # both workers do, with no connection of their own to close.
            connect(px.admin_port, 40)
            time.sleep(0.3)
            connect(px.port, 24, b"GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
            wait_for(lambda: open_fds(px.pid) >= limit, t(5), "descriptors to run out")
            time.sleep(0.5)
            # No busy loop: almost no CPU and no stream of log lines.
            lines0, cpu0 = len(px.log().splitlines()), cpu_seconds(px.pid)
            time.sleep(1.0)
            cpu = cpu_seconds(px.pid) - cpu0
            lines = len(px.log().splitlines()) - lines0
            self.assertLess(cpu, 0.2, "daemon CPU time while out of descriptors")
            self.assertLess(lines, 10, "log lines per second while out of descriptors")
            status, body = admin_on_hold("/readyz")
            self.assertEqual(status, 503, body)
            self.assertRegex(body.decode(), r"worker \d: cannot accept connections: out of file descriptors")
            self.assertIn("Too many open files", px.log())
        finally:
            for c in socks:
                c.close()
        t0 = time.monotonic()
        # Every listener accepts again within a second: the admin one, and
        # both workers (SO_REUSEPORT spreads 16 new connections over them;
        # /readyz names any worker still paused).
        wait_for(lambda: admin_on_hold("/readyz")[0] == 200, t(1), "/readyz to be 200 again")
        self.assertEqual(px.healthz()["_status"], 200)
        for i in range(16):
            r = bgtest.Raw(px.port, timeout=t(1))
            r.send("GET /after/%d HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n" % i)
            self.assertEqual(r.read_response().status, 200)
            r.close()
        self.assertLess(time.monotonic() - t0, t(1.5))
        self.assertGreaterEqual(px.stats()["accept_errors"], 1)


class ClientLeaves(bgtest.TestCase):
    def test_client_abort_while_upstream_hangs_releases_at_once(self):
        up = Upstream(self, lambda n, k, head: "hang")
        px = self.proxy(routes=[route("dead", up.origin, host="dead.example")],
                        timeouts={"response_ms": 60000})
        n = 20
        clients = []
        for i in range(n):
            c = socket.create_connection(("127.0.0.1", px.port), timeout=t(5))
            c.sendall(b"POST /wait/%d HTTP/1.1\r\nHost: dead.example\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 2\r\n\r\n{}" % i)
            clients.append(c)
        wait_for(lambda: len(up.seen) == n, t(5), "every request at the hanging upstream")
        self.assertEqual(px.stats()["connections_open"], n)
        # Half leave with a FIN, half with a reset.
        t0 = time.monotonic()
        for i, c in enumerate(clients):
            if i % 2:
                reset(c)
            else:
                c.close()
        wait_for(lambda: px.stats()["connections_open"] == 0, t(5), "connections to be released", interval=0.005)
        released = time.monotonic() - t0
        wait_for(lambda: up.closed_by_peer == n, t(5), "upstream exchanges to be cancelled", interval=0.005)
        cancelled = time.monotonic() - t0
        self.assertLess(released, t(0.1), "client connections released %.3f s after the clients left" % released)
        self.assertLess(cancelled, t(0.1), "upstream exchanges cancelled %.3f s after the clients left" % cancelled)
        self.assertEqual(px.stats()["client_aborts"], n)
        recs = wait_for(lambda: (lambda c: c if len(c) >= n else None)(completions(px)), t(10), "completion records")
        self.assertEqual([r["result"] for r in recs], ["client_aborted"] * n)
        self.assertEqual(up.duplicates(), {})


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


class RouteConcurrency(bgtest.TestCase):
    def test_dead_partner_does_not_stop_a_healthy_route(self, limit=4):
        dead = Upstream(self, lambda n, k, head: "hang")
        ok = self.sink("ok")
        px = self.proxy(routes=[route("dead", dead.origin, host="dead.example", max_upstream_concurrency=limit),
                                route("ok", ok.origin, host="ok.example")],
                        limits={"max_connections": 32}, timeouts={"response_ms": 60000})
        stop = threading.Event()
        statuses = []

        def hammer():
            # Callers of the dead partner: each waits up to 0.3 s, then
            # gives up (closes) and tries again.
            while not stop.is_set():
                try:
                    c = socket.create_connection(("127.0.0.1", px.port), timeout=0.3)
                    c.sendall(b"POST /x HTTP/1.1\r\nHost: dead.example\r\nContent-Length: 2\r\n\r\n{}")
                    statuses.append(c.recv(12)[9:12])
                except OSError:
                    statuses.append(b"timeout")
                finally:
                    c.close()

        ths = [threading.Thread(target=hammer, daemon=True) for _ in range(40)]
        for th in ths:
            th.start()
        self.addCleanup(stop.set)
        wait_for(lambda: dead.max_hanging >= limit, t(5), "the dead partner to hold its share")
        lat = []
        in_flight = []
        for i in range(200):
            if i % 10 == 0:
                in_flight.append(px.stats()["upstream_in_flight"]["dead"])
            t0 = time.monotonic()
            r = bgtest.Raw(px.port, timeout=t(5))
            r.send("GET /probe/%d HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n" % i)
            self.assertEqual(r.read_response().status, 200)
            r.close()
            lat.append((time.monotonic() - t0) * 1000)
        stop.set()
        for th in ths:
            th.join(t(5))
        p99 = percentile(lat, 99)
        sys.stderr.write("\n[healthy route probe] p50 %.1f ms, p99 %.1f ms, max %.1f ms\n"
                         % (percentile(lat, 50), p99, max(lat)))
        # The figure is printed; the assertion only guards against probes that
        # wait on the dead partner (its callers give up after 0.3 s, its
        # response timeout is 60 s). Timing bars belong in bench/: on this
        # shared 2-core machine p99 moves between 30 and 160 ms with load.
        # What tells a limited route from an unlimited one is asserted below:
        # the dead partner never holds more than its share, the rest get 503.
        self.assertLess(p99, 1000 * bgtest.SCALE, "p99 of the healthy route's probes (ms)")
        self.assertEqual(max(in_flight), limit, "requests in flight to the dead partner")
        self.assertIn(b"503", statuses)
        self.assertGreater(px.stats()["refused_concurrency"], 0)
        # Its callers who gave up released their share at once.
        wait_for(lambda: px.stats()["upstream_in_flight"]["dead"] == 0, t(2), "slots of aborted callers")


if __name__ == "__main__":
    bgtest.main()
