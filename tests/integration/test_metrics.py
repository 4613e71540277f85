"""/metrics under load agrees with the audit log, and leaks no PI.

A few thousand requests from several client threads, mixed across routes
and outcomes (allowed on a legal basis, de-identified, blocked, monitored,
domestic, refused for want of a route), while another thread scrapes
/metrics continuously. Afterwards:

  * bordergate_requests_total by route, recipient, country, region, decision
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
import threading

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
            assert kind in ("counter", "gauge", "histogram"), line
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
        reqs = m[("bordergate_http_requests_total", frozenset())]
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
        got = series(m, "bordergate_requests_total")
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
        self.assertLess(len(m), 200, "label cardinality grew with the traffic")

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
        before = series(parse(scrape(px)), "bordergate_requests_total")
        old = frozenset({("route", "us"), ("recipient", "partner-us"), ("country", "US"),
                         ("region", "cross-border"), ("decision", "allow"), ("mode", "enforce")})
        self.assertEqual(before[old], 5)

        cfg2 = json.loads(json.dumps(px.config))
        cfg2["routes"][0]["id"] = "us-v2"
        px.reload(cfg2)
        for i in range(3):
            self.assertEqual(self.send(px, "/b/%d" % i, body("u-rl-b%d" % i, phone(50 + i))).status_code, 200)
        m = parse(scrape(px))
        after = series(m, "bordergate_requests_total")
        self.assertEqual(after[old], 5)
        self.assertEqual(after[old - {("route", "us")} | {("route", "us-v2")}], 3)
        self.assertEqual(m[("bordergate_config_generation", frozenset())], 2)
        self.assertEqual(m[("bordergate_reloads_total", frozenset({("result", "ok")}))], 1)


if __name__ == "__main__":
    bgtest.main()
