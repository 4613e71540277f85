"""The compliance dashboard: what the page shows is what the audit log says.

The WADesk pack runs as in test_packs.py (its loopback `bordergate sink`s
pinned to their countries by the pack's geo overrides), every entry of its
recorded traffic (tests/traffic/packs/wadesk.har) is sent through it with
`bordergate replay --live`, and then:

  * each /api/ endpoint returns exactly the document the CLI prints for the
    same period (`bordergate audit report --json --by ...`, `audit blocked
    --json`, `audit volumes --counters FILE --json`), and /api/dashboard
    (the page's one pass over the log) holds exactly those documents;
  * tests/browser/dashboard.js loads /dashboard/ in headless Chromium
    (Debian's chromium through playwright-core), waits for it to draw, reads
    the figures it shows (data-testid attributes) and saves a screenshot
    (into the test's temporary directory and $BG_ARTIFACTS when set); the
    figures must equal the CLI's: totals, per country, per day, per
    category, blocked/de-identified per reason, the latest blocked decision
    ids, the yearly counters; and no PI value of the traffic (nor a raw
    subject id) appears anywhere in the page's HTML or text;
  * a report over a large log is read in slices: /healthz answers meanwhile,
    and a client that leaves cancels its report;
  * bad periods and parameters get 400 with a JSON error; with admin.token
    configured the data endpoints need the bearer token, and the page asks
    for it and then shows the same figures.

Skipped only when /usr/bin/chromium or tests/browser/node_modules is
missing (scripts/deps.sh --test installs both).
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse

import bgtest
import test_packs
from bgtest import t

BROWSER_DIR = os.path.join(bgtest.SOURCE_DIR, "tests", "browser")
CHROMIUM = os.environ.get("BG_CHROMIUM") or "/usr/bin/chromium"
HAVE_BROWSER = (os.path.exists(CHROMIUM) and shutil.which("node") is not None and
                os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))
ADMIN_TOKEN = "dashboard-test-token-0123456789"
CHINA = 8 * 3600


def china_date(epoch):
    return time.strftime("%Y-%m-%d", time.gmtime(epoch + CHINA))


class Dashboard(bgtest.TestCase):
    original_body = test_packs.PackTraffic.original_body
    original_value = test_packs.PackTraffic.original_value

    # -- helpers ------------------------------------------------------------

    def api(self, px, path, token=None):
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(30))
        try:
            headers = {"Authorization": "Bearer " + token} if token else {}
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            body = r.read()
            self.assertTrue(r.getheader("Content-Type", "").startswith("application/json"), path)
            return r.status, json.loads(body), {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()

    def cli(self, *args):
        r = subprocess.run([bgtest.BIN, "audit"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=t(60))
        self.assertEqual(r.returncode, 0, "bordergate audit %s: %s" % (args[0], r.stderr))
        return json.loads(r.stdout)

    def run_traffic(self):
        """The WADesk pack running, its whole HAR sent through it with
        `bordergate replay --live` (which also checks every live decision
        against the offline one). Returns the run and the period (China
        dates) that holds the traffic."""
        before = time.time()
        run = test_packs.PackRun(self, "wadesk")
        env = dict(os.environ)
        env.update(test_packs.KEY_ENV)
        har = os.path.join(test_packs.TRAFFIC_DIR, "wadesk.har")
        r = subprocess.run([bgtest.BIN, "replay", "--config", run.px.config_path, "--har", har,
                            "--live", "http://127.0.0.1:%d" % run.px.port], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=t(120))
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertIn("live: all %d entries agree" % len(run.entries), r.stdout)
        bgtest.wait_audit_settled(run.audit_dir)
        after = time.time()
        return run, china_date(before - 6 * 86400), china_date(after)

    def pi_values(self, run):
        """Every PI value the traffic carried (by its expectations' findings)
        and every raw subject id the consents name."""
        values = set()
        for entry, x in zip(run.entries, run.expect["entries"]):
            for f in x.get("findings", []):
                if f["path"].startswith("$") and self.original_body(entry) is None:
                    continue
                v = self.original_value(entry, f)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    v = str(v)
                if isinstance(v, str) and len(v) >= 4:
                    values.add(v)
        for c in run.expect["consents"]:
            values.add(c["subject"])
        self.assertGreater(len(values), 30)
        return values

    def browse(self, url, token=None):
        shot = os.path.join(self.tmpdir, "dashboard.png")
        argv = ["node", os.path.join(BROWSER_DIR, "dashboard.js"), url, shot]
        if token is not None:
            argv.append(token)
        r = subprocess.run(argv, cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=t(120))
        self.assertEqual(r.returncode, 0, "dashboard.js failed: %s" % r.stderr[-3000:])
        self.assertTrue(os.path.getsize(shot) > 10000, "no screenshot")
        art = os.environ.get("BG_ARTIFACTS")
        if art:
            os.makedirs(art, exist_ok=True)
            shutil.copy(shot, os.path.join(art, "dashboard%s.png" % ("-token" if token else "")))
        return json.loads(r.stdout)

    # -- the JSON endpoints ---------------------------------------------------

    def test_api_documents_are_the_cli_documents_and_bad_parameters_get_400(self):
        run, day_from, day_to = self.run_traffic()
        px, audit = run.px, run.audit_dir
        # The daemon reads the clauses of rules from the policy in force; the
        # CLI from the policy given with --config: the same file here.
        pol = ("--config", px.config_path)
        q = "from=%s&to=%s" % (day_from, day_to)
        for by in ("country", "category", "reason", "rule", "day", "hour", "recipient", "outcome",
                   "recipient,category,basis", "recipient,rule", "reason,day"):
            with self.subTest(by=by):
                status, doc, hdr = self.api(px, "/api/report?by=%s&%s" % (urllib.parse.quote(by), q))
                self.assertEqual(status, 200)
                self.assertEqual(hdr.get("cache-control"), "no-store")
                self.assertEqual(doc, self.cli("report", "--json", "--by", by, "--from", day_from,
                                               "--to", day_to, *pol, audit))
        status, doc, _ = self.api(px, "/api/report?" + q)
        self.assertEqual(doc, self.cli("report", "--json", "--from", day_from, "--to", day_to, audit))
        self.assertEqual(doc["totals"]["decisions"], len(run.entries))
        # Several dimensions: one row per combination, every finding in one
        # row, the mechanism per recipient and the clause of the WADesk rules.
        status, doc, _ = self.api(px, "/api/report?by=recipient,category,basis&" + q)
        self.assertEqual(doc["by"], ["recipient", "category", "basis"])
        self.assertEqual(sum(g["findings"] for g in doc["groups"]), doc["totals"]["findings"])
        self.assertTrue(all(len(g["key"]) == 3 and "mechanisms" in g and "rules" in g
                            for g in doc["groups"]))
        clauses = {r["rule"]: r["clause"] for g in doc["groups"] for r in g["rules"] if r["clause"]}
        with open(px.config_path) as f:
            declared = {r["id"]: r["clause"] for r in json.load(f)["rules"] if "clause" in r}
        self.assertTrue(clauses, "no clause shown")
        for rule, clause in clauses.items():
            self.assertEqual(clause, declared[rule])
        self.assertTrue(all(r["clause_from"] in ("record", "policy") for g in doc["groups"]
                            for r in g["rules"] if r["clause"]))
        status, doc, _ = self.api(px, "/api/blocked?limit=5&" + q)
        self.assertEqual(status, 200)
        self.assertEqual(doc, self.cli("blocked", "--json", "--limit", "5", "--from", day_from,
                                       "--to", day_to, *pol, audit))
        # Each blocked reason with its detail, and the clause of its rule.
        reasons = [r for d in doc["decisions"] for r in d["reasons"]]
        self.assertTrue(reasons and all(r["detail"] for r in reasons))
        self.assertTrue(any(r["clause"] == declared.get(r["rule"]) for r in reasons if r["clause"]))
        self.assertTrue(all(r["clause"] == declared.get(r["rule"]) for r in reasons))
        self.assertEqual(doc["blocked"], sum(1 for x in run.expect["entries"] if x["outcome"] == "block"))
        self.assertEqual(len(doc["decisions"]), 5)
        # The page's one-pass document: each member is the CLI's.
        status, doc, _ = self.api(px, "/api/dashboard?limit=5&" + q)
        self.assertEqual((status, doc["format"]), (200, "bordergate-dashboard/1"))
        self.assertEqual(sorted(doc["reports"]), ["category", "country", "day", "reason", "rule"])
        for by, rep in doc["reports"].items():
            self.assertEqual(rep, self.cli("report", "--json", "--by", by, "--from", day_from,
                                           "--to", day_to, *pol, audit), by)
        self.assertEqual(doc["blocked"], self.cli("blocked", "--json", "--limit", "5", "--from",
                                                  day_from, "--to", day_to, *pol, audit))
        status, doc, _ = self.api(px, "/api/dashboard?time=hour&" + q)
        self.assertEqual(doc["reports"]["hour"], self.cli("report", "--json", "--by", "hour", "--from",
                                                          day_from, "--to", day_to, audit))
        status, doc, _ = self.api(px, "/api/volumes")
        self.assertEqual(status, 200)
        self.assertEqual(doc, self.cli("volumes", "--json", "--counters",
                                       os.path.join(audit, "counters.jsonl")))
        self.assertGreater(doc["people"], 0)
        self.assertEqual(set(doc["exempt"]), {"non_sensitive", "sensitive", "people", "people_by_device"})
        # A window with nothing in it: zeros, not an error.
        status, doc, _ = self.api(px, "/api/report?from=2020-01-01&to=2020-01-31&by=country")
        self.assertEqual((status, doc["totals"]["decisions"], doc["groups"]), (200, 0, []))
        # An explicit zone ("+" kept literally, or %2B).
        status, doc, _ = self.api(px, "/api/report?from=%sT00:00%%2B08:00" % day_from)
        self.assertEqual(status, 200)
        self.assertEqual(doc["totals"]["decisions"], len(run.entries))

        bad = [
            ("/api/report?from=yesterday", "from"),
            ("/api/report?to=2026-02-30", "to"),
            ("/api/report?from=2026-03-02&to=2026-03-01", "after"),
            ("/api/report?by=colour", "by"),
            ("/api/report?by=reason,category", "reason cannot be combined"),
            ("/api/report?by=recipient,recipient", "twice"),
            ("/api/report?country=US", "unknown query parameter"),
            ("/api/report?by=day&by=hour", "twice"),
            ("/api/report?from=%00", "from"),
            ("/api/blocked?limit=0", "limit"),
            ("/api/blocked?limit=1001", "limit"),
            ("/api/blocked?limit=ten", "limit"),
            ("/api/volumes?year=26", "year"),
            ("/api/dashboard?time=week", "time"),
            ("/api/dashboard?by=country", "unknown query parameter"),
        ]
        for path, word in bad:
            with self.subTest(path=path):
                status, doc, _ = self.api(px, path)
                self.assertEqual(status, 400)
                self.assertIn(word, doc["error"])
        status, doc, _ = self.api(px, "/api/nothing")
        self.assertEqual(status, 404)
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        c.request("POST", "/api/report", body=b"{}")
        r = c.getresponse()
        self.assertEqual((r.status, r.getheader("Allow")), (405, "GET, HEAD"))
        r.read()
        c.close()
        # The page and its files are embedded, with a strict CSP.
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(10))
        for path, ctype in (("/dashboard/", "text/html"), ("/dashboard/app.js", "text/javascript"),
                            ("/dashboard/style.css", "text/css")):
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, path)
            self.assertTrue(r.getheader("Content-Type").startswith(ctype), path)
            self.assertIn("default-src 'none'", r.getheader("Content-Security-Policy"))
            self.assertNotIn(b"http://", body.replace(b"http://127.0.0.1", b""))
            self.assertNotIn(b"https://", body)
        c.request("GET", "/dashboard")
        r = c.getresponse()
        r.read()
        self.assertEqual((r.status, r.getheader("Location")), (301, "/dashboard/"))
        c.request("GET", "/dashboard/../config.json")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 404)
        c.close()

    # -- a long scan does not stall the admin listener ---------------------------

    def test_admin_listener_answers_during_a_long_report_and_a_gone_client_cancels_it(self):
        """Reports are read in slices on the admin listener's loop: /healthz
        (the liveness probe) answers while a report over a large log is being
        computed, and a client that goes away cancels its report."""
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "dashboard_bench", os.path.join(bgtest.SOURCE_DIR, "bench", "dashboard_bench.py"))
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        up = self.sink("up")
        audit = os.path.join(self.tmpdir, "audit")
        px = self.proxy(bgtest.make_config([bgtest.route("a", up.origin, host="a.example")],
                                           audit={"directory": audit}))
        n = 20000
        # Beside the daemon's own file, named to sort first (log order).
        bench.write_log(audit, n)
        os.rename(os.path.join(audit, "audit-20260101-000000-000001.jsonl"),
                  os.path.join(audit, "audit-20000101-000000-000001.jsonl"))
        result = {}

        def dashboard():
            t0 = time.time()
            result["doc"] = self.api(px, "/api/dashboard")[1]
            result["took"] = time.time() - t0

        th = threading.Thread(target=dashboard)
        th.start()
        time.sleep(0.2)
        probes = []
        while th.is_alive() and len(probes) < 20:
            t0 = time.time()
            status, doc, _ = self.api(px, "/healthz")
            probes.append(time.time() - t0)
            self.assertEqual(status, 200)
            time.sleep(0.05)
        th.join(t(120))
        self.assertEqual(result["doc"]["reports"]["country"]["totals"]["decisions"], n)
        self.assertGreaterEqual(len(probes), 3, "the report ended before the probes (%.2f s)" % result["took"])
        self.assertLess(max(probes), t(0.5), "a /healthz answer waited for the report")
        # A client that leaves in the middle: its report is dropped, the
        # listener goes on (and the daemon exits cleanly at the end).
        c = socket.create_connection(("127.0.0.1", px.admin_port))
        c.sendall(b"GET /api/report?by=day HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        c.close()
        self.assertEqual(self.api(px, "/healthz")[0], 200)
        self.assertEqual(self.api(px, "/api/report?from=2020-01-01&to=2020-01-02")[1]["totals"]["decisions"], 0)

    # -- the page in a browser ------------------------------------------------

    @unittest.skipUnless(HAVE_BROWSER, "needs /usr/bin/chromium and tests/browser/node_modules "
                                       "(scripts/deps.sh --test)")
    def test_page_shows_the_audit_report_figures_and_no_pi(self):
        run, day_from, day_to = self.run_traffic()
        px, audit = run.px, run.audit_dir
        win = ["--from", day_from, "--to", day_to, audit]
        by_country = self.cli("report", "--json", "--by", "country", *win)
        by_day = self.cli("report", "--json", "--by", "day", *win)
        by_category = self.cli("report", "--json", "--by", "category", *win)
        by_reason = self.cli("report", "--json", "--by", "reason", *win)
        by_rule = self.cli("report", "--json", "--by", "rule", *win)
        blocked = self.cli("blocked", "--json", "--limit", "20", "--config", px.config_path, *win)
        volumes = self.cli("volumes", "--json", "--counters", os.path.join(audit, "counters.jsonl"))

        url = "http://127.0.0.1:%d/dashboard/?from=%s&to=%s" % (px.admin_port, day_from, day_to)
        page = self.browse(url)
        self.assertEqual(page["state"], "ready", page.get("error"))
        self.assertEqual(page["console_errors"], [])
        for u in page["requests"]:  # nothing fetched from anywhere else
            self.assertTrue(u.startswith("http://127.0.0.1:%d/" % px.admin_port), u)
        self.assertEqual((page["period_from"], page["period_to"]), (by_country["from"], by_country["to"]))
        self.assertIn(day_from, page["period"])
        self.assertIn("China time", page["period"])
        self.assertEqual(page["policy_version"], run.config["policy"]["version"])

        tot = by_country["totals"]
        self.assertEqual(page["totals"], {
            "decisions": tot["decisions"], "cross_border": tot["cross_border"],
            "allow": tot["outcomes"]["allow"], "deidentify": tot["outcomes"]["deidentify"],
            "block": tot["outcomes"]["block"], "subjects_left_as_pi": tot["subjects_left_as_pi"]})
        self.assertEqual(tot["decisions"], len(run.entries))
        self.assertEqual(
            [(c["country"], c["decisions"], c["allow"], c["deidentify"], c["block"]) for c in page["countries"]],
            [(g["key"], g["decisions"], g["outcomes"]["allow"], g["outcomes"]["deidentify"], g["outcomes"]["block"])
             for g in by_country["groups"]])
        self.assertGreaterEqual(len(page["countries"]), 2)

        shown_days = {b["key"]: (b["decisions"], b["allow"], b["deidentify"], b["block"])
                      for b in page["timeline"] if b["decisions"] > 0}
        self.assertEqual(shown_days, {g["key"]: (g["decisions"], g["outcomes"]["allow"],
                                                 g["outcomes"]["deidentify"], g["outcomes"]["block"])
                                      for g in by_day["groups"]})
        self.assertEqual(len(page["timeline"]), 7)  # every day of the period, empty ones too

        cats = sorted((g for g in by_category["groups"] if g["key"] is not None),
                      key=lambda g: (-g["findings_left_as_pi"], -g["findings"], g["key"]))[:12]
        self.assertEqual([(c["category"], c["findings"], c["left"]) for c in page["categories"]],
                         [(g["key"], g["findings"], g["findings_left_as_pi"]) for g in cats])

        self.assertEqual(
            sorted((r["reason"], r["block"], r["deidentify"]) for r in page["reasons"]),
            sorted((g["key"], g["outcomes"]["block"], g["outcomes"]["deidentify"]) for g in by_reason["groups"]
                   if g["key"] is not None and (g["outcomes"]["block"] or g["outcomes"]["deidentify"])))
        self.assertTrue(any(r["block"] > 0 for r in page["reasons"]))

        def removed(g):
            return g["findings_by_action"]["remove"] + g["findings_by_action"]["remove_record"]
        self.assertEqual(
            sorted((r["rule"], r["deidentify"], r["fields"], r["removed"]) for r in page["rules"]),
            sorted((g["key"], g["outcomes"]["deidentify"], g["findings_by_action"]["deidentify"], removed(g))
                   for g in by_rule["groups"]
                   if g["key"] is not None and (g["findings_by_action"]["deidentify"] or removed(g))))
        self.assertTrue(any(r["fields"] > 0 for r in page["rules"]))

        self.assertEqual(page["blocked_total"], blocked["blocked"])
        self.assertEqual([b["decision_id"] for b in page["blocked"]],
                         [d["decision_id"] for d in blocked["decisions"]])
        self.assertEqual([b["codes"] for b in page["blocked"]],
                         [[r["code"] for r in d["reasons"]] for d in blocked["decisions"]])
        # Each reason's detail, and its rule's clause, as `audit blocked` gives them.
        self.assertEqual([b["details"] for b in page["blocked"]],
                         [[r["detail"] for r in d["reasons"]] for d in blocked["decisions"]])
        self.assertEqual([b["clauses"] for b in page["blocked"]],
                         [[r["clause"] for r in d["reasons"] if r["clause"]] for d in blocked["decisions"]])
        self.assertTrue(any(b["clauses"] for b in page["blocked"]))

        self.assertEqual(page["volumes"]["status"], volumes["status"])
        self.assertEqual(page["volumes"]["exempt"], volumes["exempt"]["people"])
        self.assertEqual(page["volumes"]["by_device"], volumes["people_by_device"])
        self.assertEqual((page["volumes"]["non_sensitive"], page["volumes"]["sensitive"]),
                         (volumes["non_sensitive"], volumes["sensitive"]))
        self.assertEqual(page["volumes"]["recipients"],
                         [{"recipient": r["recipient"], "people": r["people"],
                           "non_sensitive": r["non_sensitive"], "sensitive": r["sensitive"]}
                          for r in volumes["recipients"]])

        html, text = page["html"], page["text"]
        leaked = [i for i, v in enumerate(sorted(self.pi_values(run))) if v in html or v in text]
        self.assertEqual(leaked, [], "PI values (by index) shown on the page")

    @unittest.skipUnless(HAVE_BROWSER, "needs /usr/bin/chromium and tests/browser/node_modules "
                                       "(scripts/deps.sh --test)")
    def test_with_an_admin_token_the_data_needs_it_and_the_page_asks_for_it(self):
        os.environ["BG_DASHBOARD_TOKEN"] = ADMIN_TOKEN
        self.addCleanup(os.environ.pop, "BG_DASHBOARD_TOKEN", None)
        run = test_packs.PackRun(self, "wadesk")
        for i in range(0, len(run.entries), 3):
            run.send(i)
        cfg = json.loads(json.dumps(run.px.config))
        cfg["admin"]["token"] = {"env": "BG_DASHBOARD_TOKEN"}
        run.px.reload(cfg)
        px = run.px
        for path in ("/api/report", "/api/blocked", "/api/volumes", "/api/dashboard"):
            with self.subTest(path=path):
                status, doc, hdr = self.api(px, path)
                self.assertEqual(status, 401)
                self.assertIn("Bearer", hdr.get("www-authenticate", ""))
                status, _, _ = self.api(px, path, token="wrong-token-0123456789")
                self.assertEqual(status, 401)
                status, _, _ = self.api(px, path, token=ADMIN_TOKEN)
                self.assertEqual(status, 200)
        status, info, _ = self.api(px, "/api/info")
        self.assertEqual((status, info["token_required"]), (200, True))
        today = china_date(time.time())
        page = self.browse("http://127.0.0.1:%d/dashboard/?from=%s&to=%s" % (px.admin_port, today, today),
                           token=ADMIN_TOKEN)
        self.assertTrue(page["asked_for_token"])
        self.assertEqual(page["state"], "ready", page.get("error"))
        self.assertEqual(page["totals"]["decisions"], len(range(0, len(run.entries), 3)))
        self.assertNotIn(ADMIN_TOKEN, page["html"])


if __name__ == "__main__":
    bgtest.main()
