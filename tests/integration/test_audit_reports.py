"""What auditors asked for (issue 14), on a log the real daemon wrote:

  * `audit report --by recipient,category,basis`: one row per combination,
    the mechanism the decisions relied on and the clause of the rule applied
    (read from the policy given with --config, no key needed);
  * `audit blocked`: each reason with its rule's clause and its detail;
  * `audit subject`: a person found by any of their identifiers (an account
    id on one route, a phone number written another way on a route that
    identifies people by phone), no identifier printed;
  * `audit volumes`: transfers on a contract-necessity basis (CAC 2024
    Provisions Art. 5(1)) counted apart from the thresholds.

The sink is on 127.0.0.2, pinned to the US; keys come from the environment.
"""
import json
import os
import subprocess
import time

import bgtest
from bgtest import route
from test_audit import KEY_ENV, AuditTestBase, pseudonym

CLAUSE_LEGAL = "Privacy policy 4.1 (legal obligations)"
CLAUSE_SHIP = "Privacy policy 5.2 (delivery of your order)"
CLAUSE_BLOCKED = "Privacy policy 9.9 (no transfer without consent)"


class AuditorReports(AuditTestBase):

    def config(self, sink, audit_dir, workers=1, **audit):
        cfg = super().config(sink, audit_dir, workers=workers, **audit)
        cfg["routes"].append(route(
            "ship", sink.origin, host="ship.example", recipient="parcel", purpose="delivery",
            # this partner's API identifies people by their phone number
            subjects={"id": "$.user.phone"},
            bases={"contract": {"purpose": "cross_border_shopping", "necessary": ["cn_mobile"],
                                "reference": "$.order_id", "reference_required": True}}))
        cfg["recipients"]["parcel"] = {
            "legal_entity": "Parcel Logistics (HK) Limited", "relationship": "third_party",
            "country": "US", "purposes": ["delivery"], "mechanism": {"type": "none"},
            "exemption": "contract_necessity"}
        rules = cfg["rules"]
        for r in rules:
            if r["id"] == "phone-legal":
                r["clause"] = CLAUSE_LEGAL
        rules.append({"id": "phone-ship", "clause": CLAUSE_SHIP, "categories": ["cn_mobile"],
                      "recipients": ["parcel"], "bases": ["contract"], "fallback": "block"})
        rules.append({"id": "phone-blocked", "clause": CLAUSE_BLOCKED, "categories": ["cn_mobile"],
                      "recipients": ["partner-blocked"], "bases": ["consent"], "fallback": "block"})
        return cfg

    def test_reports_auditors_asked_for(self):
        px = self.start()
        p1, p2, p3 = "13912340001", "13912340002", "13912340003"
        r = self.send(px, "/v1/support", json.dumps({"user": {"id": "u-r1", "phone": p1}}))
        self.assertEqual(r.status_code, 200, r.text)
        for tel, order in ((p1, "o-1"), (p2, "o-2")):
            r = self.send(px, "/v1/shipments", json.dumps({"order_id": order, "user": {"phone": tel}}),
                          host="ship.example")
            self.assertEqual(r.status_code, 200, r.text)
        r = self.send(px, "/v1/support", json.dumps({"user": {"id": "u-r3", "phone": p3}}),
                      host="blocked.example")
        self.assertEqual(r.status_code, 451, r.text)
        px.stop()
        recs = {d["route"]: d for d in self.decisions()}
        self.assertEqual(recs["ship"]["findings"][0]["basis"], "contract")
        # Each identifying finding carries the keyed pseudonym of its value in
        # canonical form (the mobile's 11 digits): found by any identifier.
        self.assertEqual(recs["ship"]["findings"][0]["value_pseudonym"], pseudonym(p2))
        self.assertEqual(recs["blocked"]["findings"][0]["value_pseudonym"], pseudonym(p3))

        # -- report by three dimensions, clauses from the policy file --------
        pol = ("--config", px.config_path)
        doc = json.loads(self.cli("report", "--by", "recipient,category,basis", "--json", *pol,
                                  self.audit_dir).stdout)
        self.assertEqual(doc["by"], ["recipient", "category", "basis"])
        rows = {tuple(g["key"]): g for g in doc["groups"]}
        us = rows[("partner-us", "cn_mobile", "legal_obligation")]
        self.assertEqual((us["decisions"], us["findings"], us["findings_left_as_pi"]), (1, 1, 1))
        self.assertEqual(us["mechanisms"], [{"mechanism": recs["us"]["mechanism"], "decisions": 1}])
        # The decision record carries the clause in force: it is what counts.
        self.assertEqual(us["rules"], [{"rule": "phone-legal", "clause": CLAUSE_LEGAL,
                                        "clause_from": "record", "findings": 1}])
        ship = rows[("parcel", "cn_mobile", "contract")]
        self.assertEqual((ship["decisions"], ship["subjects"]), (2, 2))
        self.assertEqual(ship["mechanisms"], [{"mechanism": recs["ship"]["mechanism"], "decisions": 2}])
        self.assertEqual(ship["rules"][0]["clause"], CLAUSE_SHIP)
        blocked = rows[("partner-blocked", "cn_mobile", "none")]
        self.assertEqual(blocked["outcomes"]["block"], 1)
        self.assertEqual(sum(g["findings"] for g in doc["groups"]), doc["totals"]["findings"])
        text = self.cli("report", "--by", "recipient,category,basis", *pol, self.audit_dir).stdout
        self.assertIn("MECHANISM", text)
        self.assertIn("phone-ship: " + CLAUSE_SHIP, text)
        # Without the policy only what the records carry: the clause each
        # finding's rule had when it was decided.
        bare = json.loads(self.cli("report", "--by", "recipient,rule", "--json", self.audit_dir).stdout)
        bare_rules = [r for g in bare["groups"] for r in g["rules"]]
        self.assertTrue(all(r["clause_from"] == "record" for r in bare_rules if r["clause"]))
        self.assertIn(CLAUSE_SHIP, [r["clause"] for r in bare_rules])
        # A combination that would count twice is refused.
        p = self.cli("report", "--by", "reason,category", self.audit_dir, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("reason cannot be combined", p.stderr)
        # The policy file is read, not loaded: no key needed.
        env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
        p = subprocess.run([bgtest.BIN, "audit", "blocked", "--json", *pol, self.audit_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=bgtest.t(60))
        self.assertEqual(p.returncode, 0, p.stderr)

        # -- blocked: clause and detail ---------------------------------------
        bdoc = json.loads(p.stdout)
        self.assertEqual(bdoc["blocked"], 1)
        reason = bdoc["decisions"][0]["reasons"][0]
        self.assertEqual((reason["code"], reason["rule"]), ("no_basis", "phone-blocked"))
        self.assertEqual((reason["clause"], reason["clause_from"]), (CLAUSE_BLOCKED, "record"))
        self.assertEqual(reason["detail"], recs["blocked"]["reasons"][0]["detail"])
        self.assertTrue(reason["detail"])
        text = self.cli("blocked", *pol, self.audit_dir).stdout
        self.assertIn("clause  " + CLAUSE_BLOCKED, text)
        self.assertIn("detail  " + reason["detail"], text)
        self.assertNotIn(p3, text)

        # -- subject: by account id AND by phone as the person writes it ------
        doc = json.loads(self.cli("subject", "u-r1", "--id", "+86 139-1234-0001", "--key-env",
                                  "BG_SUBJECT_KEY", "--json", self.audit_dir).stdout)
        self.assertEqual(doc["subject"]["pseudonym"], pseudonym("u-r1"))
        self.assertIn(pseudonym(p1), doc["subject"]["pseudonyms"])
        self.assertEqual(sorted(d["route"] for d in doc["decisions"]), ["ship", "us"])
        self.assertEqual(doc["summary"]["transfers"], 2)
        self.assertEqual(doc["summary"]["bases"], ["contract", "legal_obligation"])
        out = self.cli("subject", "-", "--key-env", "BG_SUBJECT_KEY", self.audit_dir,
                       stdin="u-r1\n139 1234 0001\n").stdout
        self.assertIn("2 decision(s) name this subject", out)
        for raw in ("u-r1", p1, "1234"):
            self.assertNotIn(raw, out)
        # By the account id alone: only the record that named it.
        doc = json.loads(self.cli("subject", "u-r1", "--key-env", "BG_SUBJECT_KEY", "--json",
                                  self.audit_dir).stdout)
        self.assertEqual([d["route"] for d in doc["decisions"]], ["us"])

        # -- volumes: the contract-necessity transfers are exempt -------------
        vol = json.loads(self.cli("volumes", self.audit_dir, "--json").stdout)
        self.assertEqual((vol["non_sensitive"], vol["people"]), (1, 1))  # u-r1 on a legal obligation
        self.assertEqual(vol["exempt"], {"non_sensitive": 2, "sensitive": 0, "people": 2,
                                         "people_by_device": 0})
        by_rcpt = {r["recipient"]: r for r in vol["recipients"]}
        self.assertEqual((by_rcpt["parcel"]["people"], by_rcpt["parcel"]["exempt"]["people"]), (0, 2))
        self.assertEqual(by_rcpt["parcel"]["status"], "none")
        # The daemon's own counters file says the same: exempt apart.
        cnt = json.loads(self.cli("volumes", "--counters", os.path.join(self.audit_dir, "counters.jsonl"),
                                  "--json").stdout)
        self.assertEqual((cnt["people"], cnt["non_sensitive"]), (vol["people"], vol["non_sensitive"]))
        self.assertEqual(cnt["exempt"], vol["exempt"])
        text = self.cli("volumes", self.audit_dir).stdout
        self.assertIn("exempt (Art. 5(1)-(3))", text)

    def decisions(self):
        from test_audit import decisions
        return decisions(self.audit_dir)


class BlockedAcrossInstances(bgtest.TestCase):
    """`audit blocked DIR1 DIR2 --from DATE`: two instances' logs. Each
    directory's files are pruned by their names on their own: pruned as one
    list, the second instance's older file name made the first instance's
    only (last) file look finished before the window, and its blocked
    decisions of the window were lost."""

    def write_log(self, d, created, decision_id, when):
        os.mkdir(d)
        name = "audit-%s-000001.jsonl" % time.strftime("%Y%m%d-%H%M%S", time.gmtime(created))
        rec = {"seq": 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when)),
               "type": "decision", "decision_id": decision_id, "route": "pay",
               "recipient": {"id": "psp"}, "method": "POST", "host": "pay.example", "path": "/v1",
               "destination": {"country": "US", "region": "cross-border"}, "mode": "enforce",
               "outcome": "block", "would": "block", "findings": [], "subjects": [],
               "reasons": [{"code": "no_basis", "rule": "r1", "category": "cn_mobile",
                            "path": "$.phone"}]}
        with open(os.path.join(d, name), "w") as f:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def test_each_instance_keeps_its_last_file(self):
        now = time.time()
        a, b = os.path.join(self.tmpdir, "pod-a"), os.path.join(self.tmpdir, "pod-b")
        # pod-a's one file was created 10 days ago and is still written to;
        # pod-b's one file was created 5 days ago; both hold a block of today.
        self.write_log(a, now - 10 * 86400, "a" * 32, now - 3600)
        self.write_log(b, now - 5 * 86400, "b" * 32, now - 1800)
        since = time.strftime("%Y-%m-%d", time.gmtime(now - 86400 + 8 * 3600))
        for dirs in ([a, b], [b, a]):
            r = subprocess.run([bgtest.BIN, "audit", "blocked", "--json", "--from", since] + dirs,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            self.assertEqual(doc["blocked"], 2, r.stdout)
            self.assertEqual(sorted(d["decision_id"] for d in doc["decisions"]),
                             ["a" * 32, "b" * 32])
            text = subprocess.run([bgtest.BIN, "audit", "blocked", "--from", since] + dirs,
                                  stdout=subprocess.PIPE, text=True, timeout=60).stdout
            self.assertIn("2 blocked decision(s) in the window", text)


if __name__ == "__main__":
    bgtest.main()
