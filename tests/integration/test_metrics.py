"""/metrics under load agrees with the audit log, and leaks no PI.

A few thousand requests from several client threads, mixed across routes
and outcomes (allowed on a legal basis, de-identified, blocked, monitored,
domestic, refused for want of a route), while another thread scrapes
/metrics continuously. Afterwards:

  * bordergate_decisions_total by route, recipient, country, region, decision
    and mode equals the decision records in the audit files, series by
    series; findings by category, de-identified fields by operator and
    blocked transfers by reason equal what those records say;
  * the latency histograms count every request sent, once;
  * every scrape was valid exposition text with counters that never went
    down, and no scrape contains a PI value, a subject id or a pseudonym;
  * label cardinality stays bounded by the policy (routes x outcomes);
  * after a reload, counting continues under the new labels and the old
    series keep their totals.

Two workers, so the scrape must add up per-worker series.
"""
import collections
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time

import requests

import bgtest
from bgtest import route, t
from test_audit import AuditTestBase, KEY_ENV, body, decisions, phone, pseudonym, resident_id

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels.items())): value}; raises on a malformed line."""
    out = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary"), line
            typed.add(name)
            continue
        m = SAMPLE.match(line)
        assert m is not None, "malformed exposition line: %r" % line
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, "sample without # TYPE: %r" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        key = (name, labels)
        assert key not in out, "duplicate series %r" % line
        out[key] = float(m.group(3))
    return out


def series(metrics, name):
    return {lab: v for (n, lab), v in metrics.items() if n == name}


def scrape(px):
    c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode()
        assert r.status == 200
        assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
        return text
    finally:
        c.close()


def promtool_clean(tc, text):
    """`promtool check metrics` finds nothing to say about TEXT (lint
    included: names, units, HELP). promtool is a test dependency
    (scripts/deps.sh: Debian's prometheus)."""
    exe = shutil.which("promtool")
    tc.assertIsNotNone(exe, "promtool is not installed (scripts/deps.sh)")
    r = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, text=True, timeout=t(30))
    tc.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), "promtool check metrics")


def one(m, name, **labels):
    return m[(name, frozenset(labels.items()))]


class MetricsTest(AuditTestBase):

    def config_all(self, us, cn):
        cfg = self.config(us, os.path.join(self.tmpdir, "audit"), workers=2)
        cfg["routes"].append(route("us-monitor", us.origin, host="monitor.example", recipient="partner-us",
                                   purpose="support", subjects={"id": "$.user.id"}, mode="monitor"))
        cfg["routes"].append(route("cn", cn.origin, host="cn.example"))
        cfg["geo"]["overrides"]["cidrs"]["%s/32" % cn.host] = "CN"
        return cfg

    def test_counts_under_load_match_the_audit_log_and_carry_no_pi(self):
        us = self.sink("us", host="127.0.0.2")
        cn = self.sink("cn", host="127.0.0.3")
        cfg = self.config_all(us, cn)
        px = self.proxy(cfg, env=KEY_ENV)
        self.audit_dir = cfg["audit"]["directory"]

        sent_values = set()
        sent_lock = threading.Lock()
        counts = collections.Counter()
        nthreads, per_thread = 4, 600

        def client(k):
            s = requests.Session()
            mine = set()
            for i in range(per_thread):
                n = k * per_thread + i
                uid = "u-met-%d" % n
                tel, idn, mail = phone(3000000 + n), resident_id(n), "met.%d@example.cn" % n
                kind = n % 6
                if kind == 0:    # phone only, legal obligation: allowed
                    host, data = "us.example", body(uid, tel)
                elif kind == 1:  # id number hashed, e-mail redacted: de-identified
                    host, data = "us.example", body(uid, tel, id_no=idn, email=mail)
                elif kind == 2:  # no basis for this recipient: blocked
                    host, data = "blocked.example", body(uid, tel)
                elif kind == 3:  # monitor mode: forwarded, would be de-identified
                    host, data = "monitor.example", body(uid, email=mail)
                elif kind == 4:  # domestic: forwarded unchanged
                    host, data = "cn.example", body(uid, tel, id_no=idn)
                else:            # no route: refused with 421
                    host, data = "nowhere.example", body(uid, tel)
                mine |= {uid, tel, idn, mail, pseudonym(uid)}
                r = s.post(px.url("/m/%d" % n), data=data, timeout=t(30),
                           headers={"Host": host, "Content-Type": "application/json"})
                counts[(kind, r.status_code)] += 1
            s.close()
            with sent_lock:
                sent_values.update(mine)

        scrapes = []
        done = threading.Event()
        errors = []

        def scraper():
            try:
                while not done.is_set():
                    scrapes.append(scrape(px))
            except Exception as e:  # reported below, in the test thread
                errors.append(e)

        sc = threading.Thread(target=scraper)
        sc.start()
        clients = [threading.Thread(target=client, args=(k,)) for k in range(nthreads)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        done.set()
        sc.join()
        self.assertEqual(errors, [])
        final = scrape(px)
        total = nthreads * per_thread
        self.assertEqual(sum(counts.values()), total)
        expect_status = {0: 200, 1: 200, 2: 451, 3: 200, 4: 200, 5: 421}
        for (kind, status), n in counts.items():
            self.assertEqual(status, expect_status[kind], "kind %d answered %d" % (kind, status))
        self.assertGreater(len(scrapes), 3, "the scraper hardly ran during the load")
        if os.environ.get("BG_VERBOSE"):
            print("%d requests, %d scrapes" % (total, len(scrapes)))

        # Every scrape parses; counters never go down between scrapes.
        prev = {}
        for text in scrapes + [final]:
            m = parse(text)
            for key, v in m.items():
                if key[0].endswith("_total") or key[0].endswith("_count") or key[0].endswith("_bucket"):
                    self.assertGreaterEqual(v, prev.get(key, 0), "counter went down: %r" % (key,))
            prev = m
        m = parse(final)

        # No PI value, subject id or pseudonym in any scrape: every token of
        # every scrape, and every substring of the last one.
        for text in scrapes:
            leaked = sent_values & set(re.split(r"[^A-Za-z0-9@._+-]+", text))
            self.assertEqual(leaked, set(), "a PI value or subject id appeared in /metrics")
        for v in sent_values:
            self.assertNotIn(v, final, "a PI value or subject id appeared in /metrics")

        # Histograms count every request once.
        reqs = m[("bordergate_requests_total", frozenset())]
        self.assertEqual(reqs, total)
        for h in ("bordergate_request_duration_seconds", "bordergate_added_latency_seconds"):
            self.assertEqual(m[(h + "_count", frozenset())], total, h)
            buckets = sorted(((float(dict(lab)["le"]), v) for lab, v in series(m, h + "_bucket").items()))
            self.assertEqual(buckets[-1], (float("inf"), total))
            self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets), "buckets not cumulative")
        self.assertLessEqual(m[("bordergate_added_latency_seconds_sum", frozenset())],
                             m[("bordergate_request_duration_seconds_sum", frozenset())])
        self.assertEqual(series(m, "bordergate_refusals_total"),
                         {frozenset({("status", "421")}): counts[(5, 421)]})

        # The audit log, once every record is on disk.
        self.assertEqual(px.stop(), 0)
        recs = decisions(self.audit_dir)
        self.assertEqual(len(recs), total - counts[(5, 421)])
        want = collections.Counter()
        cats, ops, reasons = collections.Counter(), collections.Counter(), collections.Counter()
        would = collections.Counter()
        for d in recs:
            want[frozenset({("route", d["route"]),
                            ("recipient", (d.get("recipient") or {}).get("id", "")),
                            ("country", d["destination"]["country"] or "unknown"),
                            ("region", d["destination"]["region"]),
                            ("decision", d["outcome"]),
                            ("mode", d["mode"])})] += 1
            for f in d["findings"]:
                cats[frozenset({("category", f["category"])})] += 1
                if f["action"] in ("deidentify", "remove"):
                    ops[frozenset({("operator", f["operator"])})] += 1
            if d["mode"] == "monitor":
                would[frozenset({("route", d["route"]), ("would", d["would"])})] += 1
            if d["outcome"] == "block":
                for code in {r["code"] for r in d["reasons"]}:
                    reasons[frozenset({("reason", code)})] += 1
        got = series(m, "bordergate_decisions_total")
        self.assertEqual(got, dict(want))
        self.assertEqual(series(m, "bordergate_findings_total"), dict(cats))
        self.assertEqual(series(m, "bordergate_deidentified_fields_total"), dict(ops))
        self.assertEqual(series(m, "bordergate_blocked_total"), dict(reasons))
        self.assertEqual(series(m, "bordergate_monitor_would_total"), dict(would))
        self.assertEqual(dict(would), {frozenset({("route", "us-monitor"), ("would", "deidentify")}):
                                       counts[(3, 200)]})
        # Every outcome and mode is there, and nothing else: 5 routes' worth.
        outcomes = {(dict(k)["route"], dict(k)["decision"], dict(k)["mode"]) for k in got}
        self.assertEqual(outcomes, {("us", "allow", "enforce"), ("us", "deidentify", "enforce"),
                                    ("blocked", "block", "enforce"), ("us-monitor", "allow", "monitor"),
                                    ("cn", "allow", "enforce")})
        self.assertIn(frozenset({("route", "cn"), ("recipient", ""), ("country", "CN"),
                                 ("region", "domestic"), ("decision", "allow"), ("mode", "enforce")}), got)
        # Bounded by the policy: 5 routes x outcomes, and per forwarded route
        # two histograms of 13 buckets: not by the traffic.
        self.assertLess(len(m), 320, "label cardinality grew with the traffic")
        promtool_clean(self, final)

    def test_upstream_errors_are_counted_by_route_and_kind(self):
        us = self.sink("us", host="127.0.0.2")
        cn = self.sink("cn", host="127.0.0.3")
        cfg = self.config_all(us, cn)
        dead = "http://127.0.0.3:%d" % bgtest.free_port("127.0.0.3")
        cfg["routes"].append(route("dead", dead, host="dead.example"))
        px = self.proxy(cfg, env=KEY_ENV)
        for i in range(3):
            self.assertEqual(self.get(px, "/d/%d" % i, host="dead.example").status_code, 502)
        m = parse(scrape(px))
        self.assertEqual(series(m, "bordergate_upstream_errors_by_route_total"),
                         {frozenset({("route", "dead"), ("kind", "connect")}): 3})
        self.assertEqual(m[("bordergate_upstream_errors_total", frozenset())], 3)
        self.assertEqual(series(m, "bordergate_refusals_total"), {frozenset({("status", "502")}): 3})

    def test_reload_keeps_old_series_and_counts_under_new_labels(self):
        us = self.sink("us", host="127.0.0.2")
        cn = self.sink("cn", host="127.0.0.3")
        cfg = self.config_all(us, cn)
        px = self.proxy(cfg, env=KEY_ENV)
        for i in range(5):
            self.assertEqual(self.send(px, "/a/%d" % i, body("u-rl-%d" % i, phone(i))).status_code, 200)
        before = series(parse(scrape(px)), "bordergate_decisions_total")
        old = frozenset({("route", "us"), ("recipient", "partner-us"), ("country", "US"),
                         ("region", "cross-border"), ("decision", "allow"), ("mode", "enforce")})
        self.assertEqual(before[old], 5)

        cfg2 = json.loads(json.dumps(px.config))
        cfg2["routes"][0]["id"] = "us-v2"
        px.reload(cfg2)
        for i in range(3):
            self.assertEqual(self.send(px, "/b/%d" % i, body("u-rl-b%d" % i, phone(50 + i))).status_code, 200)
        m = parse(scrape(px))
        after = series(m, "bordergate_decisions_total")
        self.assertEqual(after[old], 5)
        self.assertEqual(after[old - {("route", "us")} | {("route", "us-v2")}], 3)
        self.assertEqual(m[("bordergate_config_generation", frozenset())], 2)
        self.assertEqual(m[("bordergate_reloads_total", frozenset({("result", "ok")}))], 1)


    def test_upstream_process_reload_and_audit_series_an_sre_looks_for(self):
        us = self.sink("us", host="127.0.0.2")
        cn = self.sink("cn", host="127.0.0.3")
        cfg = self.config_all(us, cn)
        cfg["audit"]["checkpoint_every"] = 4
        t_start = time.time()
        px = self.proxy(cfg, env=KEY_ENV)
        s = requests.Session()  # keep-alive: the upstream connection is pooled
        sent_in, got_out = 0, 0
        for i in range(6):
            data = body("u-sre-%d" % i, phone(700 + i))
            r = self.send(px, "/s/%d" % i, data, session=s)
            self.assertEqual(r.status_code, 200)
            sent_in += len(data.encode())
            got_out += len(r.content)
        s.close()
        m = parse(scrape(px))
        # Upstream: every forwarded request answered 2xx, timed once; new
        # connections timed when made (pooled ones are not new).
        self.assertEqual(one(m, "bordergate_upstream_responses_total", route="us", **{"class": "2xx"}), 6)
        self.assertEqual(one(m, "bordergate_upstream_response_seconds_count", route="us"), 6)
        self.assertEqual(one(m, "bordergate_upstream_response_seconds_bucket", route="us", le="+Inf"), 6)
        self.assertGreater(one(m, "bordergate_upstream_response_seconds_sum", route="us"), 0)
        connects = one(m, "bordergate_upstream_connect_seconds_count", route="us")
        self.assertGreaterEqual(connects, 1)
        self.assertLessEqual(connects, 2, "keep-alive: the connection is reused")
        self.assertEqual(connects, m[("bordergate_upstream_connections_total", frozenset({("kind", "new")}))])
        # Bytes per route, as the client counted them.
        self.assertEqual(one(m, "bordergate_request_bytes_total", route="us"), sent_in)
        self.assertEqual(one(m, "bordergate_response_bytes_total", route="us"), got_out)
        # Nothing in flight now: the pooled connection is idle.
        self.assertEqual(one(m, "bordergate_upstream_connections_open", state="active"), 0)
        self.assertGreaterEqual(one(m, "bordergate_upstream_connections_open", state="idle"), 1)
        # process_*
        self.assertGreater(m[("process_open_fds", frozenset())], 5)
        self.assertGreater(m[("process_max_fds", frozenset())], m[("process_open_fds", frozenset())])
        self.assertGreater(m[("process_resident_memory_bytes", frozenset())], 1 << 20)
        self.assertGreater(m[("process_cpu_seconds_total", frozenset())], 0)
        started = m[("process_start_time_seconds", frozenset())]
        self.assertTrue(t_start - 1 <= started <= time.time(), started)
        # Audit: records per commit (sum = records, count = commits) and the
        # checkpoint written every 4 records.
        m = bgtest.wait_for(lambda: (lambda x: x if x[("bordergate_audit_records_per_commit_sum", frozenset())]
                                     >= 6 else None)(parse(scrape(px))), t(10), "records acknowledged")
        self.assertEqual(m[("bordergate_audit_records_per_commit_sum", frozenset())],
                         m[("bordergate_audit_records_total", frozenset())])
        # (each exchange has a decision and a completion record: 12)
        commits = m[("bordergate_audit_records_per_commit_count", frozenset())]
        self.assertTrue(1 <= commits <= m[("bordergate_audit_records_total", frozenset())], commits)
        self.assertGreaterEqual(m[("bordergate_audit_records_per_commit_max", frozenset())], 1)
        age = m[("bordergate_audit_last_checkpoint_age_seconds", frozenset())]
        self.assertTrue(0 <= age < 60, age)
        self.assertTrue(t_start - 1 <= m[("bordergate_audit_last_checkpoint_timestamp_seconds", frozenset())]
                        <= time.time())
        # Reloads: success and its time; a failed one says so and keeps the time.
        self.assertEqual(m[("bordergate_config_last_reload_successful", frozenset())], 1)
        loaded = m[("bordergate_config_last_reload_success_timestamp_seconds", frozenset())]
        self.assertAlmostEqual(loaded, started, delta=1)
        px.reload("{ not json", expect_ok=False)
        m = parse(scrape(px))
        self.assertEqual(m[("bordergate_config_last_reload_successful", frozenset())], 0)
        self.assertEqual(m[("bordergate_config_last_reload_success_timestamp_seconds", frozenset())], loaded)
        time.sleep(0.01)
        px.reload(cfg)
        text = scrape(px)
        m = parse(text)
        self.assertEqual(m[("bordergate_config_last_reload_successful", frozenset())], 1)
        self.assertGreater(m[("bordergate_config_last_reload_success_timestamp_seconds", frozenset())], loaded)
        promtool_clean(self, text)

    def test_series_table_size_is_a_configuration_key(self):
        us = self.sink("us", host="127.0.0.2")
        cn = self.sink("cn", host="127.0.0.3")
        cfg = self.config_all(us, cn)
        cfg["workers"] = 1
        cfg["metrics"] = {"max_series": 64}
        px = self.proxy(cfg, env=KEY_ENV)
        # Labels come only from the policy: each reload below renames the
        # routes, so each round adds its decisions, upstream responses,
        # bytes and histogram series; five rounds overflow a 64-series
        # table, and the overflow is counted, the table does not grow.
        for k in range(5):
            if k > 0:
                c2 = json.loads(json.dumps(cfg))
                for r in c2["routes"]:
                    r["id"] = "%s-%d" % (r["id"], k)
                px.reload(c2)
            self.send(px, "/t/%d" % k, body("u-ms-%d" % k, phone(900 + k), email="ms.%d@example.cn" % k))
            self.send(px, "/t/%d" % k, body("u-ms-%d" % k, phone(900 + k)), host="blocked.example")
            self.send(px, "/t/%d" % k, body("u-ms-%d" % k, email="m.%d@example.cn" % k), host="monitor.example")
            self.send(px, "/t/%d" % k, body("u-ms-%d" % k), host="cn.example")
        text = scrape(px)
        if os.environ.get("BG_VERBOSE"):
            print(text)
        m = parse(text)
        series_kept = sum(1 for (n, lab) in m if lab and n.startswith("bordergate_") and
                          not n.startswith("bordergate_upstream_connections") and
                          n not in ("bordergate_responses_total", "bordergate_destinations_total",
                                    "bordergate_reloads_total", "bordergate_info") and
                          not n.startswith("bordergate_yearly") and not n.endswith("_bucket"))
        self.assertGreater(m[("bordergate_metrics_dropped_total", frozenset())], 0)
        self.assertLessEqual(series_kept, 64)
        bad = dict(cfg, metrics={"max_series": 10})
        p = os.path.join(self.tmpdir, "bad.json")
        with open(p, "w") as f:
            json.dump(bad, f)
        r = subprocess.run([bgtest.BIN, "check", "--config", p, "--no-keys"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("$.metrics.max_series", r.stderr)


if __name__ == "__main__":
    bgtest.main()
