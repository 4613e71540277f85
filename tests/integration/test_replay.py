"""`bordergate replay`: recorded traffic decided offline, checked against
expectations, diffed between policies, and checked live against a running
bordergate and its upstreams.

The policy packs' recorded traffic (tests/traffic/packs/*.har) is replayed
offline against each pack (config/packs/*.json) with the consent registry in
the state its expect file describes (granted with the real `bordergate
consent` CLI, as test_packs.py does) and must give the very decisions the
live pack test expects: decision, route, destination and per finding the
basis, action and operator. Assertion messages name entries and paths only.
"""
import json
import os
import re
import subprocess
import urllib.parse

import bgtest
from bgtest import t
import test_packs

BIN = bgtest.BIN


def har_path(name):
    return os.path.join(test_packs.TRAFFIC_DIR, name + ".har")


def expect_path(name):
    return os.path.join(test_packs.TRAFFIC_DIR, name + ".expect.json")


class Replay(bgtest.TestCase):

    def replay(self, *args, env=None):
        e = dict(os.environ)
        e.update(test_packs.KEY_ENV)
        if env:
            e.update(env)
        return subprocess.run([BIN, "replay"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=e, timeout=t(120))

    def lines(self, r):
        return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]

    def write(self, name, doc):
        p = os.path.join(self.tmpdir, name)
        with open(p, "w") as f:
            if isinstance(doc, (bytes, str)):
                f.write(doc if isinstance(doc, str) else doc.decode())
            else:
                json.dump(doc, f, indent=1)
        return p

    # -- the packs, offline -------------------------------------------------

    def test_pack_traffic_offline_gives_the_live_pack_expectations(self):
        for name in test_packs.PACKS:
            with self.subTest(pack=name):
                run = test_packs.PackRun(self, name)
                r = self.replay("--config", run.px.config_path, "--har", har_path(name))
                self.assertEqual(r.returncode, 0, r.stderr)
                out = self.lines(r)
                _, _, expect = test_packs.load(name)
                self.assertEqual([o["entry"] for o in out], list(range(len(expect["entries"]))))
                for o, xp in zip(out, expect["entries"]):
                    where = "%s entry %d" % (name, xp["index"])
                    self.assertEqual(o["decision"], xp["outcome"], where)
                    self.assertEqual(o["route"], xp["route"], where)
                    self.assertEqual(o["recipient"], xp["recipient"], where)
                    self.assertEqual(o["country"], xp["destination"], where)
                    got = [(f["path"], f["category"], f["basis"], f["action"], f.get("operator"))
                           for f in o["findings"]]
                    want = [(f["path"], f["category"], f["basis"], f["action"],
                             f.get("operator") if f["action"] in ("deidentify", "remove") else None)
                            for f in xp.get("findings", [])]
                    self.assertEqual(sorted(got), sorted(want), where)
                    if xp["outcome"] == "block":
                        codes = {x["code"] for x in o["reasons"]}
                        for x in xp.get("reasons", []):
                            if "code" in x:
                                self.assertIn(x["code"], codes, where)
                # The summary goes to stderr, stdout stays one JSON object per line.
                summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
                self.assertEqual(summary["entries"], len(out))
                self.assertEqual(summary["allow"] + summary["deidentify"] + summary["block"], len(out))
                # And the pack expect file is accepted as is by --expect.
                r = self.replay("--config", run.px.config_path, "--har", har_path(name), "--expect",
                                expect_path(name))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("all %d entries match" % len(out), r.stdout)
                # No value of any request appears in the output.
                self.assert_no_values(name, r.stdout + r.stderr)

    def assert_no_values(self, name, text):
        _, har, expect = test_packs.load(name)
        for e, xp in zip(har["log"]["entries"], expect["entries"]):
            body = e["request"].get("postData", {}).get("text")
            if not body:
                continue
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            for f in xp.get("findings", []):
                v = test_packs.resolve(doc, test_packs.parse_path(f["path"])) if f["path"].startswith("$") else None
                if isinstance(v, str) and len(v) >= 6:
                    self.assertNotIn(v, text, "%s entry %d: the value of %s is in the output" %
                                     (name, xp["index"], f["path"]))

    def test_withdrawn_consent_and_clock_are_inputs(self):
        """The same traffic without the registry's consents is decided
        without consent; --now before a consent's grant time means it does
        not count yet."""
        run = test_packs.PackRun(self, "wadesk")
        base = self.lines(self.replay("--config", run.px.config_path, "--har", har_path("wadesk")))
        empty = os.path.join(self.tmpdir, "none.jsonl")
        r = self.replay("--config", run.px.config_path, "--har", har_path("wadesk"), "--consents", empty)
        self.assertIn("no consent holds", r.stderr)
        noc = self.lines(r)
        consent_entries = [o["entry"] for o in base if any(f["basis"] == "consent" for f in o["findings"])]
        self.assertTrue(consent_entries)
        for i in consent_entries:
            self.assertFalse(any(f["basis"] == "consent" for f in noc[i]["findings"]), "entry %d" % i)
        past = self.lines(self.replay("--config", run.px.config_path, "--har", har_path("wadesk"),
                                      "--now", "2001-01-01T00:00:00Z"))
        for i in consent_entries:
            self.assertFalse(any(f["basis"] == "consent" for f in past[i]["findings"]), "entry %d" % i)

    # -- expectations ----------------------------------------------------------

    def test_expect_mismatch_exits_1_and_names_the_entry(self):
        run = test_packs.PackRun(self, "wking")
        _, _, expect = test_packs.load("wking")
        i = next(x["index"] for x in expect["entries"] if x["outcome"] == "deidentify")
        j = next(x["index"] for x in expect["entries"] if x["outcome"] == "allow" and x.get("findings"))
        expect["entries"][i]["outcome"] = "block"
        expect["entries"][j]["findings"][0]["basis"] = "contract"
        p = self.write("wking.expect.json", expect)
        r = self.replay("--config", run.px.config_path, "--har", har_path("wking"), "--expect", p)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        u = urllib.parse.urlsplit(run.entries[i]["request"]["url"])
        self.assertIn("entry %d %s %s%s: decision deidentify, expected block" %
                      (i, run.entries[i]["request"]["method"], u.netloc, u.path), r.stdout)
        f = expect["entries"][j]["findings"][0]
        self.assertRegex(r.stdout, r"entry %d [A-Z]+ \S+: %s \(%s\): basis \S+, expected contract" %
                         (j, f["path"].replace("$", r"\$").replace(".", r"\.").replace("[", r"\[").replace("]", r"\]"),
                          f["category"]))
        self.assertIn("2 difference(s)", r.stdout)

    def test_write_expect_round_trips_and_is_stable(self):
        run = test_packs.PackRun(self, "weidijia")
        p1, p2 = os.path.join(self.tmpdir, "a.json"), os.path.join(self.tmpdir, "b.json")
        for p in (p1, p2):
            r = self.replay("--config", run.px.config_path, "--har", har_path("weidijia"), "--write-expect", p)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(p1, "rb") as f1, open(p2, "rb") as f2:
            self.assertEqual(f1.read(), f2.read(), "two runs write the same bytes")
        with open(p1) as f:
            doc = json.load(f)
        self.assertEqual(doc["format"], "bordergate-replay-expect/1")
        _, _, expect = test_packs.load("weidijia")
        self.assertEqual([x["decision"] for x in doc["entries"]], [x["outcome"] for x in expect["entries"]])
        r = self.replay("--config", run.px.config_path, "--har", har_path("weidijia"), "--expect", p1)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("all %d entries match" % len(expect["entries"]), r.stdout)
        # one line per member: a reviewer sees exactly what changed
        with open(p1) as f:
            text = f.read()
        self.assertGreater(text.count("\n"), 10 * len(expect["entries"]))

    # -- policy diffs ------------------------------------------------------------

    def test_diff_config_shows_exactly_the_entries_a_change_affects(self):
        """Pin one recipient's upstream host to mainland China: its requests are
        then domestic and allowed uninspected. Exactly the entries of that
        host's routes that were not already allowed without findings
        change."""
        run = test_packs.PackRun(self, "wking")
        cfg = json.loads(json.dumps(run.config))
        route = "ads-events"
        host = urllib.parse.urlsplit(next(r for r in cfg["routes"] if r["id"] == route)["upstream"]).hostname
        # a host override wins over the pack's CIDR pin (docs/geo.md)
        cfg["geo"]["overrides"].setdefault("hosts", {})[host] = "CN"
        other = self.write("other.json", cfg)
        base = self.lines(self.replay("--config", run.px.config_path, "--har", har_path("wking")))
        routes = {r["id"] for r in cfg["routes"] if urllib.parse.urlsplit(r["upstream"]).hostname == host}
        want = {o["entry"] for o in base if o["route"] in routes and (o["decision"] != "allow" or o["findings"])}
        self.assertTrue(want)
        r = self.replay("--config", run.px.config_path, "--har", har_path("wking"), "--diff-config", other)
        self.assertEqual(r.returncode, 1, r.stderr)
        got = self.lines(r)
        self.assertEqual({o["entry"] for o in got}, want)
        for o in got:
            self.assertEqual(o["after"]["decision"], "allow")
            self.assertEqual(o["after"]["country"], "CN")
            self.assertTrue(o["changes"])
        self.assertIn("%d of %d entries change" % (len(want), len(base)), r.stderr)
        # the same policy twice: nothing changes, exit 0
        r = self.replay("--config", run.px.config_path, "--har", har_path("wking"), "--diff-config",
                        run.px.config_path)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)

    # -- live ----------------------------------------------------------------------

    def test_live_agrees_with_offline(self):
        for name in ("wking", "wadesk"):
            with self.subTest(pack=name):
                run = test_packs.PackRun(self, name)
                logs = []
                for s in run.sinks.values():
                    open(s.record_path, "a").close()
                    logs += ["--sink-log", s.record_path]
                r = self.replay("--config", run.px.config_path, "--har", har_path(name), "--live",
                                "http://127.0.0.1:%d" % run.px.port, *logs)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("live: all %d entries agree" % len(run.entries), r.stdout)
                self.assertEqual(sum(len(s.records()) for s in run.sinks.values()),
                                 sum(1 for x in run.expect["entries"] if x["outcome"] != "block"))

    def test_live_sink_log_directory(self):
        """--sink-log DIR reads every sink recording in DIR (here all the
        pack's sinks record into the test's directory)."""
        run = test_packs.PackRun(self, "weidijia")
        d = os.path.join(self.tmpdir, "sinks")
        os.mkdir(d)
        for s in run.sinks.values():
            open(s.record_path, "a").close()
            os.symlink(s.record_path, os.path.join(d, os.path.basename(s.record_path)))
        r = self.replay("--config", run.px.config_path, "--har", har_path("weidijia"), "--live",
                        "http://127.0.0.1:%d" % run.px.port, "--sink-log", d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("live: all %d entries agree" % len(run.entries), r.stdout)

    def test_live_reports_a_daemon_that_decides_differently(self):
        """The daemon runs the pack in monitor mode, the offline policy
        enforces: every entry that would be blocked or de-identified is
        reported, and what arrived upstream is named as unchanged."""
        run = test_packs.PackRun(self, "weidijia", mode="monitor")
        enforcing = json.loads(json.dumps(run.config))
        enforcing["policy"]["mode"] = "enforce"
        p = self.write("enforce.json", enforcing)
        logs = []
        for s in run.sinks.values():
            open(s.record_path, "a").close()
            logs += ["--sink-log", s.record_path]
        r = self.replay("--config", p, "--har", har_path("weidijia"), "--live",
                        "http://127.0.0.1:%d" % run.px.port, *logs)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        blocked = [x["index"] for x in run.expect["entries"] if x["outcome"] == "block"]
        for i in blocked:
            self.assertRegex(r.stdout, r"entry %d [^\n]*live: block offline, but 1 request\(s\) arrived" % i)
        self.assertRegex(r.stdout, r"live: \d+ of %d entries disagree" % len(run.entries))

    def header_policy(self, sink, inspect_headers=None):
        """One route abroad (the sink pinned to US) whose rules hash an
        account id and mask a mobile, both accepted pseudonymized."""
        r = bgtest.route("us", sink.origin, host="api.partner.example", recipient="partner-us",
                         purpose="support", subjects={"id": "$.user.id"})
        if inspect_headers is not None:
            r["inspect"] = {"headers": inspect_headers}
        return bgtest.make_config(
            [r], geo={"overrides": {"cidrs": {"%s/32" % sink.host: "US"}}},
            keys={"pseudonym": {"env": "BG_PSEUDONYM_KEY"}, "subject": {"env": "BG_SUBJECT_KEY"},
                  "audit": {"env": "BG_AUDIT_KEY"}},
            policy={"version": "hdr-1", "mode": "enforce", "default_fallback": "block",
                    "default_operator": "redact"},
            recipients={"partner-us": {"legal_entity": "Partner US Inc.", "relationship": "third_party",
                                       "country": "US", "purposes": ["support"],
                                       "mechanism": {"type": "standard_contract", "reference": "SC-HDR-1",
                                                     "expires": "2030-12-31"}}},
            rules=[{"id": "ids-hashed", "categories": ["account_id"], "recipients": ["partner-us"],
                    "bases": ["consent"], "fallback": {"action": "deidentify", "operator": {"op": "hash"}},
                    "accept_pseudonymized": True},
                   {"id": "mobile-masked", "categories": ["cn_mobile"], "recipients": ["partner-us"],
                    "bases": ["consent"], "fallback": {"action": "deidentify", "operator": {"op": "mask"}},
                    "accept_pseudonymized": True},
                   {"id": "ip-generalized", "categories": ["ip_address"], "recipients": ["partner-us"],
                    "bases": ["consent"], "fallback": {"action": "deidentify", "operator": {"op": "generalize"}}}],
            audit={"directory": os.path.join(self.tmpdir, "audit-%s" % sink.name)})

    def test_live_compares_every_header_path_query_and_body(self):
        """A daemon that decides "deidentify" like the offline policy but
        forwards a header in clear that the offline decision hashed (its
        route reads no header by name) is reported: the header by name,
        never its value; the same daemon with the offline policy agrees,
        field for field (X-Forwarded-*, Forwarded, Host, Content-Length
        included)."""
        openid, mobile = "oK7hG2kq91xZ", "13912345678"
        har = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
            {"startedDateTime": "2026-01-01T00:00:00Z", "serverIPAddress": "127.0.0.2",
             "request": {"method": "POST", "url": "http://api.partner.example/v1/tickets?lang=zh",
                         "httpVersion": "HTTP/1.1",
                         "headers": [{"name": "Content-Type", "value": "application/json"},
                                     {"name": "User-Agent", "value": "test/1"},
                                     {"name": "X-Openid", "value": openid},
                                     {"name": "X-Forwarded-For", "value": "10.1.2.3"}],
                         "postData": {"mimeType": "application/json",
                                      "text": json.dumps({"user": {"id": "u-1", "phone": mobile}})}}}]}}
        hp = self.write("hdr.har", har)
        for name, daemon_inspect, want_rc in (("honest", None, 0), ("clear", ["x-none"], 1)):
            with self.subTest(daemon=name):
                sink = self.sink(name, host="127.0.0.2")
                open(sink.record_path, "a").close()
                offline = self.write("offline-%s.json" % name, self.header_policy(sink))
                px = self.proxy(self.header_policy(sink, daemon_inspect), env=test_packs.KEY_ENV,
                                name="proxy-%s" % name)
                r = self.replay("--config", offline, "--har", hp, "--live", "http://127.0.0.1:%d" % px.port,
                                "--sink-log", sink.record_path)
                out = r.stdout + r.stderr
                self.assertEqual(r.returncode, want_rc, out)
                for v in (openid, mobile):
                    self.assertNotIn(v, out)
                got = sink.records()
                self.assertEqual(len(got), 1)
                if name == "honest":
                    self.assertIn("live: all 1 entries agree", r.stdout)
                    self.assertNotEqual(got[0].header("X-Openid"), openid)  # hashed offline and live
                    self.assertNotIn(mobile.encode(), got[0].body)
                else:
                    self.assertEqual(got[0].header("X-Openid"), openid)
                    self.assertRegex(r.stdout, r"entry 0 [^\n]*live: header X-Openid arrived upstream as the "
                                               r"caller sent it, offline it was de-identified")
                    self.assertIn("live: 1 of 1 entries disagree", r.stdout)
                    self.assertEqual(len(re.findall(r"live: ", r.stdout)), 2, r.stdout)

    def test_live_names_a_changed_path_query_or_added_header(self):
        """What arrived is compared with what offline says left, part by
        part: a sink record altered in its path, query, an added header, a
        removed one and the body is reported once for each (the record is
        what the upstream received; the daemon is honest here, the record
        stands in for one that is not)."""
        sink = self.sink("alt", host="127.0.0.2")
        log = os.path.join(self.tmpdir, "altered.jsonl")
        open(log, "a").close()
        cfg = self.header_policy(sink)
        offline = self.write("offline-alt.json", cfg)
        # Replay talks to a stand-in for the daemon that answers like
        # bordergate and writes an altered sink record of what "arrived".
        import http.server
        import threading

        class Fake(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                hs = [["Host", "api.partner.example"], ["User-Agent", "test/1"], ["X-Extra", "1"],
                      ["X-Forwarded-For", "127.0.0.1"], ["X-Forwarded-Proto", "http"],
                      ["X-Forwarded-Host", "api.partner.example"],
                      ["Forwarded", 'for=127.0.0.1;proto=http;host="api.partner.example"'],
                      ["Content-Length", str(len(body) + 1)]]
                with open(log, "a") as f:
                    f.write(json.dumps({"method": "POST", "target": "/v2/ping?b=2", "headers": hs,
                                        "body": body + " "}) + "\n")
                # recorded before answering, as a sink does
                self.send_response(200)
                self.send_header("X-Bordergate-Decision", "allow")
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *a):
                pass

        srv = http.server.HTTPServer(("127.0.0.1", 0), Fake)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        har = {"log": {"version": "1.2", "entries": [
            {"startedDateTime": "2026-01-01T00:00:00Z", "serverIPAddress": "127.0.0.2",
             "request": {"method": "POST", "url": "http://api.partner.example/v1/ping?a=1",
                         "httpVersion": "HTTP/1.1",
                         "headers": [{"name": "User-Agent", "value": "test/1"},
                                     {"name": "Accept", "value": "*/*"}],
                         "postData": {"mimeType": "text/plain", "text": "ping"}}}]}}
        hp = self.write("alt.har", har)
        r = self.replay("--config", offline, "--har", hp, "--live", "http://127.0.0.1:%d" % srv.server_port,
                        "--sink-log", log)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for m in ("the path that arrived upstream differs", "the query that arrived upstream differs",
                  "header X-Extra arrived upstream, offline it does not leave",
                  "header Accept did not arrive upstream, offline it leaves",
                  "header Content-Length arrived upstream with another value",
                  "the body that arrived upstream differs"):
            self.assertIn(m, r.stdout)

    # -- inputs --------------------------------------------------------------------------

    def test_malformed_input_is_named_and_exits_2(self):
        run = test_packs.PackRun(self, "wking")
        with open(har_path("wking")) as f:
            text = f.read()
        # entry 2's request without a method: reported, the rest decided
        har = json.loads(text)
        del har["log"]["entries"][2]["request"]["method"]
        p = self.write("bad.har", json.dumps(har, indent=1))
        r = self.replay("--config", run.px.config_path, "--har", p)
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"bad\.har: entry 2 \(line \d+, byte \d+\): request\.method missing")
        self.assertEqual(len(self.lines(r)), len(har["log"]["entries"]) - 1)
        # truncated file
        p = self.write("cut.har", text[: len(text) // 2])
        r = self.replay("--config", run.px.config_path, "--har", p)
        self.assertEqual(r.returncode, 2)
        self.assertIn("truncated HAR", r.stderr)
        # not a HAR at all, and a missing file
        p = self.write("x.har", "[1, 2]")
        r = self.replay("--config", run.px.config_path, "--har", p)
        self.assertEqual(r.returncode, 2)
        self.assertIn("x.har: line 1, byte 0: not a HAR document", r.stderr)
        r = self.replay("--config", run.px.config_path, "--har", os.path.join(self.tmpdir, "missing.har"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.har: No such file or directory", r.stderr)
        r = self.replay("--har", p)
        self.assertEqual(r.returncode, 2)

    def test_max_entry_mb_bounds_an_entry_and_takes_only_a_whole_number(self):
        run = test_packs.PackRun(self, "wking")
        with open(har_path("wking")) as f:
            har = json.load(f)
        entry = har["log"]["entries"][0]
        entry["request"]["postData"] = {"mimeType": "text/plain", "text": "a" * (3 << 19)}
        har["log"]["entries"] = [entry]
        p = self.write("big.har", har)
        # a 1.5 MiB entry: over a 1 MiB limit (named, exit 2), within 2 MiB
        r = self.replay("--config", run.px.config_path, "--har", p, "--max-entry-mb", "1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("entry larger than %d bytes (the per-entry limit)" % (1 << 20), r.stderr)
        self.assertEqual(self.lines(r), [])
        r = self.replay("--config", run.px.config_path, "--har", p, "--max-entry-mb", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.lines(r)), 1)
        # the value is a whole number of MiB in 1..4096, nothing else
        for bad in ["0", "4097", "-1", "1x", "x", "", "99999999999999999999"]:
            r = self.replay("--config", run.px.config_path, "--har", p, "--max-entry-mb", bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("unknown or incomplete option '--max-entry-mb'", r.stderr, bad)
        r = self.replay("--config", run.px.config_path, "--har", p, "--max-entry-mb", "4096")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_refusals_before_deciding(self):
        run = test_packs.PackRun(self, "wking")
        e0 = run.entries[0]
        entries = []
        for method, url in (("POST", "https://unknown.example/x"), ("CONNECT", e0["request"]["url"]),
                            ("POST", e0["request"]["url"].replace("/v1/", "/v1/../"))):
            e = json.loads(json.dumps(e0))
            e["request"]["method"] = method
            e["request"]["url"] = url
            entries.append(e)
        p = self.write("refused.har", {"log": {"version": "1.2", "entries": entries}})
        out = self.lines(self.replay("--config", run.px.config_path, "--har", p))
        self.assertEqual([(o["decision"], o["status"]) for o in out], [("refused", 421), ("refused", 405),
                                                                      ("refused", 400)])

    def test_private_upstream_and_body_limit_refusals_agree_live(self):
        """A route whose upstream resolves to loopback without
        allow_private_addresses is refused 403, a body above
        limits.max_body_bytes 413: offline as the daemon answers."""
        run = test_packs.PackRun(self, "wking")
        cfg = json.loads(json.dumps(run.config))
        for r in cfg["routes"]:
            if r["id"] == "ads-events":
                r["allow_private_addresses"] = False
        cfg.setdefault("limits", {})["max_body_bytes"] = 400
        run.px.stop()
        px = self.proxy(cfg, env=test_packs.KEY_ENV, name="proxy-limits")
        out = self.lines(self.replay("--config", px.config_path, "--har", har_path("wking")))
        for o, e in zip(out, run.entries):
            body = len(e["request"].get("postData", {}).get("text", "").encode())
            where = "entry %d" % o["entry"]
            if body > 400:
                self.assertEqual((o["decision"], o["status"]), ("refused", 413), where)
            elif o["route"] == "ads-events":
                self.assertEqual((o["decision"], o["status"]), ("refused", 403), where)
            else:
                self.assertNotEqual(o["decision"], "refused", where)
        statuses = {o.get("status") for o in out}
        self.assertTrue({403, 413} <= statuses, statuses)
        logs = []
        for s in run.sinks.values():
            open(s.record_path, "a").close()
            logs += ["--sink-log", s.record_path]
        # plus a 4 MB body the daemon refuses before reading it
        har = json.loads(json.dumps(run.har))
        big = json.loads(json.dumps(run.entries[0]))
        big["request"]["postData"]["text"] = json.dumps({"blob": "x" * (4 << 20)})
        har["log"]["entries"].append(big)
        p = self.write("big.har", har)
        r = self.replay("--config", px.config_path, "--har", p, "--live", "http://127.0.0.1:%d" % px.port, *logs)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("live: all %d entries agree" % (len(out) + 1), r.stdout)

    def test_gor_file(self):
        run = test_packs.PackRun(self, "wking")
        sep = "\n\U0001F435\U0001F648\U0001F649\n".encode()
        payloads = []
        for i, e in enumerate(run.entries[:3]):
            req = e["request"]
            u = urllib.parse.urlsplit(req["url"])
            body = req["postData"]["text"].encode() if "postData" in req else b""
            head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (req["method"], u.path + ("?" + u.query if u.query else ""),
                                                       u.hostname)
            for h in req["headers"]:
                if h["name"].lower() not in ("host", "content-length"):
                    head += "%s: %s\r\n" % (h["name"], h["value"])
            head += "Content-Length: %d\r\n\r\n" % len(body)
            payloads.append(("1 %040x 1700000000%09d 0\n" % (i, i)).encode() + head.encode() + body)
            payloads.append(("2 %040x 1700000000%09d 42\n" % (i, i)).encode() +
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        p = os.path.join(self.tmpdir, "t.gor")
        with open(p, "wb") as f:
            f.write(sep.join(payloads) + sep)
        gor = self.lines(self.replay("--config", run.px.config_path, "--gor", p))
        har = self.lines(self.replay("--config", run.px.config_path, "--har", har_path("wking")))[:3]
        self.assertEqual(len(gor), 3)
        for g, h in zip(gor, har):
            self.assertEqual((g["decision"], g["route"], g["findings"]), (h["decision"], h["route"], h["findings"]))

    def test_table_format(self):
        run = test_packs.PackRun(self, "wking")
        r = self.replay("--config", run.px.config_path, "--har", har_path("wking"), "--format", "table")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ENTRY"))
        self.assertRegex(r.stdout, r"\n30 entries: \d+ allow, \d+ deidentify, \d+ block, 0 refused\n")


# -- HAR from any tool (issue 17) ------------------------------------------
#
# A hand-written HAR in the shape Chromium's devtools and Playwright write
# (HTTP/2 pseudo-headers, _initiator, response content, timings) and one in
# the shape mitmproxy's HAR export writes for a reverse-mode recording made
# in front of bordergate (the URL names the proxy, Host the destination),
# plus hand-edited variants of both.

ABROAD = "api.abroad.example"


def chromium_entry(method, url, headers=(), body=None, mime="application/json", decision=None,
                   body_size=None):
    host = url.split("/")[2]
    req_headers = [{"name": ":method", "value": method}, {"name": ":authority", "value": host},
                   {"name": ":scheme", "value": "https"}, {"name": ":path", "value": "/" + url.split("/", 3)[3]},
                   {"name": "accept", "value": "*/*"}, {"name": "user-agent", "value": "Mozilla/5.0 HeadlessChrome"}]
    req_headers += [{"name": k, "value": v} for k, v in headers]
    req = {"method": method, "url": url, "httpVersion": "http/2.0", "headers": req_headers,
           "queryString": [], "cookies": [], "headersSize": -1,
           "bodySize": len(body.encode()) if body is not None else (body_size or 0)}
    if body is not None:
        req["postData"] = {"mimeType": mime, "text": body}
    resp_headers = [{"name": "content-type", "value": "application/json"}]
    if decision is not None:
        resp_headers.append({"name": "x-bordergate-decision", "value": decision})
    return {"_initiator": {"type": "script", "stack": {"callFrames": [{"functionName": "send", "url": "x.js"}]}},
            "_priority": "High", "_resourceType": "fetch", "cache": {}, "connection": "443",
            "request": req,
            "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0", "headers": resp_headers,
                         "cookies": [], "content": {"size": 11, "mimeType": "application/json",
                                                    "text": "{\"ok\":true}"},
                         "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 100},
            "serverIPAddress": "203.0.113.10", "startedDateTime": "2026-11-30T10:00:00.000Z", "time": 12.5,
            "timings": {"blocked": 1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": 10, "receive": 1}}


def mitmproxy_entry(method, proxy, host, path, body=None, decision=None):
    headers = [{"name": "Host", "value": host}, {"name": "User-Agent", "value": "okhttp/4.12.0"}]
    if body is not None:
        headers.append({"name": "Content-Type", "value": "application/json"})
        headers.append({"name": "Content-Length", "value": str(len(body.encode()))})
    req = {"method": method, "url": "http://%s%s" % (proxy, path), "httpVersion": "HTTP/1.1",
           "cookies": [], "headers": headers, "queryString": [], "headersSize": 120,
           "bodySize": len(body.encode()) if body is not None else 0}
    if body is not None:
        req["postData"] = {"mimeType": "application/json", "text": body, "params": []}
    resp_headers = [{"name": "Content-Type", "value": "application/json"}]
    if decision is not None:
        resp_headers.append({"name": "X-Bordergate-Decision", "value": decision})
    return {"startedDateTime": "2026-11-30T10:00:00.000000+00:00", "time": 3.1, "request": req,
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [],
                         "headers": resp_headers,
                         "content": {"mimeType": "application/json", "text": "{\"ok\":true}", "size": 11},
                         "redirectURL": "", "headersSize": 90, "bodySize": 11},
            "cache": {}, "timings": {"send": 0.1, "receive": 0.2, "wait": 2.8, "connect": -1, "ssl": -1},
            "serverIPAddress": "127.0.0.1"}


class HarFromAnyTool(bgtest.TestCase):
    PROXY = "127.0.0.1:18080"

    def setUp(self):
        super().setUp()
        import test_bypass

        class Up:  # the destination is never contacted offline
            host, origin = "203.0.113.10", "http://%s:443" % ABROAD
        cfg = test_bypass.policy_config(Up())
        cfg["listen"] = self.PROXY
        cfg["resolve"] = {ABROAD: "203.0.113.10"}
        for r in cfg["routes"]:
            r.pop("allow_private_addresses", None)
        self.config = os.path.join(self.tmpdir, "policy.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)

    def har(self, name, entries):
        p = os.path.join(self.tmpdir, name)
        with open(p, "w") as f:
            json.dump({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                               "pages": [], "entries": entries}}, f, indent=2)
        return p

    def replay(self, *args):
        r = subprocess.run([BIN, "replay", "--config", self.config] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=t(60))
        return r, [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]

    def test_chromium_har_with_nul_in_recorded_text(self):
        # "\u0000" in postData.text is a NUL byte the request carried: the
        # entry is read (not "invalid JSON") and decided as the daemon
        # decides such a body: a JSON body with a raw control character is
        # undecodable (blocked), a form keeps its fields and is inspected.
        p = self.har("chromium.har", [
            chromium_entry("POST", "https://%s/v1/profile" % ABROAD, [("content-type", "application/json")],
                           '{"note":"a\u0000b","phone":"13812345678"}'),
            chromium_entry("POST", "https://%s/v1/form" % ABROAD,
                           [("content-type", "application/x-www-form-urlencoded")],
                           "note=a\u0000b&phone=13812345678", mime="application/x-www-form-urlencoded"),
            chromium_entry("GET", "https://%s/v1/ping" % ABROAD),
        ])
        with open(p) as f:
            self.assertIn("\\u0000", f.read())  # as the recorder wrote it
        r, out = self.replay("--har", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([(o["route"], o["decision"]) for o in out],
                         [("abroad", "block"), ("abroad", "deidentify"), ("abroad", "allow")])
        self.assertEqual([x["code"] for x in out[0]["reasons"]], ["undecodable"])
        self.assertEqual([f["category"] for f in out[1]["findings"]], ["cn_mobile"])

    def test_body_left_out_by_the_recording_is_flagged_not_decided(self):
        # Chromium's sendBeacon / Blob uploads: Content-Length 42, no postData.
        beacon = chromium_entry("POST", "https://%s/v1/beacon" % ABROAD,
                                [("content-type", "text/plain;charset=UTF-8"), ("content-length", "42")])
        self.assertNotIn("postData", beacon["request"])
        p = self.har("beacon.har", [beacon, chromium_entry("GET", "https://%s/v1/ping" % ABROAD)])
        r, out = self.replay("--har", p)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr, r"beacon\.har: entry 0 \(line \d+, byte \d+\): request body not recorded "
                                   r"\(Content-Length 42")
        self.assertEqual([o["entry"] for o in out], [1], "only the entry with its body is decided")
        # Hand-edited: the same with an empty postData text; and Content-Length 0 is no body.
        beacon["request"]["postData"] = {"mimeType": "text/plain", "text": ""}
        r, out = self.replay("--har", self.har("b2.har", [beacon]))
        self.assertEqual((r.returncode, out), (2, []))
        beacon["request"]["headers"] = [h for h in beacon["request"]["headers"] if h["name"] != "content-length"]
        beacon["request"]["headers"].append({"name": "content-length", "value": "0"})
        r, out = self.replay("--har", self.har("b3.har", [beacon]))
        self.assertEqual((r.returncode, [o["decision"] for o in out]), (0, ["allow"]), r.stderr)

    def test_mitmproxy_reverse_mode_recording_goes_where_host_says(self):
        body = '{"phone":"13812345678"}'
        entries = [mitmproxy_entry("POST", self.PROXY, ABROAD, "/v1/profile", body),
                   mitmproxy_entry("GET", self.PROXY, ABROAD, "/v1/ping")]
        p = self.har("mitm.har", entries)
        r, out = self.replay("--har", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([(o["route"], o["decision"]) for o in out], [("abroad", "deidentify"), ("abroad", "allow")])
        # Recorded at another name for the proxy: --proxy says so; without it
        # the URL's authority is the destination, and no route takes it.
        other = [mitmproxy_entry("GET", "bordergate.internal:8080", ABROAD, "/v1/ping")]
        p = self.har("mitm2.har", other)
        r, out = self.replay("--har", p)
        self.assertEqual([(o["decision"], o.get("status")) for o in out], [("refused", 421)])
        r, out = self.replay("--har", p, "--proxy", "bordergate.internal:8080")
        self.assertEqual([(o["route"], o["decision"]) for o in out], [("abroad", "allow")], r.stderr)
        # A Chromium recording is untouched: URL and :authority agree.
        r, out = self.replay("--har", self.har("c.har", [chromium_entry("GET", "https://%s/v1/ping" % ABROAD)]),
                             "--proxy", "%s:443" % ABROAD)
        self.assertEqual([o["route"] for o in out], ["abroad"])

    def test_compare_with_the_recorded_decision_header(self):
        body = '{"phone":"13812345678"}'
        entries = [mitmproxy_entry("POST", self.PROXY, ABROAD, "/v1/profile", body, decision="deidentify"),
                   mitmproxy_entry("GET", self.PROXY, ABROAD, "/v1/ping", decision="allow"),
                   chromium_entry("GET", "https://%s/v1/ping" % ABROAD, decision="allow; monitor; would=block"),
                   chromium_entry("GET", "https://%s/v1/ping" % ABROAD)]  # not recorded: not compared
        p = self.har("recorded.har", entries)
        r, _ = self.replay("--har", p, "--compare-recorded")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('"recorded_differences":0', r.stderr)
        # Hand-edited: the recording says the daemon allowed what this policy de-identifies.
        entries[0]["response"]["headers"][-1]["value"] = "allow"
        p = self.har("edited.har", entries)
        r, _ = self.replay("--har", p, "--compare-recorded")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("entry 0: recorded X-Bordergate-Decision allow, decided offline deidentify", r.stdout)
        self.assertIn('"recorded_differences":1', r.stderr)
        r, _ = self.replay("--har", p)  # only when asked
        self.assertEqual(r.returncode, 0, r.stderr)



if __name__ == "__main__":
    bgtest.main()
