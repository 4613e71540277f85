#!/usr/bin/python3
"""
A consent covers its own subject only (issue 14), end to end through the
real proxy and a sink: the route's subject consented, so their mobile and ID
number leave; another person nested in the same request (an emergency
contact) did not, so theirs are removed before anything leaves, and the
decision record says the contact's findings belong to nobody the route can
name — while their values appear neither at the sink nor in the audit log.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import route, t  # noqa: E402
from test_audit import KEY_ENV, SUBJECT_KEY, AuditTestBase, decisions, phone, pseudonym, resident_id  # noqa: E402

UID = "u-scope-2001"


class ConsentScope(AuditTestBase):

    def test_nested_person_does_not_ride_on_the_subjects_consent(self):
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        registry = os.path.join(self.tmpdir, "consent.jsonl")
        keyfile = os.path.join(self.tmpdir, "subject.key")
        with open(keyfile, "w") as f:
            f.write(SUBJECT_KEY + "\n")
        os.chmod(keyfile, 0o600)
        r = subprocess.run([bgtest.BIN, "consent", "grant", "--subject", "-", "--recipient", "partner-us",
                            "--purpose", "support", "--region", "*", "--sensitive", "--registry", registry,
                            "--key", keyfile], input=UID + "\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = self.config(self.up, self.audit_dir)
        cfg["consent"] = {"registry": registry}
        cfg["routes"] = [route("us", self.up.origin, host="us.example", recipient="partner-us",
                               purpose="support", subjects={"id": "$.user.id"})]
        cfg["rules"] = [{"id": "contact-consent", "categories": ["cn_mobile", "cn_resident_id"],
                         "recipients": ["partner-us"], "bases": ["consent"], "fallback": "remove"}]
        px = self.proxy(cfg, env=KEY_ENV)

        own_tel, own_id = phone(2001), resident_id(21)
        other_tel, other_id = phone(2002), resident_id(22)
        doc = {"user": {"id": UID, "phone": own_tel, "id_no": own_id,
                        "emergency_contact": {"phone": other_tel, "id_no": other_id}}}
        resp = self.send(px, "/v1/tickets", json.dumps(doc))
        self.assertEqual(resp.status_code, 200, resp.text)

        got = json.loads(self.up.wait_records(1)[0].body)
        self.assertEqual(got["user"]["phone"], own_tel)
        self.assertEqual(got["user"]["id_no"], own_id)
        self.assertEqual(got["user"]["emergency_contact"], {})

        rec = bgtest.wait_for(lambda: decisions(self.audit_dir), t(10), "a decision record")[0]
        self.assertEqual(rec["outcome"], "deidentify")
        by_path = {f["path"]: f for f in rec["findings"]}
        for p in ("$.user.phone", "$.user.id_no"):
            self.assertEqual(by_path[p]["basis"], "consent")
            self.assertEqual(by_path[p]["subject"], pseudonym(UID))
        for p in ("$.user.emergency_contact.phone", "$.user.emergency_contact.id_no"):
            self.assertEqual(by_path[p]["basis"], "none")
            self.assertEqual(by_path[p]["action"], "remove")
            self.assertNotIn("subject", by_path[p])
            self.assertIn("belongs to another person ($.user.emergency_contact)", by_path[p]["why"])
        self.assertNoValues(self.audit_dir, [own_tel, own_id, other_tel, other_id, UID])


if __name__ == "__main__":
    unittest.main()
