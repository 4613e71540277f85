#!/usr/bin/python3
"""
Missed and misclassified PI, and caller-asserted facts (issue 14), end to end
through the real proxy and a sink on loopback. Each request is one a
compliance officer classified by hand before any run:

- a UnionPay debit card (62..., fails Luhn) under the key `card` is a bank
  card and is removed before it leaves (it used to leave in clear);
- a consignee's name in a form field `recipient` is a person's name;
- a batch of customer records under `contacts` is not a user's address book:
  it is decided field by field, never blocked as "contacts"; a route that
  says it carries address books blocks the same shape as contacts, and a
  route-level field rule `"category": "none"` says the key is not PI;
- the "subject abroad" basis: a region the caller wrote is recorded as the
  caller's word (`basis_asserted_by`), and a policy that takes regions only
  from the calling service's gateway header refuses it;
- guardian_consent_age 18 (the Weidijia seed: minors who reached 14 also need
  a guardian): a 16-year-old's own consent does not let their data leave.

No PI value appears in the audit log.
"""
import json
import os
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import route, t  # noqa: E402
from test_audit import KEY_ENV, SUBJECT_KEY, AuditTestBase, decisions, phone  # noqa: E402

UNIONPAY_NO_LUHN = "6222021234567890"
RECIPIENT = {"partner-us": {"legal_entity": "Partner US Inc.", "relationship": "third_party",
                            "country": "US", "purposes": ["support"],
                            "mechanism": {"type": "standard_contract", "reference": "SC-TEST-0001",
                                          "expires": "2030-12-31"}}}


class Misclass(AuditTestBase):

    def make(self, routes, rules, policy=None, registry=None):
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        pol = {"version": "misclass-1", "mode": "enforce", "default_fallback": "block",
               "default_operator": "redact"}
        pol.update(policy or {})
        cfg = bgtest.make_config(
            [route(r.pop("id"), self.up.origin, host=r.pop("host"), recipient="partner-us",
                   purpose="support", **r) for r in routes],
            workers=1, geo={"overrides": {"cidrs": {"%s/32" % self.up.host: "US"}}},
            keys={"pseudonym": {"env": "BG_PSEUDONYM_KEY"}, "subject": {"env": "BG_SUBJECT_KEY"},
                  "audit": {"env": "BG_AUDIT_KEY"}},
            policy=pol, recipients=RECIPIENT, rules=rules, audit={"directory": self.audit_dir})
        if registry is not None:
            cfg["consent"] = {"registry": registry}
        return self.proxy(cfg, env=KEY_ENV)

    def record(self, n):
        """The Nth decision record (1-based), once written."""
        return bgtest.wait_for(lambda: len(decisions(self.audit_dir)) >= n and decisions(self.audit_dir),
                               t(10), "%d decision record(s)" % n)[n - 1]

    def test_card_recipient_and_contacts(self):
        legal = {"legal_obligation": {"reference": "Test Regulation Art. 7"}}
        px = self.make(
            routes=[
                {"id": "pay", "host": "pay.example"},
                {"id": "crm", "host": "crm.example", "bases": legal},
                {"id": "book", "host": "book.example", "bases": legal,
                 "inspect": {"address_books": True}},
                {"id": "crm2", "host": "crm2.example", "bases": legal,
                 "inspect": {"address_books": True},
                 "field_rules": [{"key": "contacts", "category": "none"}]},
            ],
            rules=[
                {"id": "cards-removed", "categories": ["bank_card"],
                 "recipients": ["partner-us"], "bases": ["consent"], "fallback": "remove"},
                {"id": "address-books", "clause": "never an address book", "categories": ["contacts"],
                 "bases": ["consent"], "fallback": "block"},
                # Allowed where the route declares the obligation, removed elsewhere.
                {"id": "crm-records", "categories": ["cn_mobile", "person_name"],
                 "bases": ["legal_obligation"], "fallback": "remove"},
            ])

        # 1. The card: removed, not forwarded in clear.
        resp = self.post(px, "/v1/pay", json.dumps({"card": UNIONPAY_NO_LUHN, "amount": 12}),
                         host="pay.example", headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        got = json.loads(self.up.wait_records(1)[0].body)
        self.assertEqual(got, {"amount": 12})
        rec = self.record(1)
        f = {x["path"]: x for x in rec["findings"]}
        self.assertEqual((f["$.card"]["category"], f["$.card"]["action"]), ("bank_card", "remove"))

        # 2. The consignee's name in a form.
        form = "recipient=%s&order_id=A1" % urllib.parse.quote("张三")
        resp = self.post(px, "/v1/ship", form, host="pay.example",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(self.up.wait_records(2)[1].body, b"order_id=A1")
        f = {x["path"]: x for x in self.record(2)["findings"]}
        self.assertEqual(f["form.recipient"]["category"], "person_name")

        # 3. Customer records under "contacts": decided field by field.
        tels = [phone(3101), phone(3102)]
        crm = json.dumps({"contacts": [{"name": "张三", "phone": tels[0]},
                                       {"name": "李四", "phone": tels[1]}]})
        resp = self.post(px, "/v1/customers", crm, host="crm.example",
                         headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(json.loads(self.up.wait_records(3)[2].body), json.loads(crm))
        rec = self.record(3)
        self.assertEqual(rec["outcome"], "allow")
        self.assertNotIn("contacts", [x["category"] for x in rec["findings"]])
        self.assertEqual({x["basis"] for x in rec["findings"]}, {"legal_obligation"})

        # ... on a route that carries address books: the same shape is one.
        resp = self.post(px, "/v1/customers", crm, host="book.example",
                         headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 451, resp.text)
        reasons = resp.json()["reasons"]
        self.assertEqual([(r["category"], r["path"]) for r in reasons], [("contacts", "$.contacts")])
        self.assertEqual(len(self.up.records()), 3)

        # ... and a route-level field rule says the key is not PI there.
        resp = self.post(px, "/v1/customers", crm, host="crm2.example",
                         headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        rec = self.record(5)
        self.assertEqual(rec["outcome"], "allow")
        self.assertNotIn("contacts", [x["category"] for x in rec["findings"]])
        self.assertNoValues(self.audit_dir, [UNIONPAY_NO_LUHN, "张三", "李四"] + tels)

    def test_region_from_the_gateway_and_guardian_age(self):
        uid, teen = "u-region-1", "u-teen-16"
        registry = os.path.join(self.tmpdir, "consent.jsonl")
        keyfile = os.path.join(self.tmpdir, "subject.key")
        with open(keyfile, "w") as f:
            f.write(SUBJECT_KEY + "\n")
        os.chmod(keyfile, 0o600)
        # The 16-year-old consented themselves (not a guardian).
        r = subprocess.run([bgtest.BIN, "consent", "grant", "--subject", "-", "--recipient", "partner-us",
                            "--purpose", "support", "--region", "*", "--registry", registry,
                            "--key", keyfile], input=teen + "\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        subjects = {"id": "$.user.id", "region": "$.user.cc", "birth_date": "$.user.born",
                    "region_header": "X-Subject-Region"}
        px = self.make(
            routes=[{"id": "abroad", "host": "abroad.example", "subjects": subjects}],
            rules=[{"id": "abroad", "categories": ["cn_mobile"], "recipients": ["partner-us"],
                    "bases": ["consent", "subject_abroad"], "fallback": "block"}],
            policy={"subject_abroad": "allow", "subject_region_from": "gateway_header",
                    "guardian_consent_age": 18},
            registry=registry)
        tel = phone(3201)
        doc = json.dumps({"user": {"id": uid, "cc": "US", "born": "1990-01-01", "phone": tel}})
        js = {"Content-Type": "application/json"}

        # The caller says US; the policy takes regions from the gateway only.
        resp = self.post(px, "/v1/p", doc, host="abroad.example", headers=js)
        self.assertEqual(resp.status_code, 451, resp.text)
        f = {x["path"]: x for x in self.record(1)["findings"]}["$.user.phone"]
        self.assertEqual(f["basis"], "none")
        self.assertIn("subject region asserted by the caller ($.user.cc)", f["why"])
        self.assertNotIn("basis_asserted_by", f)

        # The gateway says US: it leaves, and the record says whose word it was.
        resp = self.post(px, "/v1/p", doc, host="abroad.example",
                         headers=dict(js, **{"X-Subject-Region": "US"}))
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(json.loads(self.up.wait_records(1)[0].body)["user"]["phone"], tel)
        f = {x["path"]: x for x in self.record(2)["findings"]}["$.user.phone"]
        self.assertEqual((f["basis"], f["basis_asserted_by"]), ("subject_abroad", "gateway"))

        # A 16-year-old abroad with their own consent: a guardian's is needed.
        kid = json.dumps({"user": {"id": teen, "cc": "US", "born": "2010-03-15", "phone": tel}})
        resp = self.post(px, "/v1/p", kid, host="abroad.example",
                         headers=dict(js, **{"X-Subject-Region": "US"}))
        self.assertEqual(resp.status_code, 451, resp.text)
        rec = self.record(3)
        f = {x["path"]: x for x in rec["findings"]}["$.user.phone"]
        self.assertEqual(f["basis"], "none")
        self.assertIn("not-guardian", f["why"])
        self.assertEqual(f["sensitive"], False)
        self.assertEqual([s.get("guardian_consent_required") for s in rec["subjects"]], [True])
        self.assertEqual([s.get("minor") for s in rec["subjects"]], [None])
        self.assertEqual(len(self.up.records()), 1)
        self.assertNoValues(self.audit_dir, [tel, uid, teen, "2010-03-15"])

    def test_region_written_by_the_caller_is_recorded_as_such(self):
        px = self.make(
            routes=[{"id": "abroad", "host": "abroad.example",
                     "subjects": {"id": "$.user.id", "region": "$.user.cc"}}],
            rules=[{"id": "abroad", "categories": ["cn_mobile"], "recipients": ["partner-us"],
                    "bases": ["subject_abroad"], "fallback": "block"}],
            policy={"subject_abroad": "allow"})
        doc = json.dumps({"user": {"id": "u-3", "cc": "SG", "phone": phone(3301)}})
        resp = self.post(px, "/v1/p", doc, host="abroad.example",
                         headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        f = {x["path"]: x for x in self.record(1)["findings"]}["$.user.phone"]
        self.assertEqual((f["basis"], f["evidence"], f["basis_asserted_by"]),
                         ("subject_abroad", "subject region SG", "caller"))


if __name__ == "__main__":
    unittest.main()
