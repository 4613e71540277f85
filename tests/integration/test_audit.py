"""Audit trail, end to end: the real daemon, a real cross-border sink, real files.

  * the decision record is durable BEFORE the upstream sees the request, with
    the documented fields and no PI value anywhere in the audit directory;
  * kill -9 under load: after a restart `audit verify` passes and every
    request that reached the upstream has its decision record;
  * a full disk (a 2 MiB tmpfs): PI going abroad is refused with 503 and
    nothing is forwarded; service resumes by itself when space is back;
  * `audit report`, `audit subject` and `audit volumes` on the produced log;
  * the yearly counters: distinct people once per year, sensitive separately,
    persisted across a restart.

The sink is on 127.0.0.2, pinned to the US by a CIDR override; the subject,
pseudonym and audit keys come from the environment as hex. Assertion
messages never quote PI values (they are fictitious, but the habit matters).
"""
import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
import unittest

import requests

import bgtest
from bgtest import route, t

SUBJECT_KEY = "6b" * 32
PSEUDONYM_KEY = "5a" * 32
AUDIT_KEY = "7c" * 32
KEY_ENV = {"BG_SUBJECT_KEY": SUBJECT_KEY, "BG_PSEUDONYM_KEY": PSEUDONYM_KEY, "BG_AUDIT_KEY": AUDIT_KEY}
LEGAL_REF = "Test Regulation Art. 7"


def pseudonym(raw):
    """The subject pseudonym bordergate records (HMAC-SHA-256 under the subject key)."""
    return hmac.new(bytes.fromhex(SUBJECT_KEY), raw.encode(), hashlib.sha256).hexdigest()


def resident_id(n):
    """A valid GB 11643 resident id number (Beijing, born 1985-03-12), distinct per N."""
    body = "110105" + "19850312" + "%03d" % (n % 1000)
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * w for c, w in zip(body, weights)) % 11
    return body + "10X98765432"[s]


def phone(n):
    return "139%08d" % (n % 100000000)


def body(uid, tel=None, id_no=None, email=None, note=None):
    user = {"id": uid}
    if tel is not None:
        user["phone"] = tel
    if id_no is not None:
        user["id_no"] = id_no
    if email is not None:
        user["email"] = email
    doc = {"user": user}
    if note is not None:
        doc["note"] = note
    return json.dumps(doc)


def audit_records(directory):
    """Every complete record of the log in DIRECTORY, in file-index order."""
    names = sorted((n for n in os.listdir(directory) if n.startswith("audit-") and n.endswith(".jsonl")),
                   key=lambda n: int(n[:-6].rsplit("-", 1)[1]))
    out = []
    for n in names:
        with open(os.path.join(directory, n), "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    out.append(json.loads(line))
    return out


def decisions(directory):
    return [r for r in audit_records(directory) if r.get("type") == "decision"]


def completions_of(records):
    """The completion of every exchange that has one yet, as a completion
    record: the records of type "completion", and the completions that ride
    inside the decision record of a request nothing waited for (docs/audit.md,
    "completion" member), with that record's seq and "inside": True."""
    out = []
    for r in records:
        if r.get("type") == "completion":
            out.append(r)
        elif r.get("type") == "decision" and "completion" in r:
            c = dict(r["completion"])
            c.update({"type": "completion", "decision_id": r["decision_id"], "seq": r["seq"], "inside": True})
            out.append(c)
    return out


def completions(directory):
    return completions_of(audit_records(directory))


class AuditTestBase(bgtest.TestCase):

    def config(self, sink, audit_dir, workers=1, **audit):
        a = {"directory": audit_dir}
        a.update(audit)
        routes = [
            route("us", sink.origin, host="us.example", recipient="partner-us", purpose="support",
                  subjects={"id": "$.user.id"},
                  bases={"legal_obligation": {"reference": LEGAL_REF}}),
            route("blocked", sink.origin, host="blocked.example", recipient="partner-blocked",
                  purpose="support", subjects={"id": "$.user.id"}),
        ]
        cfg = bgtest.make_config(
            routes, workers=workers,
            geo={"overrides": {"cidrs": {"%s/32" % sink.host: "US"}}},
            keys={"pseudonym": {"env": "BG_PSEUDONYM_KEY"}, "subject": {"env": "BG_SUBJECT_KEY"},
                  "audit": {"env": "BG_AUDIT_KEY"}},
            policy={"version": "audit-test-1", "mode": "enforce", "default_fallback": "block",
                    "default_operator": "redact"},
            recipients={
                "partner-us": {"legal_entity": "Partner US Inc.", "relationship": "third_party",
                               "country": "US", "purposes": ["support"],
                               "mechanism": {"type": "standard_contract", "reference": "SC-TEST-0001",
                                             "expires": "2030-12-31"}},
                "partner-blocked": {"legal_entity": "Blocked Partner Ltd.", "relationship": "third_party",
                                    "country": "US", "purposes": ["support"],
                                    "mechanism": {"type": "standard_contract", "reference": "SC-TEST-0002",
                                                  "expires": "2030-12-31"}}},
            rules=[
                {"id": "phone-legal", "categories": ["cn_mobile"], "recipients": ["partner-us"],
                 "bases": ["legal_obligation"], "fallback": "block"},
                # The hashed ID number leaves without a basis only because the
                # rule accepts pseudonymized transfers explicitly (PIPL Art. 73).
                {"id": "id-hashed", "categories": ["cn_resident_id"], "recipients": ["partner-us"],
                 "bases": ["consent"], "fallback": {"action": "deidentify", "operator": {"op": "hash"}},
                 "accept_pseudonymized": True},
                {"id": "email-redacted", "categories": ["email"], "recipients": ["partner-us"],
                 "bases": ["consent"], "fallback": "deidentify"},
            ],
            audit=a)
        return cfg

    def start(self, audit_dir=None, workers=1, name="proxy", sink=None, **audit):
        self.up = sink or getattr(self, "up", None) or self.sink("us", host="127.0.0.2")
        self.audit_dir = audit_dir or getattr(self, "audit_dir", None) or os.path.join(self.tmpdir, "audit")
        return self.proxy(self.config(self.up, self.audit_dir, workers=workers, **audit), env=KEY_ENV,
                          name=name)

    def send(self, px, path, data, host="us.example", session=None):
        return self.post(px, path, data, host=host, session=session,
                         headers={"Content-Type": "application/json"})

    def cli(self, *args, stdin=None, check=True):
        env = dict(os.environ)
        env.update(KEY_ENV)
        p = subprocess.run([bgtest.BIN, "audit"] + list(args), input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=t(60))
        if check and p.returncode != 0:
            self.fail("bordergate audit %s exited %d: %s%s" % (args[0], p.returncode, p.stdout[-2000:],
                                                              p.stderr[-2000:]))
        return p

    def verify(self, directory):
        return self.cli("verify", "--key-env", "BG_AUDIT_KEY", directory, check=False)

    def assertNoValues(self, directory, values, extra_files=()):
        """None of VALUES appears in any file of DIRECTORY (nor in EXTRA_FILES)."""
        files = [os.path.join(directory, n) for n in os.listdir(directory)] + list(extra_files)
        for path in files:
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            for i, v in enumerate(values):
                self.assertNotIn(v.encode(), data, "PI value #%d found in %s" % (i, os.path.basename(path)))


class RecordTest(AuditTestBase):

    def test_a_request_nothing_waits_for_is_one_record_with_its_completion(self):
        """No PI abroad: the decision record is kept until the exchange ends
        and carries its completion; one that outlasts 100 ms is written
        alone first, and its completion follows as a record of its own."""
        px = self.start()
        r = self.send(px, "/quick", body("u-q1", note="nothing personal here"))
        self.assertEqual(r.status_code, 200, r.text)
        rid = self.assertRequestId(r)
        mine = bgtest.wait_for(lambda: [x for x in audit_records(self.audit_dir) if x.get("decision_id") == rid],
                               t(10), "the record of the quick request")
        self.assertEqual([x["type"] for x in mine], ["decision"], "one record for the whole exchange")
        c = mine[0]["completion"]
        self.assertEqual((c["result"], c["upstream_status"], c["response_bytes"] > 0), ("ok", 200, True))
        self.assertGreaterEqual(c["total_ms"], c["upstream_ms"])

        delay_ms = int(t(1.5) * 1000)
        result = {}
        th = threading.Thread(target=lambda: result.update(
            r=self.send(px, "/__sink/delay/%d" % delay_ms, body("u-q2", note="nothing personal here"))))
        th.start()
        self.up.wait_records(2)
        # The upstream holds its answer: the decision is in the log alone by now.
        alone = bgtest.wait_for(
            lambda: [x for x in audit_records(self.audit_dir)
                     if x.get("type") == "decision" and x.get("decision_id") != rid], t(5),
            "the slow request's decision record, before its answer")
        self.assertNotIn("completion", alone[0])
        th.join(t(30))
        self.assertEqual(result["r"].status_code, 200)
        slow = alone[0]["decision_id"]
        comp = bgtest.wait_for(lambda: [x for x in audit_records(self.audit_dir)
                                        if x.get("type") == "completion" and x.get("decision_id") == slow],
                               t(10), "the slow request's completion record")
        self.assertEqual(len(comp), 1)
        self.assertGreater(comp[0]["seq"], alone[0]["seq"])
        self.assertGreaterEqual(comp[0]["upstream_ms"], delay_ms * 0.9)
        self.assertEqual(self.verify(self.audit_dir).returncode, 0)

    def test_decision_record_is_durable_before_the_sink_sees_the_request(self):
        px = self.start()
        uid, tel, id_no, email = "u-a-1001", phone(1001), resident_id(1), "alice.a1001@example.cn"
        path = "/__sink/delay/%d" % int(t(1.5) * 1000)
        result = {}

        def client():
            result["r"] = self.send(px, path + "?lang=zh-CN&page=7731", body(uid, tel, id_no, email))

        th = threading.Thread(target=client)
        th.start()
        seen = self.up.wait_records(1)
        # The sink has the request and is still holding its answer: the
        # decision record must already be in the log, the completion not yet.
        recs = audit_records(self.audit_dir)
        th.join(t(30))
        self.assertFalse(th.is_alive())
        r = result["r"]
        self.assertEqual(r.status_code, 200, r.text)
        rid = self.assertRequestId(r)
        self.assertEqual(r.headers["X-Bordergate-Decision"], "deidentify")
        mine = [x for x in recs if x.get("decision_id") == rid]
        self.assertEqual([x["type"] for x in mine], ["decision"],
                         "when the sink saw the request the log must hold its decision record "
                         "and not yet its completion")
        d = mine[0]
        self.assertLessEqual(d["time"], seen[0].raw["ts"], "decision recorded after the sink received it")

        # The documented fields (docs/audit.md, "Decision record").
        for k in ("seq", "prev", "hash", "time", "type", "decision_id", "caller", "route", "recipient",
                  "purpose", "method", "host", "path", "destination", "geo_db", "mode", "inspected", "body",
                  "outcome", "would", "findings", "subjects", "mechanism", "reasons", "policy", "bytes"):
            self.assertIn(k, d)
        self.assertEqual(list(d)[:2], ["seq", "prev"])
        self.assertEqual(list(d)[-1], "hash")
        self.assertEqual(d["caller"], {"address": "127.0.0.1"})
        self.assertEqual(d["route"], "us")
        self.assertEqual(d["recipient"], {"id": "partner-us", "legal_entity": "Partner US Inc.",
                                          "relationship": "third_party"})
        self.assertEqual((d["purpose"], d["method"]), ("support", "POST"))
        self.assertEqual(d["path"], path + "?lang=&page=")  # query names only, never values
        dst = d["destination"]
        self.assertEqual((dst["address"], dst["port"], dst["country"], dst["region"]),
                         ("127.0.0.2", self.up.port, "US", "cross-border"))
        self.assertEqual(dst["geo_source"], "override:cidr:127.0.0.2/32")
        self.assertRegex(d["geo_db"], r"^\d{4}-\d{2}-\d{2}$")
        self.assertEqual((d["mode"], d["inspected"], d["body"]), ("enforce", True, "json"))
        self.assertEqual((d["outcome"], d["would"]), ("deidentify", "deidentify"))
        self.assertEqual(d["mechanism"], "standard_contract:SC-TEST-0001")
        self.assertEqual(d["reasons"], [])
        with open(px.config_path, "rb") as f:
            self.assertEqual(d["policy"], {"version": "audit-test-1",
                                           "sha256": hashlib.sha256(f.read()).hexdigest()})
        self.assertEqual(d["bytes"]["request"], len(body(uid, tel, id_no, email)))
        self.assertEqual(d["bytes"]["forwarded"], seen[0].body_bytes)
        p = pseudonym(uid)
        self.assertEqual(d["subjects"], [{"pseudonym": p}])
        by_cat = {f["category"]: f for f in d["findings"]}
        self.assertEqual(set(by_cat), {"cn_mobile", "cn_resident_id", "email"})
        for f in d["findings"]:
            for k in ("path", "category", "sensitive", "source", "confidence", "rule", "basis", "action"):
                self.assertIn(k, f)
            self.assertEqual(f["subject"], p)
        m = by_cat["cn_mobile"]
        self.assertEqual((m["path"], m["sensitive"], m["rule"], m["basis"], m["evidence"], m["action"]),
                         ("$.user.phone", False, "phone-legal", "legal_obligation", LEGAL_REF, "allow"))
        i = by_cat["cn_resident_id"]
        self.assertEqual((i["sensitive"], i["rule"], i["basis"], i["action"], i["operator"], i["anonymized"]),
                         (True, "id-hashed", "none", "deidentify", "hash", False))
        self.assertIn("why", i)
        e = by_cat["email"]
        self.assertEqual((e["action"], e["operator"], e["anonymized"]), ("remove", "redact", True))

        # The completion, linked by decision id, once the exchange ended.
        comp = bgtest.wait_for(lambda: [x for x in audit_records(self.audit_dir)
                                        if x.get("type") == "completion" and x.get("decision_id") == rid],
                               t(10), "the completion record")[0]
        self.assertEqual((comp["result"], comp["upstream_status"]), ("ok", 200))
        self.assertGreaterEqual(comp["upstream_ms"], t(1.5) * 1000 * 0.9)
        self.assertGreater(comp["seq"], d["seq"])

        # A blocked transfer is recorded too, and nothing reaches the sink.
        r2 = self.send(px, "/v1/blocked", body("u-a-2002", phone(2002)), host="blocked.example")
        self.assertEqual(r2.status_code, 451)
        d2 = [x for x in decisions(self.audit_dir) if x["decision_id"] == r2.headers["X-Bordergate-Id"]][0]
        self.assertEqual(d2["outcome"], "block")
        self.assertEqual(d2["reasons"][0]["code"], "no_basis")
        self.assertEqual(len(self.up.records()), 1)
        # The record says what left: nothing.
        self.assertEqual(d2["bytes"]["request"], len(body("u-a-2002", phone(2002))))
        self.assertEqual(d2["bytes"]["forwarded"], 0)

        # No PI value anywhere: not in the log, not in the counters, not in the proxy's own log.
        self.assertNoValues(self.audit_dir, [uid, tel, id_no, email, "u-a-2002", phone(2002)],
                            extra_files=[px.log_path])
        v = self.verify(self.audit_dir)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("OK:", v.stdout)


class CrashTest(AuditTestBase):

    def test_kill_9_under_load_loses_no_record_of_a_forwarded_request(self):
        px = self.start(workers=2)
        nthreads, per_thread = 20, 30
        ok = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(k):
            s = requests.Session()
            s.trust_env = False
            for j in range(per_thread):
                if stop.is_set():
                    return
                n = k * per_thread + j
                try:
                    r = s.post(px.url("/k/%d" % n), data=body("u-k-%d" % n, phone(500000 + n)),
                               headers={"Host": "us.example", "Content-Type": "application/json"},
                               timeout=t(20))
                except requests.RequestException:
                    s.close()
                    s = requests.Session()
                    s.trust_env = False
                    continue
                if r.status_code == 200:
                    with lock:
                        ok.append("/k/%d" % n)
            s.close()

        ths = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
        for th in ths:
            th.start()
        bgtest.wait_for(lambda: len(self.up.records()) >= 150, t(60), "150 requests at the sink")
        os.kill(px.pid, signal.SIGKILL)
        px.proc.kill()
        px.exit_checked = True
        stop.set()
        for th in ths:
            th.join(t(60))
        self.assertFalse(any(th.is_alive() for th in ths))
        at_sink = {r.target for r in self.up.records()}
        self.assertGreaterEqual(len(at_sink), 150)
        self.assertLess(len(at_sink), nthreads * per_thread, "the kill came after all the load")

        # Restart on the same directory: the writer repairs what the kill left.
        px2 = self.start(workers=2, name="proxy2")
        recs = audit_records(self.audit_dir)
        starts = [r for r in recs if r["type"] == "writer_start"]
        self.assertEqual([s["previous_shutdown"] for s in starts], ["none", "unclean"])
        for rep in (r for r in recs if r["type"] == "repair"):
            self.assertGreater(rep["cut_bytes"], 0)
            self.assertIn(rep["cut_reason"], ("torn last line", "unparsable tail"))
            self.assertLess(rep["after_seq"], rep["seq"])
        v = self.verify(self.audit_dir)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

        recorded = {}
        for d in (r for r in recs if r["type"] == "decision"):
            recorded[d["path"]] = recorded.get(d["path"], 0) + 1
        missing = sorted(at_sink - set(recorded))
        self.assertEqual(missing, [], "requests that reached the upstream without a decision record")
        self.assertTrue(set(ok) <= at_sink)
        self.assertTrue(all(n == 1 for n in recorded.values()), "a request recorded twice")
        self.assertGreaterEqual(len(recorded), len(at_sink))

        # The restarted daemon works and its counters file survived the kill.
        r = self.send(px2, "/after", body("u-k-after", phone(999)))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertGreater(px2.stats()["yearly_subjects"]["non_sensitive"], 0)


class DiskFullTest(AuditTestBase):

    def test_full_disk_refuses_pi_abroad_and_resumes_by_itself(self):
        mnt = self.small_tmpfs()
        px = self.start(audit_dir=os.path.join(mnt, "audit"))
        r = self.send(px, "/ok/0", body("u-f-0", phone(7000)))
        self.assertEqual(r.status_code, 200, r.text)

        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        # tmpfs allocates whole pages: the log's last page may still take a
        # record or two before a write needs a new page.
        refused = []
        for i in range(1, 40):
            r = self.send(px, "/full/%d" % i, body("u-f-%d" % i, phone(7000 + i)))
            if r.status_code == 503:
                refused.append((i, r))
                if len(refused) == 3:
                    break
            else:
                self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(len(refused), 3, "no 503 while the audit file system was full")
        for i, r in refused:
            self.assertRefusal(r, 503, r"audit log")
        targets = {rec.target for rec in self.up.records()}
        for i, _ in refused:
            self.assertNotIn("/full/%d" % i, targets, "a refused transfer reached the upstream")
        st = px.stats()
        self.assertGreaterEqual(st["audit_refused"], 3)
        self.assertFalse(st["audit"]["healthy"])
        self.assertIn("No space left on device", st["audit"]["last_error"])
        self.assertIn("audit log not writable", px.log())

        os.unlink(filler)
        r = self.send(px, "/again", body("u-f-again", phone(7999)))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("/again", {rec.target for rec in self.up.records()})
        # "healthy" has hysteresis: it returns 500 ms after the last failed
        # write at the earliest (no flapping on a nearly full disk).
        bgtest.wait_for(lambda: px.stats()["audit"]["healthy"], t(1), "the audit log to be healthy")
        self.assertEqual(px.stop(), 0)
        v = self.verify(os.path.join(mnt, "audit"))
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        paths = {d["path"] for d in decisions(os.path.join(mnt, "audit"))}
        for i, _ in refused:
            self.assertNotIn("/full/%d" % i, paths, "a refused transfer has a record")
        self.assertIn("/again", paths)


    def test_monitor_mode_still_needs_a_durable_record_for_pi_abroad(self):
        """Monitor mode forwards the payload unchanged, so an e-mail whose
        enforced fate would be redaction still leaves as PI: with the audit
        disk full it must be refused like any other transfer of PI abroad."""
        mnt = self.small_tmpfs()
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(mnt, "audit")
        cfg = self.config(self.up, self.audit_dir)
        cfg["policy"]["mode"] = "monitor"
        px = self.proxy(cfg, env=KEY_ENV)
        email = "monitor.case@example.cn"
        r = self.send(px, "/m/0", json.dumps({"user": {"id": "u-m-0"}, "email": email}))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("monitor", r.headers["X-Bordergate-Decision"])
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        refused = None
        for i in range(1, 40):
            r = self.send(px, "/m/%d" % i, json.dumps({"user": {"id": "u-m-%d" % i}, "email": email}))
            if r.status_code == 503:
                refused = i
                break
            self.assertEqual(r.status_code, 200, r.text)
        self.assertIsNotNone(refused, "monitor mode forwarded PI abroad without a durable record")
        self.assertNotIn("/m/%d" % refused, {rec.target for rec in self.up.records()})
        os.unlink(filler)


class ReportTest(AuditTestBase):

    def produce(self, px):
        """Known traffic: (uid, route host, body) -> expected outcome."""
        sent = [
            ("u-d1", "us.example", body("u-d1", phone(1), resident_id(11), "d1@example.cn"), 200),
            ("u-d2", "us.example", body("u-d2", phone(2)), 200),
            ("u-d1", "us.example", body("u-d1", phone(1)), 200),
            ("u-d3", "blocked.example", body("u-d3", phone(3)), 451),
            ("u-d4", "us.example", body("u-d4", note="nothing personal here"), 200),
        ]
        for n, (uid, host, data, want) in enumerate(sent):
            r = self.send(px, "/r/%d" % n, data, host=host)
            self.assertEqual(r.status_code, want, "entry %d: %s" % (n, r.text))
        # Completions are written after the answer: wait for the last one.
        bgtest.wait_for(lambda: len(completions(self.audit_dir)) >= 5,
                        t(10), "five completion records")

    def test_report_subject_and_volumes_on_a_real_log(self):
        px = self.start()
        self.produce(px)

        doc = json.loads(self.cli("report", self.audit_dir, "--by", "recipient", "--json").stdout)
        self.assertEqual(doc["format"], "bordergate-audit-report/1")
        tot = doc["totals"]
        self.assertEqual(tot["decisions"], 5)
        self.assertEqual(tot["cross_border"], 5)
        self.assertEqual(tot["outcomes"], {"allow": 3, "deidentify": 1, "block": 1})
        self.assertEqual(tot["findings"], 6)
        self.assertEqual(tot["sensitive_findings"], 1)
        self.assertEqual(tot["findings_by_action"],
                         {"allow": 3, "deidentify": 1, "remove": 1, "remove_record": 0, "block": 1})
        self.assertEqual(tot["findings_left_as_pi"], 4)
        self.assertEqual(tot["subjects"], 4)
        self.assertEqual(tot["subjects_left_as_pi"], 2)
        groups = {g["key"]: g for g in doc["groups"]}
        self.assertEqual(set(groups), {"partner-us", "partner-blocked"})
        self.assertEqual(groups["partner-us"]["decisions"], 4)
        self.assertEqual(groups["partner-us"]["subjects"], 3)
        self.assertEqual(groups["partner-blocked"]["outcomes"]["block"], 1)
        self.assertEqual(groups["partner-blocked"]["subjects_left_as_pi"], 0)

        doc = json.loads(self.cli("report", self.audit_dir, "--by", "category", "--json").stdout)
        cats = {g["key"]: g for g in doc["groups"]}
        self.assertEqual(cats["cn_mobile"]["findings"], 4)
        self.assertEqual(cats["cn_mobile"]["decisions"], 4)
        self.assertEqual(cats["cn_resident_id"]["sensitive_findings"], 1)
        self.assertEqual(cats[None]["decisions"], 1)  # the request without PI

        # The window: everything is today; yesterday holds nothing.
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
        yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600 - 86400))
        doc = json.loads(self.cli("report", self.audit_dir, "--from", today, "--to", today, "--json").stdout)
        self.assertEqual(doc["totals"]["decisions"], 5)
        doc = json.loads(self.cli("report", self.audit_dir, "--from", yesterday, "--to", yesterday,
                                  "--json").stdout)
        self.assertEqual(doc["totals"]["decisions"], 0)

        table = self.cli("report", self.audit_dir, "--by", "outcome").stdout
        self.assertRegex(table, r"(?m)^block\s+1\s")
        self.assertRegex(table, r"(?m)^TOTAL\s+5\s")

        # A data subject's access request, without the log holding the id.
        keyfile = os.path.join(self.tmpdir, "subject.key")
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (SUBJECT_KEY + "\n").encode())
        os.close(fd)
        out = self.cli("subject", "-", "--key", keyfile, self.audit_dir, "--json", stdin="u-d1\n").stdout
        self.assertNotIn("u-d1", out)
        doc = json.loads(out)
        self.assertEqual(doc["subject"]["pseudonym"], pseudonym("u-d1"))
        self.assertEqual(len(doc["decisions"]), 2)
        s = doc["summary"]
        self.assertEqual((s["decisions"], s["transfers"], s["blocked"]), (2, 2, 0))
        self.assertEqual(s["recipients"], ["partner-us"])
        self.assertEqual(s["countries"], ["US"])
        self.assertEqual(s["categories"], ["cn_mobile", "cn_resident_id"])
        self.assertEqual(s["bases"], ["legal_obligation", "none"])
        first = doc["decisions"][0]
        self.assertEqual(first["completion"]["result"], "ok")
        self.assertEqual(first["recipient"]["legal_entity"], "Partner US Inc.")
        self.assertEqual({f["category"]: f["left_as_pi"] for f in first["findings"]},
                         {"cn_mobile": True, "cn_resident_id": True, "email": False})
        self.assertEqual(first["findings"][0]["evidence"], LEGAL_REF)

        by_hex = json.loads(self.cli("subject", "--pseudonym", pseudonym("u-d1"), self.audit_dir,
                                     "--json").stdout)
        self.assertEqual([d["decision_id"] for d in by_hex["decisions"]],
                         [d["decision_id"] for d in doc["decisions"]])
        blocked = json.loads(self.cli("subject", "u-d3", "--key-env", "BG_SUBJECT_KEY", self.audit_dir,
                                      "--json").stdout)
        self.assertEqual((blocked["summary"]["decisions"], blocked["summary"]["transfers"],
                          blocked["summary"]["blocked"]), (1, 0, 1))
        text = self.cli("subject", "-", "--key", keyfile, self.audit_dir, stdin="u-d1\n").stdout
        self.assertIn("2 decision(s) name this subject", text)
        self.assertIn("left as PI (pseudonymized)", text)
        self.assertNotIn("u-d1", text)

        # The year's volumes, recounted from the log and read from the counters, agree.
        from_log = json.loads(self.cli("volumes", self.audit_dir, "--json").stdout)
        counters = json.loads(self.cli("volumes", "--counters", os.path.join(self.audit_dir, "counters.jsonl"),
                                       "--json").stdout)
        for doc in (from_log, counters):
            self.assertEqual((doc["non_sensitive"], doc["sensitive"], doc["people"]), (2, 1, 2))
            self.assertEqual(doc["status"], "standard_contract_or_certification")
            self.assertEqual([r["recipient"] for r in doc["recipients"]], ["partner-us"])
        self.assertEqual({k: v for k, v in px.stats()["yearly_subjects"].items() if k != "thresholds"},
                         {"year": from_log["year"], "non_sensitive": 2, "sensitive": 1, "people": 2,
                          "people_by_device": 0, "status": "standard_contract_or_certification"})


class CountersTest(AuditTestBase):

    def test_distinct_people_once_per_year_sensitive_separately_across_restarts(self):
        px = self.start()
        traffic = [
            ("u-e1", body("u-e1", phone(101)), "us.example", 200),            # non-sensitive
            ("u-e2", body("u-e2", id_no=resident_id(102)), "us.example", 200),  # sensitive, pseudonymized
            ("u-e1", body("u-e1", phone(101)), "us.example", 200),            # seen already
            ("u-e1", body("u-e1", id_no=resident_id(101)), "us.example", 200),  # now also sensitive
            ("u-e3", body("u-e3", email="e3@example.cn"), "us.example", 200),  # anonymized: not counted
            ("u-e4", body("u-e4", phone(104)), "blocked.example", 451),        # blocked: not counted
        ]
        for n, (uid, data, host, want) in enumerate(traffic):
            r = self.send(px, "/e/%d" % n, data, host=host)
            self.assertEqual(r.status_code, want, "entry %d: %s" % (n, r.text))
        ys = px.stats()["yearly_subjects"]
        year = int(time.strftime("%Y", time.gmtime(time.time() + 8 * 3600)))
        self.assertEqual((ys["year"], ys["non_sensitive"], ys["sensitive"], ys["people"]), (year, 1, 2, 2))
        self.assertEqual(ys["status"], "standard_contract_or_certification")  # any sensitive PI (Art. 8)
        self.assertEqual(ys["thresholds"], {"contract_non_sensitive": 100000, "assessment_non_sensitive": 1000000,
                                            "contract_sensitive": 1, "assessment_sensitive": 10000})
        cfile = os.path.join(self.audit_dir, "counters.jsonl")
        with open(cfile) as f:
            lines = [json.loads(l) for l in f]
        self.assertEqual(sorted((l["subject"], l["kind"]) for l in lines),
                         sorted([(pseudonym("u-e1"), "non_sensitive"), (pseudonym("u-e2"), "sensitive"),
                                 (pseudonym("u-e1"), "sensitive")]))
        self.assertTrue(all(l["recipient"] == "partner-us" and l["year"] == year for l in lines))
        self.assertNoValues(self.audit_dir, ["u-e1", "u-e2", "u-e3", "u-e4", phone(101), resident_id(102)])

        # Restart: the counts come back from the file, and stay distinct.
        self.assertEqual(px.stop(), 0)
        px2 = self.start(name="proxy2")
        ys = px2.stats()["yearly_subjects"]
        self.assertEqual((ys["non_sensitive"], ys["sensitive"], ys["people"]), (1, 2, 2))
        self.assertEqual(self.send(px2, "/e/again", body("u-e1", phone(101), resident_id(101))).status_code, 200)
        self.assertEqual(self.send(px2, "/e/new", body("u-e5", phone(105))).status_code, 200)
        ys = px2.stats()["yearly_subjects"]
        self.assertEqual((ys["non_sensitive"], ys["sensitive"], ys["people"]), (2, 2, 3))
        with open(cfile) as f:
            self.assertEqual(len(f.readlines()), 4)
        from_log = json.loads(self.cli("volumes", self.audit_dir, "--json").stdout)
        self.assertEqual((from_log["non_sensitive"], from_log["sensitive"], from_log["people"]), (2, 2, 3))

    def test_volumes_with_the_policy_apply_its_thresholds(self):
        """`audit volumes --config POLICY` reads the policy's counters file
        and applies its audit.thresholds, as the daemon does; without
        --config the CAC defaults apply."""
        px = self.start(thresholds={"contract_non_sensitive": 2})
        for n in (201, 202):
            uid = "u-t%d" % n
            self.assertEqual(self.send(px, "/t/%d" % n, body(uid, phone(n))).status_code, 200)
        self.assertEqual(px.stats()["yearly_subjects"]["status"], "standard_contract_or_certification")
        with_policy = json.loads(self.cli("volumes", "--config", px.config_path, "--json").stdout)
        self.assertEqual((with_policy["non_sensitive"], with_policy["sensitive"]), (2, 0))
        self.assertEqual(with_policy["status"], "standard_contract_or_certification")
        self.assertEqual(with_policy["thresholds"]["contract_non_sensitive"], 2)
        defaults = json.loads(self.cli("volumes", "--counters", os.path.join(self.audit_dir, "counters.jsonl"),
                                       "--json").stdout)
        self.assertEqual(defaults["non_sensitive"], 2)
        self.assertNotEqual(defaults["status"], "standard_contract_or_certification")
        bad = self.cli("volumes", "--config", os.path.join(self.tmpdir, "missing.json"), check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("missing.json", bad.stderr)


if __name__ == "__main__":
    bgtest.main()
