"""Rollups of the audit log (audit/rollup.h): the dashboard and `audit report`
read per-hour aggregates instead of every raw record, and must give exactly
the figures of the raw log.

  * `audit report` over rollups (the default for directories and whole-hour
    windows) prints the same document as `audit report --raw`, for every
    dimension and combination the dashboard and the docs use, for open,
    date and hour windows; after `audit rebuild`, after records are
    appended to a file and a new file starts, and after retention removes
    the oldest file;
  * the daemon's /api/dashboard, /api/report and /api/blocked (which bring
    the rollups up to date and save them) equal `audit report --raw` and
    `audit blocked` on the raw log; a page load after more records were
    written equals again; an update that crashed after writing its day
    files but before its state (simulated by restoring the previous state
    file) counts nothing twice;
  * `audit report DIR1 DIR2` merges two instances' rollups: the same as the
    raw log of both, people seen by both counted once.

The records are synthetic (the writer's shape, several days, a population
of people who come back), written beside the daemon's own file as
bench/dashboard_bench.py does: reports do not check the chain.
"""
import http.client
import json
import os
import random
import shutil
import subprocess
import time
import unittest

import bgtest
from bgtest import t

CHINA = 8 * 3600
DIMS = ["", "country", "day", "hour", "category", "reason", "rule", "recipient", "basis",
        "outcome", "route", "recipient,category,basis", "outcome,reason", "route,rule,hour",
        "country,day"]
COUNTRIES = ["US", "HK", "SG", "DE", "CN"]
CATS = ["cn_mobile", "email", "person_name", "cn_resident_id", "bank_card"]


def china_date(epoch):
    return time.strftime("%Y-%m-%d", time.gmtime(epoch + CHINA))


def log_name(epoch, index):
    """The writer's file name for a file created at EPOCH: reports skip a file
    when the next one was created before their window (bg_report_prune)."""
    return "audit-%s-%06d.jsonl" % (time.strftime("%Y%m%d-%H%M%S", time.gmtime(epoch)), index)


def records(n, seed, start, span, people=60):
    """N decision records from START over SPAN seconds (epoch), each naming
    1-3 of PEOPLE people, as JSON lines."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = start + span * i / n
        outcome = rnd.choice(["allow", "allow", "deidentify", "block"])
        subj = ["%064x" % (0x5eed0000 + rnd.randrange(people)) for _ in range(rnd.randint(1, 3))]
        if i % 97 == 5:
            subj[0] = "not-hex-person-%d" % rnd.randrange(3)  # reports hash such text
        cats = rnd.sample(CATS, rnd.randint(0, 4))
        country = rnd.choice(COUNTRIES)
        findings = [{"path": "$.u[%d].%s" % (k, c), "category": c, "sensitive": c == "cn_resident_id",
                     "rule": "r-%s" % c, "basis": rnd.choice(["consent", "contract"]),
                     "action": "allow" if outcome == "allow" else rnd.choice(["deidentify", "remove"]),
                     "anonymized": rnd.random() < 0.2, "subject": subj[k % len(subj)]}
                    for k, c in enumerate(cats)]
        rec = {"seq": i + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) +
               ".%03dZ" % (i % 1000), "type": "decision", "decision_id": "%032x" % (seed * 10**6 + i),
               "route": "r%d" % rnd.randrange(3), "recipient": {"id": "partner-%d" % rnd.randrange(4)},
               "host": "api.partner.example", "path": "/v1/x",
               "destination": {"country": country, "region": "domestic" if country == "CN" else "cross-border"},
               "mode": "monitor" if i % 11 == 0 else "enforce", "outcome": outcome, "would": outcome,
               "findings": findings, "subjects": [{"pseudonym": s} for s in subj],
               "mechanism": rnd.choice(["standard_contract:SC-1", "certification:C-2"]),
               "policy": {"version": "t", "sha256": "0" * 64}}
        if outcome == "block":
            rec["reasons"] = [{"code": rnd.choice(["no_basis", "never_export"]), "rule": "r-bank_card",
                               "category": "bank_card", "path": "$.u[0].bank_card"}]
        if i == 7:
            del rec["time"]  # a record without a time: only open windows count it
        out.append(json.dumps(rec, separators=(",", ":")) + "\n")
    return out


class Rollups(bgtest.TestCase):
    def cli(self, *args, ok=True):
        r = subprocess.run([bgtest.BIN, "audit"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=t(120))
        if ok:
            self.assertEqual(r.returncode, 0, "bordergate audit %s: %s" % (" ".join(args), r.stderr))
        return json.loads(r.stdout) if ok and "--json" in args else r

    def api(self, px, path):
        c = http.client.HTTPConnection("127.0.0.1", px.admin_port, timeout=t(60))
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, body[:500])
            return json.loads(body)
        finally:
            c.close()

    def write(self, path, lines, mode="w"):
        with open(path, mode) as f:
            f.writelines(lines)

    def windows(self, start):
        d0, d1 = china_date(start + 86400), china_date(start + 3 * 86400)
        hour = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(start + 30 * 3600))
        return [[], ["--from", d0], ["--from", d0, "--to", d1], ["--from", hour, "--to", d1]]

    def assert_same_as_raw(self, dirs, start, dims=DIMS):
        """`audit report` (rollups) == `audit report --raw`, whole documents."""
        for w in self.windows(start):
            for by in dims:
                args = ["report", "--json"] + w + (["--by", by] if by else [])
                self.assertEqual(self.cli(*(args + dirs)), self.cli(*(args + ["--raw"] + dirs)),
                                 "audit report %s" % " ".join(args))

    def test_cli_rollups_equal_the_raw_log_through_appends_rebuilds_and_retention(self):
        d = os.path.join(self.tmpdir, "audit")
        os.mkdir(d)
        start = time.time() - 5 * 86400
        f1 = os.path.join(d, log_name(start, 1))
        f2 = os.path.join(d, log_name(start + 4 * 86400, 2))
        lines = records(1500, 1, start, 3 * 86400)
        lines.insert(100, "{not json\n")
        self.write(f1, lines)
        # In memory (nothing saved by the CLI: it reads, the daemon writes).
        self.assert_same_as_raw([d], start, DIMS[:6])
        self.assertFalse(os.path.exists(os.path.join(d, "audit.rollup", "state")))
        r = self.cli("rebuild", d)
        self.assertIn("rollups rebuilt from 1 files, 1501 lines", r.stdout)
        days = [n for n in os.listdir(os.path.join(d, "audit.rollup")) if n[:2] == "20"]
        self.assertGreaterEqual(len(days), 3)
        self.assert_same_as_raw([d], start)
        # The log goes on: more lines in the first file, a second file whose
        # last line is being written (not a record yet).
        self.write(f1, records(300, 2, start + 3 * 86400, 86400), "a")
        self.write(f2, records(400, 3, start + 4 * 86400, 86400) + ['{"type":"decision","ti'])
        self.assert_same_as_raw([d], start)
        self.cli("rebuild", d)
        self.assert_same_as_raw([d], start, DIMS[:8])
        # Retention removed the oldest file: the rollups no longer match the
        # raw log and are recomputed, never counting what is gone.
        os.unlink(f1)
        self.assert_same_as_raw([d], start, DIMS[:4])
        doc = self.cli("report", "--json", d)
        self.assertEqual(doc["totals"]["decisions"], 400)
        self.assertEqual(self.cli("rebuild", "--nope", ok=False).returncode, 2)

    def test_two_instances_merge_and_people_seen_by_both_count_once(self):
        dirs = []
        start = time.time() - 4 * 86400
        for k in range(2):
            d = os.path.join(self.tmpdir, "pod-%d" % k)
            os.mkdir(d)
            self.write(os.path.join(d, log_name(start, 1)),
                       records(700, 10 + k, start, 3 * 86400, people=40))
            dirs.append(d)
        self.cli("rebuild", dirs[0])  # one saved, one read in memory
        self.assert_same_as_raw(dirs, start, ["", "country", "category", "recipient,category,basis"])
        both = self.cli("report", "--json", *dirs)["totals"]
        one = [self.cli("report", "--json", d)["totals"] for d in dirs]
        self.assertEqual(both["decisions"], one[0]["decisions"] + one[1]["decisions"])
        self.assertLess(both["subjects"], one[0]["subjects"] + one[1]["subjects"])
        self.assertGreaterEqual(both["subjects"], max(one[0]["subjects"], one[1]["subjects"]))

    def test_dashboard_reads_saved_rollups_that_equal_the_raw_log(self):
        d = os.path.join(self.tmpdir, "audit")
        os.mkdir(d)
        sink = self.sink("sink")
        px = bgtest.Proxy(self, {"version": 1, "routes": [bgtest.route("sink", sink.origin, host="sink.example")],
                                 "audit": {"directory": d}, "log": {"level": "warn"}})
        start = time.time() - 4 * 86400
        f = os.path.join(d, "audit-20200101-000000-000000.jsonl")  # before the daemon's file
        self.write(f, records(1200, 20, start, 3 * 86400))
        d0, d1 = china_date(start + 86400), china_date(time.time() + 86400)
        q = "from=%s&to=%s" % (d0, d1)

        def check():
            doc = self.api(px, "/api/dashboard?limit=20&" + q)
            for by, rep in doc["reports"].items():
                self.assertEqual(rep, self.cli("report", "--json", "--raw", "--by", by, "--from", d0,
                                               "--to", d1, d), by)
            self.assertEqual(doc["blocked"], self.cli("blocked", "--json", "--limit", "20", "--from", d0,
                                                      "--to", d1, d))
            self.assertEqual(self.api(px, "/api/blocked?limit=3"),
                             self.cli("blocked", "--json", "--limit", "3", d))
            for by in ("recipient,category,basis", "hour"):
                self.assertEqual(self.api(px, "/api/report?by=%s&%s" % (by, q)),
                                 self.cli("report", "--json", "--raw", "--by", by, "--from", d0, "--to", d1, d))
            return doc

        first = check()
        self.assertGreater(first["blocked"]["blocked"], 20)
        state = os.path.join(d, "audit.rollup", "state")
        self.assertTrue(os.path.exists(state), "the daemon saved its rollups")
        saved = open(state).read()
        self.write(f, records(500, 21, start + 3 * 86400, 86400), "a")
        second = check()
        self.assertGreater(second["reports"]["totals" if "totals" in second["reports"] else "country"]
                           ["totals"]["decisions"], first["reports"]["country"]["totals"]["decisions"])
        # An update that died after renaming its day files, before its state:
        # the next one reads those records again and must not count them twice.
        with open(state, "w") as fp:
            fp.write(saved)
        check()
        # A window that does not start on an hour reads the raw log.
        part = time.strftime("%Y-%m-%dT%H:30Z", time.gmtime(start + 30 * 3600))
        self.assertEqual(self.api(px, "/api/report?by=country&from=" + part.replace("+", "%2B")),
                         self.cli("report", "--json", "--raw", "--by", "country", "--from", part, d))


if __name__ == "__main__":
    unittest.main()
