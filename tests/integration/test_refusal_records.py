#!/usr/bin/python3
"""
Refusals before a decision are recorded (issue 14, "every decision
recorded"): a request to an unknown destination (421), a malformed request
or target (400), CONNECT (405) each leave a "refusal" record in the audit
log with the caller, method, host asked for and the path with query values
replaced by "*" — never the raw query values or the body. `audit verify`
still passes, and `audit report` does not count refusals as decisions.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import t  # noqa: E402
from test_audit import AuditTestBase, audit_records, completions, phone  # noqa: E402

SECRET_MOBILE = phone(4242)
SECRET_TOKEN = "tok-5f2a9c77e1"


class RefusalRecords(AuditTestBase):

    def refusals(self, n):
        return bgtest.wait_for(
            lambda: [r for r in audit_records(self.audit_dir) if r.get("type") == "refusal"]
            if sum(1 for r in audit_records(self.audit_dir) if r.get("type") == "refusal") >= n
            else None, t(10), "%d refusal record(s)" % n)

    def test_a_refusal_after_the_decision_that_closes_still_gets_its_completion(self):
        # The partner is gone: the decision is recorded, then the upstream
        # connection fails (502). With "Connection: close" the exchange ends
        # by closing, not by complete(): its completion must be written all
        # the same ("every decision recorded", and how it ended).
        px = self.start()
        self.up.proc.stop()
        ids = []
        for conn in ("close", "keep-alive"):
            c = self.raw(px)
            c.send("POST /v1/x HTTP/1.1\r\nHost: us.example\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\nConnection: %s\r\n\r\n{}" % conn)
            r = c.read_response()
            self.assertEqual(r.status, 502)
            ids.append(r.header("x-bordergate-id"))
            c.close()
        done = bgtest.wait_for(
            lambda: (lambda c: c if len(c) == 2 else None)(
                [x for x in completions(self.audit_dir) if x.get("decision_id") in ids]),
            t(10), "both completions")
        self.assertEqual(sorted(x["result"] for x in done), ["refused", "refused"])
        decided = [x for x in audit_records(self.audit_dir) if x.get("type") == "decision"
                   and x.get("decision_id") in ids]
        self.assertEqual(len(decided), 2)

    def test_pre_decision_refusals_are_recorded_without_values(self):
        px = self.start()
        # 421: a destination no route names, with PI in its query and body.
        r = self.post(px, "/v1/users/%s?mobile=%s&token=%s&flag=" % (SECRET_MOBILE, SECRET_MOBILE, SECRET_TOKEN),
                      '{"phone": "%s"}' % SECRET_MOBILE, host="exfil.example",
                      headers={"Content-Type": "application/json"})
        self.assertRefusal(r, 421, "no route")
        id_421 = r.headers["X-Bordergate-Id"]
        # 400: a target bordergate refuses to parse (a fragment).
        c = self.raw(px)
        c.send("GET /v1/x?mobile=%s#frag HTTP/1.1\r\nHost: us.example\r\n\r\n" % SECRET_MOBILE)
        r400 = c.read_response()
        self.assertRefusal(r400, 400)
        # 405: CONNECT.
        c = self.raw(px)
        c.send("CONNECT exfil.example:443 HTTP/1.1\r\nHost: exfil.example:443\r\n\r\n")
        self.assertRefusal(c.read_response(), 405)
        # And one ordinary decision, so the log holds both kinds.
        self.assertEqual(self.send(px, "/ok", '{"note": "nothing personal"}').status_code, 200)

        recs = self.refusals(3)
        by_status = {r["status"]: r for r in recs}
        self.assertEqual(sorted(by_status), [400, 405, 421])
        r = by_status[421]
        self.assertEqual(r["decision_id"], id_421)
        self.assertEqual(r["code"], "no_route")
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["host"], "exfil.example")
        # Query values dropped, a path segment holding PI replaced (as in
        # decision records).
        self.assertEqual(r["path"], "/v1/users/*?mobile=&token=&flag=")
        self.assertIn("address", r["caller"])
        self.assertEqual(r["policy"]["version"], "audit-test-1")
        self.assertEqual(len(r["policy"]["sha256"]), 64)
        self.assertNotIn("route", r)
        self.assertEqual(by_status[400]["code"], "bad_request")
        self.assertEqual(by_status[405]["code"], "connect")
        self.assertEqual(by_status[405]["method"], "CONNECT")
        # The values never reach the log.
        self.assertNoValues(self.audit_dir, [SECRET_MOBILE, SECRET_TOKEN])
        # The chain holds every record, refusals included.
        v = self.verify(self.audit_dir)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Reports count decisions, not refusals.
        rep = json.loads(self.cli("report", "--json", self.audit_dir).stdout)
        self.assertEqual(rep["totals"]["decisions"], 1)


if __name__ == "__main__":
    unittest.main()
