"""Operating bordergate: readiness, liveness and the operational log.

  * /readyz is 200 only while the policy is loaded, the country database
    file is there and the audit log is writable; otherwise 503 with a JSON
    body naming what is not ready (and bordergate_ready 0 in /metrics);
    /healthz stays 200 (alive) meanwhile;
  * the operational log is JSON lines (time, level, component, msg) or text,
    to a file that SIGUSR1 reopens after a rotation; it never carries the PI
    values that went through the proxy.

The cross-border sink is on 127.0.0.2, pinned to the US by a CIDR override.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading

import bgtest
from bgtest import route, t
from test_audit import AuditTestBase, KEY_ENV, body, phone, resident_id


def admin_get(px, path):
    c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def ready_gauge(px):
    _, _, text = admin_get(px, "/metrics")
    m = re.search(r"^bordergate_ready (\S+)$", text, re.M)
    return float(m.group(1))


class ReadinessTest(AuditTestBase):

    def test_ready_when_everything_is_in_place_and_unknown_paths_list_endpoints(self):
        px = self.start()
        status, doc = px.admin("GET", "/readyz")
        self.assertEqual((status, doc), (200, {"status": "ready", "not_ready": []}))
        self.assertEqual(px.healthz()["_status"], 200)
        self.assertEqual(ready_gauge(px), 1)
        status, doc = px.admin("GET", "/nope")
        self.assertEqual(status, 404)
        for ep in ("/healthz", "/readyz", "/metrics", "/stats", "/reload", "/consents"):
            self.assertIn(ep, doc["error"])

    def test_each_admin_endpoint_answers_its_own_methods_only(self):
        # A reload is a POST only (a crawler's or a probe's GET must not
        # reload); the read-only endpoints take GET or HEAD, the query
        # string left out of the match.
        px = self.start()
        status, doc = px.admin("GET", "/reload")
        self.assertEqual(status, 404)
        self.assertIn("POST /reload", doc["error"])
        status, doc = px.admin("POST", "/healthz")
        self.assertEqual(status, 404)
        status, doc = px.admin("GET", "/healthz?probe=1")
        self.assertEqual((status, doc["status"]), (200, "ok"))
        self.assertEqual((doc["reloads_ok"], doc["reloads_failed"]), (0, 0))
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        try:
            c.request("HEAD", "/readyz")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        finally:
            c.close()
        status, doc = px.admin("GET", "/stats?x=1")
        self.assertEqual(status, 200)
        self.assertIn("requests", doc)

    def test_not_ready_while_the_country_database_file_is_missing(self):
        spec = os.path.join(self.tmpdir, "spec.txt")
        db = os.path.join(self.tmpdir, "fixture.mmdb")
        with open(spec, "w") as f:
            f.write("@type Test-Country\n127.0.0.0/29 US\n")
        subprocess.run([os.path.join(bgtest.SOURCE_DIR, "geo", "make-test-mmdb"), "--out", db, spec],
                       check=True)
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        cfg = self.config(self.up, self.audit_dir)
        cfg["geo"]["database"] = db
        px = self.proxy(cfg, env=KEY_ENV)
        self.assertEqual(px.admin("GET", "/readyz")[0], 200)

        os.rename(db, db + ".moved")
        status, doc = px.admin("GET", "/readyz")
        self.assertEqual(status, 503)
        self.assertEqual(doc["status"], "not ready")
        self.assertEqual(len(doc["not_ready"]), 1, doc)
        self.assertRegex(doc["not_ready"][0], r"^geo: .*country database")
        self.assertEqual(ready_gauge(px), 0)
        self.assertEqual(px.healthz()["_status"], 200, "liveness must not follow readiness")

        os.rename(db + ".moved", db)
        self.assertEqual(px.admin("GET", "/readyz")[0], 200)
        self.assertEqual(ready_gauge(px), 1)

    def test_not_ready_while_the_audit_log_cannot_be_written(self):
        mnt = self.small_tmpfs()
        px = self.start(audit_dir=os.path.join(mnt, "audit"))
        self.assertEqual(self.send(px, "/ok", body("u-r-0", phone(100))).status_code, 200)
        self.assertEqual(px.admin("GET", "/readyz")[0], 200)

        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        for i in range(1, 40):
            if self.send(px, "/full/%d" % i, body("u-r-%d" % i, phone(100 + i))).status_code == 503:
                break
        else:
            self.fail("no 503 while the audit file system was full")
        status, doc = px.admin("GET", "/readyz")
        self.assertEqual(status, 503)
        self.assertEqual(len(doc["not_ready"]), 1, doc)
        self.assertRegex(doc["not_ready"][0], r"^audit: the log is not writable \(.*No space left")
        self.assertEqual(ready_gauge(px), 0)
        _, _, text = admin_get(px, "/metrics")
        self.assertRegex(text, r"(?m)^bordergate_audit_healthy 0$")
        self.assertRegex(text, r"(?m)^bordergate_audit_refused_total [1-9]")
        self.assertRegex(text, r"(?m)^bordergate_refusals_total\{status=\"503\"\} [1-9]")
        self.assertEqual(px.healthz()["_status"], 200)

        # Space returns and no request comes: the control loop's probe
        # sees it, and /readyz recovers within a second by itself.
        os.unlink(filler)
        bgtest.wait_for(lambda: px.admin("GET", "/readyz")[0] == 200, t(1),
                        "/readyz to recover without traffic", interval=0.05)
        self.assertEqual(self.send(px, "/again", body("u-r-again", phone(199))).status_code, 200)
        self.assertEqual(px.admin("GET", "/readyz")[0], 200)


class DrainTest(bgtest.TestCase):

    def test_not_ready_and_not_alive_while_draining(self):
        """SIGTERM with a request in flight: both probes answer 503 (the
        load balancer stops sending, the orchestrator waits), the request
        still completes, then the process exits 0."""
        release = threading.Event()

        def handler(conn, n):
            conn.read_request()
            release.wait(t(20))
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        up = bgtest.ScriptedUpstream(self, handler)
        px = self.proxy(routes=[route("slow", up.origin, host="slow.example")])
        result = {}

        def call():
            c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=t(30))
            c.request("GET", "/slow", headers={"Host": "slow.example"})
            r = c.getresponse()
            result["status"], result["body"] = r.status, r.read()
            c.close()

        th = threading.Thread(target=call)
        th.start()
        bgtest.wait_for(lambda: up.heads, t(10), "the request to reach the upstream")
        px.proc.signal(signal.SIGTERM)
        doc = bgtest.wait_for(lambda: (lambda sd: sd if sd[0] == 503 else None)(px.admin("GET", "/readyz")),
                              t(10), "/readyz to turn 503")[1]
        self.assertEqual(doc["not_ready"], ["stopping: draining connections"])
        self.assertEqual(px.healthz()["_status"], 503)
        release.set()
        th.join(t(20))
        self.assertEqual((result.get("status"), result.get("body")), (200, b"ok"))
        self.assertEqual(px.wait(), 0)


class LogTest(AuditTestBase):

    def traffic(self, px, n=6):
        sent = []
        for i in range(n):
            tel, idn, mail = phone(5550000 + i), resident_id(600 + i), "log.case%d@example.cn" % i
            sent += [tel, idn, mail, "u-log-%d" % i]
            self.send(px, "/l/%d" % i, body("u-log-%d" % i, tel, id_no=idn, email=mail))
            self.send(px, "/b/%d" % i, body("u-log-%d" % i, tel), host="blocked.example")
        return sent

    def test_json_lines_with_levels_no_pi_and_reopen_on_sigusr1(self):
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        logf = os.path.join(self.tmpdir, "ops.log")
        cfg = self.config(self.up, self.audit_dir)
        cfg["log"] = {"level": "debug", "file": logf, "format": "json"}
        px = self.proxy(cfg, env=KEY_ENV)
        sent = self.traffic(px)
        self.get(px, "/nowhere", host="unrouted.example")

        with open(logf, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertGreater(len(lines), 5)
        levels = set()
        for line in lines:
            rec = json.loads(line)
            self.assertEqual(set(rec), {"time", "level", "component", "msg"}, line)
            self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(rec["level"], ("debug", "info", "warn", "error"))
            levels.add(rec["level"])
        self.assertIn("debug", levels)
        self.assertIn("info", levels)
        text = "\n".join(lines)
        for v in sent:
            self.assertNotIn(v, text, "a PI value or subject id reached the operational log")

        # logrotate's "create" mode: move the file, then SIGUSR1.
        os.rename(logf, logf + ".1")
        px.proc.signal(signal.SIGUSR1)
        bgtest.wait_for(lambda: os.path.exists(logf), t(10), "the log file to be reopened")
        self.get(px, "/after-rotation", host="unrouted.example")
        bgtest.wait_for(lambda: "refused: 421" in read(logf), t(10), "a line in the new file")
        with open(logf, encoding="utf-8") as f:
            new = [json.loads(x) for x in f.read().splitlines()]
        self.assertTrue(any(r["msg"] == "log file reopened" for r in new))
        with open(logf + ".1", encoding="utf-8") as f:
            self.assertNotIn("log file reopened", f.read())

    def test_text_format_and_level_filter(self):
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        logf = os.path.join(self.tmpdir, "ops.log")
        cfg = self.config(self.up, self.audit_dir)
        cfg["log"] = {"level": "info", "file": logf, "format": "text"}
        px = self.proxy(cfg, env=KEY_ENV)
        sent = self.traffic(px, n=3)
        self.assertEqual(px.stop(), 0)
        with open(logf, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertGreater(len(lines), 2)
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|error) proxy: \S")
        self.assertTrue(any(" info proxy: stopped" in x for x in lines))
        text = "\n".join(lines)
        for v in sent:
            self.assertNotIn(v, text)

    def test_bad_log_format_is_a_config_error(self):
        self.up = self.sink("us", host="127.0.0.2")
        cfg = self.config(self.up, os.path.join(self.tmpdir, "audit"))
        cfg["log"] = {"format": "xml"}
        path = os.path.join(self.tmpdir, "bad.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.run([bgtest.BIN, "check", "--config", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=dict(os.environ, **KEY_ENV))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("$.log.format", p.stdout)
        self.assertIn("must be json or text", p.stdout)


if __name__ == "__main__":
    bgtest.main()
