"""The access log (issue 17): one JSON line per request, refusals included,
with no personal information, reopened on SIGUSR1.

The whole adversary corpus (tests/bypass, 404 raw requests that hide PI in
paths, queries, headers and bodies, many of them refused 400/405/413/421/451)
goes through a daemon with an access log; every request id a client was
answered with appears in the log exactly once, and leakscan (every
recoverable form) finds none of the corpus's secrets in it.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import unittest

import bgtest
from bgtest import route, t

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_bypass  # noqa: E402
from test_bypass import leakscan  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


# Audit-log leaks not closed yet (test_audit_log_holds_no_personal_information).


def audit_text(tmpdir):
    d = os.path.join(tmpdir, "audit")
    return b"".join(read(os.path.join(d, n)) for n in sorted(os.listdir(d)) if n.startswith("audit-"))


def read_lines(path):
    data = read(path)
    lines = [json.loads(ln) for ln in data.decode("utf-8").splitlines() if ln.strip()]
    return data, lines


def exchange(port, data, half_close=False):
    """Send DATA on its own connection: (status, X-Bordergate-Id), or
    (0, None) when no response came. HALF_CLOSE: shut the client's side
    after sending (an entry whose body is cut short)."""
    try:
        r = bgtest.Raw(port, timeout=t(15))
    except OSError:
        return 0, None
    try:
        r.send(data)
        if half_close:
            r.sock.shutdown(socket.SHUT_WR)
        resp = r.read_response()
        return resp.status, resp.header("x-bordergate-id")
    except (EOFError, OSError, AssertionError, ValueError):
        return 0, None
    finally:
        r.close()


class AccessLogTest(bgtest.TestCase):
    def start(self, up, **extra):
        cfg = test_bypass.policy_config(up)
        cfg["access_log"] = {"path": os.path.join(self.tmpdir, "access.log")}
        cfg["audit"] = {"directory": os.path.join(self.tmpdir, "audit")}
        cfg.update(extra)
        return bgtest.Proxy(self, cfg), cfg["access_log"]["path"]

    def test_every_request_once_and_no_personal_information(self):
        up = test_bypass.Recorder(self)
        px, path = self.start(up)
        corpus = test_bypass.load_corpus()
        self.assertGreater(len(corpus), 300, "the bypass corpus is missing")
        answered = []  # (entry, status, id)
        for e in corpus:
            st, rid = exchange(px.port, test_bypass.request_bytes(e["request"]),
                               half_close=e["request"].get("half_close", False))
            answered.append((e, st, rid))
        # A few every operator sees: forwarded, unknown destination, CONNECT.
        plain = b"GET /v1/ping HTTP/1.1\r\nHost: %s\r\n\r\n" % test_bypass.HOST.encode()
        st_ok, id_ok = exchange(px.port, plain)
        st_421, id_421 = exchange(px.port, b"GET /x?phone=13812345678 HTTP/1.1\r\nHost: nowhere.example\r\n\r\n")
        st_405, id_405 = exchange(px.port, b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
        self.assertEqual((st_ok, st_421, st_405), (200, 421, 405))
        self.assertEqual(px.stop(), 0, px.log())  # the writer flushes on exit

        data, lines = read_lines(path)
        ids = [ln["id"] for ln in lines]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        self.assertEqual(dup, [], "request ids logged more than once")
        logged = set(ids)
        want = [rid for _, _, rid in answered if rid] + [id_ok, id_421, id_405]
        missing = [rid for rid in want if rid not in logged]
        self.assertEqual(missing, [], "answered requests missing from the access log")
        self.assertGreaterEqual(len(want), len(corpus) * 9 // 10, "most requests got an answer")
        by_id = {ln["id"]: ln for ln in lines}
        # Each line says what the client was answered.
        for e, st, rid in answered:
            if rid:
                self.assertEqual(by_id[rid]["status"], st, e["id"])
        ok = by_id[id_ok]
        self.assertEqual((ok["route"], ok["method"], ok["path"], ok["outcome"], ok["result"], ok["bytes_out"]),
                         ("abroad", "GET", "/v1/ping", "allow", "ok", 11))
        self.assertIsNotNone(ok["upstream_ms"])
        self.assertGreaterEqual(ok["total_ms"], ok["upstream_ms"])
        self.assertEqual(ok["client"], "127.0.0.1")
        r421 = by_id[id_421]
        self.assertEqual((r421["route"], r421["outcome"], r421["result"], r421["path"], r421["upstream_ms"]),
                         (None, "refused", "refused", "/x?phone=", None))
        blocked = [ln for ln in lines if ln["status"] == 451]
        self.assertTrue(blocked and all((ln["outcome"], ln["result"]) == ("block", "blocked") for ln in blocked))
        self.assertEqual(by_id[id_405]["status"], 405)
        statuses = {ln["status"] for ln in lines}
        for s in (200, 400, 421, 451):
            self.assertIn(s, statuses, "the corpus exercises %d" % s)
        # The PI sweep: no secret of any entry, in any recoverable form.
        secrets = sorted({s for e in corpus for s in e["secrets"]} | {"13812345678"})
        self.assertEqual(leakscan.scan(data, secrets), {}, "personal information in the access log")
        # The audit records name the same method, host and path
        # (inspect/redact.h); every other member is swept by the test below.
        audit = audit_text(self.tmpdir)
        self.assertIn(id_421.encode(), audit)
        leaks = leakscan.scan(audit, secrets)
        self.assertEqual(leaks, {},
                         "personal information in the audit log")

    def test_audit_log_holds_no_personal_information(self):
        # The whole bypass corpus: no value in any audit record (a multipart
        # part named after a mobile number is recorded "multipart.<cn_mobile>").
        up = test_bypass.Recorder(self)
        px, _ = self.start(up)
        corpus = test_bypass.load_corpus()
        for e in corpus:
            exchange(px.port, test_bypass.request_bytes(e["request"]), half_close=e["request"].get("half_close", False))
        self.assertEqual(px.stop(), 0, px.log())
        secrets = sorted({s for e in corpus for s in e["secrets"]})
        self.assertEqual(leakscan.scan(audit_text(self.tmpdir), secrets), {})

    def test_lines_say_how_each_exchange_ended(self):
        up = test_bypass.Recorder(self)
        hold = threading.Event()

        def silent(conn, n):  # reads the request, never answers
            conn.read_request()
            hold.wait(t(10))
        slow = bgtest.ScriptedUpstream(self, silent)
        self.addCleanup(hold.set)
        dead = "http://127.0.0.1:%d" % bgtest.free_port()
        cfg = test_bypass.policy_config(up)
        cfg["routes"] += [route("dead", dead, host="dead.example"), route("slow", slow.origin, host="slow.example")]
        cfg["geo"]["overrides"]["cidrs"]["127.0.0.1/32"] = "CN"
        cfg["access_log"] = {"path": os.path.join(self.tmpdir, "access.log")}
        px = bgtest.Proxy(self, cfg)
        st, id_dead = exchange(px.port, b"POST /v1/x HTTP/1.1\r\nHost: dead.example\r\nContent-Length: 2\r\n\r\n{}")
        self.assertEqual(st, 502)
        c = bgtest.Raw(px.port)
        c.send(b"GET /v1/wait HTTP/1.1\r\nHost: slow.example\r\n\r\n")
        bgtest.wait_for(lambda: slow.heads, t(5), "the request at the slow upstream")
        c.close()  # the client leaves before any answer
        bgtest.wait_for(lambda: px.stats()["client_aborts"] >= 1, t(5), "the abort to be seen")
        self.assertEqual(px.stop(), 0, px.log())
        _, lines = read_lines(cfg["access_log"]["path"])
        by_id = {ln["id"]: ln for ln in lines}
        d = by_id[id_dead]
        self.assertEqual((d["route"], d["status"], d["outcome"], d["result"], d["bytes_in"]),
                         ("dead", 502, "allow", "refused", 2))
        aborted = [ln for ln in lines if ln["route"] == "slow"]
        self.assertEqual(len(aborted), 1, lines)
        self.assertEqual((aborted[0]["status"], aborted[0]["result"], aborted[0]["bytes_out"]),
                         (0, "client_aborted", 0))
        self.assertIsNotNone(aborted[0]["upstream_ms"])

    def test_two_workers_and_concurrent_clients_lose_no_line(self):
        import requests
        up = test_bypass.Recorder(self)
        px, path = self.start(up, workers=2)
        got, lock = [], threading.Lock()

        def client(k):
            s = requests.Session()
            mine = []
            for i in range(150):
                r = s.get(px.url("/v1/c/%d/%d" % (k, i)), headers={"Host": test_bypass.HOST}, timeout=t(20))
                mine.append((r.status_code, r.headers["X-Bordergate-Id"]))
            s.close()
            with lock:
                got.extend(mine)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(px.stop(), 0, px.log())
        _, lines = read_lines(path)
        self.assertEqual(len(got), 600)
        self.assertEqual(sorted(ln["id"] for ln in lines), sorted(rid for _, rid in got))
        self.assertEqual({ln["status"] for ln in lines}, {200})

    def test_the_sweep_sees_a_value_it_should(self):
        # Control for the sweep above: leakscan finds a raw mobile in a line.
        line = b'{"path":"/x?phone=13812345678"}\n'
        self.assertNotEqual(leakscan.scan(line, ["13812345678"]), {})

    def test_reopened_on_sigusr1(self):
        up = test_bypass.Recorder(self)
        px, path = self.start(up)
        req = b"GET /v1/a HTTP/1.1\r\nHost: %s\r\n\r\n" % test_bypass.HOST.encode()
        _, first = exchange(px.port, req)
        bgtest.wait_for(lambda: os.path.exists(path) and first.encode() in read(path),
                        t(5), "the first line to be written")
        os.rename(path, path + ".1")  # what logrotate does
        px.proc.signal(signal.SIGUSR1)
        bgtest.wait_for(lambda: os.path.exists(path), t(5), "the access log to be reopened")
        _, second = exchange(px.port, req)
        bgtest.wait_for(lambda: second.encode() in read(path), t(5),
                        "the second line in the new file")
        old = read(path + ".1")
        self.assertIn(first.encode(), old)
        self.assertNotIn(second.encode(), old)
        self.assertIn("access log reopened", px.log())

    def test_unwritable_path_fails_at_start(self):
        up = test_bypass.Recorder(self)
        cfg = test_bypass.policy_config(up)
        cfg["access_log"] = {"path": os.path.join(self.tmpdir, "no", "such", "dir", "access.log")}
        p = os.path.join(self.tmpdir, "bad.json")
        with open(p, "w") as f:
            json.dump(dict(cfg, listen="127.0.0.1:%d" % bgtest.free_port()), f)
        out = subprocess.run([bgtest.BIN, "run", "--config", p], capture_output=True, text=True,
                             timeout=t(20))
        self.assertEqual(out.returncode, 1)
        self.assertIn("access log", out.stderr)


if __name__ == "__main__":
    unittest.main()
