#!/usr/bin/python3
"""
A fleet (issue 16): three real daemons sharing one real redis-server (AOF,
appendfsync always, in the test's directory) and one cross-border sink.

  * a consent granted through daemon A lets the next request through B
    carry the subject's e-mail abroad; a withdrawal through B stops the
    very next request through A and through C (each had the consent in its
    cache): the bound is "the next request after the API answered", and
    the test measures how long after the answer that request was decided;
  * `bordergate consent withdraw` (the CLI) is honoured by the next request,
    with the Redis backend and with the file backend (the file backend used
    to notice it only at its next 1 s poll);
  * the fleet-wide yearly counters equal the distinct people sent, people
    sent through several daemons counted once, and agree with the local
    audit logs' recount; /api/volumes on one daemon gives the fleet figure;
  * Redis killed mid-load: every daemon says so on /readyz, no e-mail leaves
    on a consent while it cannot be checked, counts made meanwhile are not
    lost once Redis is back; a restarted daemon keeps counting.

The consent's effect is what the sink receives: rule "email-redacted"
(bases: consent, fallback: de-identify) lets the raw e-mail leave only on a
consent. Skipped (with a message) when redis-server is not installed.
"""
import datetime
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import t  # noqa: E402
from test_audit import KEY_ENV, SUBJECT_KEY, AuditTestBase, decisions, phone  # noqa: E402

REDIS = shutil.which("redis-server")
TOKEN = "fleet-test-admin-token-0123456789"


def email(n):
    return "person%d@example.org" % n


class Redis:
    """redis-server on a free loopback port, AOF with appendfsync always in DIR."""

    def __init__(self, tc, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.port = bgtest.free_port()
        self.proc = None
        self.start()
        tc.addCleanup(self.kill)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        with open(os.path.join(self.dir, "redis.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
                stdout=log, stderr=subprocess.STDOUT)
        bgtest.wait_for(self.ping, t(10), "redis-server to answer PING")

    def ping(self):
        r = subprocess.run(["redis-cli", "-p", str(self.port), "PING"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() == "PONG"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@unittest.skipUnless(REDIS, "redis-server is not installed (apt-get install redis-server)")
class Fleet(AuditTestBase):

    def setUp(self):
        super().setUp()
        self.redis = Redis(self, os.path.join(self.tmpdir, "redis"))
        self.up = self.sink("us", host="127.0.0.2")
        self.keyfile = os.path.join(self.tmpdir, "subject.key")
        with open(self.keyfile, "w") as f:
            f.write(SUBJECT_KEY + "\n")
        os.chmod(self.keyfile, 0o600)
        os.environ["BG_FLEET_TOKEN"] = TOKEN
        self.addCleanup(os.environ.pop, "BG_FLEET_TOKEN", None)

    # -- pieces ---------------------------------------------------------

    def daemon(self, name, registry=None, workers=2):
        """A daemon with its own audit directory, the shared store (or the
        file REGISTRY), and an admin token (set by a reload: the harness
        writes admin.listen itself)."""
        audit_dir = os.path.join(self.tmpdir, "audit-" + name)
        cfg = self.config(self.up, audit_dir, workers=workers)
        cfg["consent"] = {"registry": registry or os.path.join(self.tmpdir, "unused-" + name + ".jsonl")}
        if registry is None:
            cfg["store"] = {"redis": {"url": self.redis.url}}
        px = self.proxy(cfg, env=KEY_ENV, name=name)
        cfg = json.loads(json.dumps(px.config))
        cfg["admin"]["token"] = {"env": "BG_FLEET_TOKEN"}
        px.reload(cfg)
        px.audit_dir = audit_dir
        bgtest.wait_for(lambda: self.readyz(px)[0] == 200, t(20), "%s to be ready" % name)
        return px

    def readyz(self, px):
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        try:
            c.request("GET", "/readyz")
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def admin_post(self, px, path, doc):
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        try:
            c.request("POST", path, body=json.dumps(doc),
                      headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def grant_api(self, px, uid):
        status, doc = self.admin_post(px, "/consents", {
            "subject": uid, "recipient": "partner-us", "purpose": "support", "region": "*",
            "recorded_by": "fleet-test"})
        self.assertEqual(status, 201, doc)
        return doc["id"]

    def consent_cli(self, *args, registry=None):
        env = dict(os.environ)
        env["BG_CONSENT_KEY"] = self.keyfile
        if registry is None:
            env["BG_CONSENT_REDIS"] = self.redis.url
        else:
            env["BG_CONSENT_REGISTRY"] = registry
        r = subprocess.run([bgtest.BIN, "consent"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=t(30), input="")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def send_email(self, px, uid, n):
        """Send subject UID's e-mail N through PX; True when it left raw."""
        before = len(self.up.records())
        resp = self.send(px, "/v1/tickets", json.dumps({"user": {"id": uid, "email": email(n)}}))
        self.assertEqual(resp.status_code, 200, resp.text)
        got = json.loads(self.up.wait_records(before + 1)[-1].body)
        return got["user"].get("email") == email(n)

    def send_phone(self, px, uid, n):
        """Send UID's phone (leaves on the legal obligation: counted)."""
        resp = self.send(px, "/v1/tickets", json.dumps({"user": {"id": uid, "phone": phone(n)}}))
        return resp.status_code

    def fleet_volumes(self):
        env = dict(os.environ)
        r = subprocess.run([bgtest.BIN, "audit", "volumes", "--redis", self.redis.url, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def recount(self, *dirs):
        r = subprocess.run([bgtest.BIN, "audit", "volumes", "--json"] + list(dirs),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def wait_fleet_people(self, n):
        return bgtest.wait_for(lambda: (lambda d: d if d["people"] == n else None)(self.fleet_volumes()),
                               t(20), "the fleet count to reach %d" % n)

    def assertNoCitationAfterWithdrawal(self, audit_dir, cid, withdrawn_at):
        """No decision record decided at or after WITHDRAWN_AT cites consent CID."""
        for rec in decisions(audit_dir):
            ts = datetime.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp()
            for f in rec.get("findings", []):
                if f.get("evidence", "").startswith("consent:" + cid):
                    self.assertLess(ts, withdrawn_at, "a record cites %s after its withdrawal" % cid)

    # -- consent --------------------------------------------------------

    def test_consent_granted_on_one_daemon_withdrawn_on_another_stops_the_next_request_everywhere(self):
        a, b, c = self.daemon("a"), self.daemon("b"), self.daemon("c")
        lags = []
        for i in range(8):
            uid = "u-fleet-%d" % i
            self.assertFalse(self.send_email(b, uid, i), "e-mail left without consent")
            cid = self.grant_api(a, uid)
            # Granted through A: B (which cached "no consent" just now) and C see it.
            self.assertTrue(self.send_email(b, uid, i), "B did not honour A's grant")
            self.assertTrue(self.send_email(c, uid, i), "C did not honour A's grant")
            self.assertTrue(self.send_email(a, uid, i), "A did not honour its own grant")
            status, doc = self.admin_post(b, "/consents/%s/withdraw" % cid, {"recorded_by": "fleet-test"})
            self.assertEqual(status, 200, doc)
            answered = time.time()
            self.assertFalse(self.send_email(a, uid, i), "A allowed the request after B's withdrawal")
            lags.append(time.time() - answered)
            self.assertFalse(self.send_email(c, uid, i), "C allowed the request after B's withdrawal")
            status, doc = self.admin_post(b, "/consents/%s/withdraw" % cid, {"recorded_by": "fleet-test"})
            self.assertEqual(status, 409, "a withdrawal applies once")
        sys.stderr.write("\n[fleet] withdrawal through B -> next request through A decided within "
                         "%.1f ms of the answer (max of %d)\n" % (max(lags) * 1000, len(lags)))
        self.assertLess(max(lags), t(1.0))
        status, doc = self.readyz(a)
        self.assertEqual(status, 200, doc)

    def test_cli_withdraw_is_honoured_by_the_next_request_redis(self):
        a = self.daemon("a")
        for i in range(5):
            uid = "u-cli-redis-%d" % i
            cid = self.consent_cli("grant", "--subject", uid, "--recipient", "partner-us",
                                   "--purpose", "support", "--region", "*")
            self.assertTrue(self.send_email(a, uid, i), "the CLI's grant was not honoured")
            self.consent_cli("withdraw", "--id", cid)
            after = time.time()
            self.assertFalse(self.send_email(a, uid, i), "allowed after the CLI withdrew")
        self.assertNoCitationAfterWithdrawal(a.audit_dir, cid, after)

    def test_cli_withdraw_is_honoured_by_the_next_request_file_backend(self):
        registry = os.path.join(self.tmpdir, "consents.jsonl")
        a = self.daemon("a", registry=registry)
        for i in range(5):
            uid = "u-cli-file-%d" % i
            cid = self.consent_cli("grant", "--subject", uid, "--recipient", "partner-us",
                                   "--purpose", "support", "--region", "*", registry=registry)
            self.assertTrue(self.send_email(a, uid, i), "the CLI's grant was not honoured")
            self.consent_cli("withdraw", "--id", cid, registry=registry)
            self.assertFalse(self.send_email(a, uid, i), "allowed after the CLI withdrew (file backend)")

    def test_a_reload_does_not_interrupt_consent_look_ups(self):
        a = self.daemon("a")
        uid = "u-reload"
        self.grant_api(a, uid)
        stop = threading.Event()
        sent, failed = [], []

        def load(k):
            s = self.session()
            n = 0
            while not stop.is_set():
                addr = "t%d-%d@example.org" % (k, n)
                resp = self.send(a, "/v1/tickets", json.dumps({"user": {"id": uid, "email": addr}}), session=s)
                (sent if resp.status_code == 200 else failed).append(addr)
                n += 1

        threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
        for th in threads:
            th.start()
        try:
            for _ in range(5):  # each reload opens a new registry handle
                a.reload(a.config)
                time.sleep(0.05)
        finally:
            stop.set()
            for th in threads:
                th.join()
        self.assertEqual(failed, [])
        arrived = set()
        for rec in self.up.records():
            e = json.loads(rec.body)["user"].get("email")
            if e:
                arrived.add(e)
        refused = [e for e in sent if e not in arrived]
        self.assertGreater(len(sent), 20)
        self.assertEqual(refused, [], "requests right after a reload were not answered from the registry")

    def test_a_daemon_with_another_subject_key_refuses_the_registry(self):
        self.daemon("a")  # records the key's check value in the store
        cfg = self.config(self.up, os.path.join(self.tmpdir, "audit-x"))
        cfg["consent"] = {"registry": os.path.join(self.tmpdir, "unused.jsonl")}
        cfg["store"] = {"redis": {"url": self.redis.url}}
        env = dict(KEY_ENV, BG_SUBJECT_KEY="3c" * 32)
        with self.assertRaises(AssertionError) as ctx:
            self.proxy(cfg, env=env, name="x")
        self.assertIn("subject key does not match the registry", str(ctx.exception))

    def test_consent_list_over_redis_lists_every_consent(self):
        # More than one pipeline batch (512 consents a round trip).
        a = self.daemon("a")
        granted = [self.grant_api(a, "u-list-%d" % i) for i in range(530)]
        status, doc = self.admin_post(a, "/consents/%s/withdraw" % granted[7], {"recorded_by": "fleet-test"})
        self.assertEqual(status, 200, doc)
        t0 = time.monotonic()
        out = self.consent_cli("list", "--json")
        took = time.monotonic() - t0
        listed = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
        self.assertEqual(sorted(c["id"] for c in listed), sorted(granted))
        withdrawn = [c["id"] for c in listed if c.get("withdrawn_at")]
        self.assertEqual(withdrawn, [granted[7]])
        sys.stderr.write("\n[fleet] consent list over Redis: %d consents in %.0f ms\n"
                         % (len(listed), took * 1000))

    # -- counters -------------------------------------------------------

    def test_counters_across_daemons_count_each_person_once(self):
        a, b, c = self.daemon("a"), self.daemon("b"), self.daemon("c")
        plan = [(a, range(0, 10)), (b, range(5, 15)), (c, range(10, 20))]
        for px, people in plan:
            for n in people:
                self.assertEqual(self.send_phone(px, "u-count-%d" % n, n), 200)
        doc = self.wait_fleet_people(20)
        self.assertEqual(doc["non_sensitive"], 20)
        self.assertEqual(doc["source"], "redis")
        self.assertEqual({r["recipient"]: r["people"] for r in doc["recipients"]}, {"partner-us": 20})
        # The auditor's cross-check: the three audit logs recounted agree.
        local = self.recount(a.audit_dir, b.audit_dir, c.audit_dir)
        self.assertEqual((local["people"], local["non_sensitive"]), (20, 20))
        # Each daemon alone saw 10; its dashboard gives the fleet figure.
        self.assertEqual(a.stats()["yearly_subjects"]["people"], 10)
        status, api = self.admin_get(a, "/api/volumes")
        self.assertEqual((status, api["people"], api["source"]), (200, 20, "redis"))

    def admin_get(self, px, path):
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def test_redis_killed_mid_load_fails_closed_and_loses_no_count(self):
        a, b = self.daemon("a"), self.daemon("b")
        uid = "u-outage"
        self.grant_api(a, uid)
        self.assertTrue(self.send_email(a, uid, 1))
        self.assertTrue(self.send_email(b, uid, 1))
        sent = set()
        stop = threading.Event()
        errors = []

        def load(px, base):
            n = base
            while not stop.is_set():
                try:
                    if self.send_phone(px, "u-load-%d" % n, n) == 200:
                        sent.add(n)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))
                n += 1

        threads = [threading.Thread(target=load, args=(px, base)) for px, base in ((a, 0), (b, 100000))]
        for th in threads:
            th.start()
        try:
            time.sleep(0.3)
            self.redis.kill()
            for px in (a, b):
                status, doc = bgtest.wait_for(
                    lambda px=px: (lambda r: r if r[0] != 200 else None)(self.readyz(px)), t(10),
                    "/readyz to report the store")
                self.assertIn("consent", json.dumps(doc))
            # While Redis is down: the consent cannot be checked, so the e-mail
            # does not leave, through either daemon.
            for i in range(5):
                self.assertFalse(self.send_email(a, uid, 100 + i), "e-mail left on an unchecked consent")
                self.assertFalse(self.send_email(b, uid, 200 + i), "e-mail left on an unchecked consent")
            time.sleep(0.3)
            self.redis.start()
            for px in (a, b):
                bgtest.wait_for(lambda px=px: self.readyz(px)[0] == 200, t(20), "recovery")
            time.sleep(0.2)
        finally:
            stop.set()
            for th in threads:
                th.join()
        self.assertEqual(errors, [])
        self.assertGreater(len(sent), 10)
        self.assertTrue(self.send_email(a, uid, 300), "the consent is honoured again after recovery")
        # Every person whose phone left (before, during and after the outage)
        # and the consent's subject (whose e-mail left on the consent).
        doc = self.wait_fleet_people(len(sent) + 1)
        local = self.recount(a.audit_dir, b.audit_dir)
        self.assertEqual(local["people"], doc["people"])

    def test_a_restarted_daemon_keeps_counting(self):
        a = self.daemon("a")
        for n in range(5):
            self.assertEqual(self.send_phone(a, "u-restart-%d" % n, n), 200)
        self.wait_fleet_people(5)
        a.stop()
        a2 = self.daemon("a")  # same name: same audit directory and counters journal
        for n in range(3, 9):  # 3 and 4 again, 5..8 new
            self.assertEqual(self.send_phone(a2, "u-restart-%d" % n, n), 200)
        doc = self.wait_fleet_people(9)
        self.assertEqual(self.recount(a2.audit_dir)["people"], doc["people"])

    # -- the fleet's dashboard ------------------------------------------

    def dashboard(self, px):
        status, doc = self.admin_get(px, "/api/dashboard?time=hour")
        self.assertEqual(status, 200, doc)
        return doc

    def cli_report(self, *dirs):
        # Records no request waits for (a de-identified e-mail's decision,
        # kept for its completion) reach the log just after the answer.
        for d in dirs:
            bgtest.wait_audit_settled(d)
        r = subprocess.run([bgtest.BIN, "audit", "report", "--json", "--by", "country"] + list(dirs),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def wait_dashboard(self, px, decisions, subjects):
        """PX's dashboard once its totals reach DECISIONS (the instances publish
        every second); its totals must then be exactly these."""
        doc = bgtest.wait_for(
            lambda: (lambda d: d if d["reports"]["country"]["totals"]["decisions"] >= decisions else None)(
                self.dashboard(px)), t(20), "the fleet dashboard to show %d decisions" % decisions)
        totals = doc["reports"]["country"]["totals"]
        self.assertEqual((totals["decisions"], totals["subjects"]), (decisions, subjects))
        return doc

    def test_dashboard_shows_the_fleet_and_each_person_once(self):
        a, b = self.daemon("a"), self.daemon("b")
        for n in range(0, 10):
            self.assertEqual(self.send_phone(a, "u-dash-%d" % n, n), 200)
        for n in range(5, 15):  # 5..9 seen by both daemons
            self.assertEqual(self.send_phone(b, "u-dash-%d" % n, n), 200)
        self.assertFalse(self.send_email(b, "u-dash-blocked", 1))  # de-identified: a finding more
        for px, n in ((a, 1), (b, 12)):  # a blocked request through each (people already counted)
            resp = self.send(px, "/v1/blocked", json.dumps({"user": {"id": "u-dash-%d" % n, "phone": phone(n)}}),
                             host="blocked.example")
            self.assertEqual(resp.status_code, 451)
        # Each daemon's dashboard shows both daemons' traffic, people seen by
        # both once: exactly what `audit report` says over both directories.
        local = self.cli_report(a.audit_dir, b.audit_dir)["totals"]
        self.assertEqual((local["decisions"], local["subjects"]), (23, 16))
        r = subprocess.run([bgtest.BIN, "audit", "blocked", "--json", "--limit", "20", a.audit_dir, b.audit_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        blocked = json.loads(r.stdout)
        self.assertEqual(len(blocked["decisions"]), 2)
        for px in (a, b):
            doc = self.wait_dashboard(px, 23, 16)
            self.assertEqual(doc["scope"]["source"], "fleet")
            self.assertEqual(doc["scope"]["instances"], 2)
            self.assertEqual(doc["reports"]["country"]["totals"], local)
            # every hour's figures, not only the totals
            hours = {g["key"]: g["decisions"] for g in doc["reports"]["hour"]["groups"]}
            self.assertEqual(sum(hours.values()), 23)
            # the latest blocked decisions of both daemons, whole, newest first
            self.assertEqual(doc["blocked"]["blocked"], 2)
            self.assertEqual(doc["blocked"]["decisions"], blocked["decisions"])
        # A daemon killed and restarted publishes its hours again: nothing
        # counts twice, and its new traffic joins the fleet's.
        os.kill(b.pid, signal.SIGKILL)
        b.proc.kill()
        b.exit_checked = True
        b2 = self.daemon("b")
        for n in range(12, 17):  # 12..14 again, 15 and 16 new
            self.assertEqual(self.send_phone(b2, "u-dash-%d" % n, n), 200)
        local = self.cli_report(a.audit_dir, b2.audit_dir)["totals"]
        self.assertEqual((local["decisions"], local["subjects"]), (28, 18))
        doc = self.wait_dashboard(a, 28, 18)
        self.assertEqual(doc["reports"]["country"]["totals"], local)
        time.sleep(1.5)  # a few more publishing rounds: still no double count
        self.assertEqual(self.dashboard(b2)["reports"]["country"]["totals"], local)
        # The store gone: the dashboard answers with this instance's figures
        # and says why.
        self.redis.kill()
        doc = self.dashboard(a)
        self.assertEqual(doc["scope"]["source"], "instance")
        self.assertTrue(doc["scope"]["fleet_error"])
        self.assertEqual(doc["reports"]["country"]["totals"]["decisions"], 11)  # its own only

    def test_a_day_gone_from_the_disk_goes_from_the_fleet(self):
        # What retention does to an old file: its days leave the rollups, and
        # the store, so the fleet's figures stay those of the logs.
        a = self.daemon("a")
        for n in range(3):
            self.assertEqual(self.send_phone(a, "u-ret-%d" % n, n), 200)
        self.wait_dashboard(a, 3, 3)
        old = os.path.join(a.audit_dir, "audit-20200101-000000-000001.jsonl")  # before the daemon's files
        rec = {"type": "decision", "time": "2020-01-02T03:04:05.000Z", "route": "r", "outcome": "allow",
               "destination": {"country": "US", "region": "cross-border"}, "mode": "enforce",
               "findings": [], "subjects": [{"pseudonym": "ab" * 32}]}
        with open(old, "w") as f:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.wait_dashboard(a, 4, 4)
        days = subprocess.run(["redis-cli", "-p", str(self.redis.port), "KEYS", "bg:roll:*:2020-01-02"],
                              stdout=subprocess.PIPE, text=True).stdout.split()
        self.assertEqual(len(days), 1, "the old day was published")
        os.unlink(old)
        doc = bgtest.wait_for(
            lambda: (lambda d: d if d["reports"]["country"]["totals"]["decisions"] == 3 else None)(
                self.dashboard(a)), t(20), "the removed day to leave the fleet's figures")
        self.assertEqual(doc["reports"]["country"]["totals"]["subjects"], 3)
        days = subprocess.run(["redis-cli", "-p", str(self.redis.port), "KEYS", "bg:roll:*:2020-01-02"],
                              stdout=subprocess.PIPE, text=True).stdout.split()
        self.assertEqual(days, [])


if __name__ == "__main__":
    unittest.main()
