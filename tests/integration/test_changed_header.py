#!/usr/bin/python3
"""
X-Bordergate-Changed (issue 14): a de-identified response tells the calling
engineer which parts of the request were changed and with which operator —
paths and operators only, never values — and the list is exactly the
decision record's changed findings. Requests that were not changed (allowed,
blocked) carry no such header, an upstream cannot forge one, and a long list
is cut at a bound with a marker that says how many entries were left out.
"""
import json
import os
import re
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import route, t  # noqa: E402
from test_audit import KEY_ENV, AuditTestBase, decisions, phone, resident_id  # noqa: E402

UID = "u-changed-3001"
MAX = 1023  # BG_CHANGED_MAX without the NUL


def changed_entries(value):
    """[(path, operator)] of an X-Bordergate-Changed value (paths %XX-decoded)."""
    out = []
    for e in value.split(", "):
        if e.startswith("...(+"):
            continue
        path, _, op = e.rpartition("=")
        out.append((urllib.parse.unquote(path), op))
    return out


def record_changes(rec):
    """The decision record's changed findings as [(path, operator)]."""
    out = []
    for f in rec["findings"]:
        if f["action"] in ("deidentify", "remove"):
            out.append((f["path"], f["operator"]))
        elif f["action"] == "remove_record":
            out.append((f["path"], "remove_record"))
    return out


class ChangedHeader(AuditTestBase):

    def start_proxy(self, up=None):
        self.up = up or self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        cfg = self.config(self.up, self.audit_dir)
        cfg["routes"] = [route("us", self.up.origin, host="us.example", recipient="partner-us",
                               purpose="support", subjects={"id": "$.user.id"}),
                         route("blocked", self.up.origin, host="blocked.example", recipient="partner-blocked",
                               purpose="support", subjects={"id": "$.user.id"})]
        cfg["rules"] = [
            {"id": "mobile-masked", "categories": ["cn_mobile"], "recipients": ["partner-us"],
             "bases": ["consent"], "fallback": {"action": "deidentify", "operator": {"op": "mask"}},
             "accept_pseudonymized": True},
            {"id": "id-hashed", "categories": ["cn_resident_id"], "recipients": ["partner-us"],
             "bases": ["consent"], "fallback": {"action": "deidentify", "operator": {"op": "hash"}},
             "accept_pseudonymized": True},
            {"id": "email-removed", "categories": ["email"], "recipients": ["partner-us"],
             "bases": ["consent"], "fallback": "remove"},
        ]
        return self.proxy(cfg, env=KEY_ENV)

    def test_paths_and_operators_of_a_deidentified_request_and_no_value(self):
        px = self.start_proxy()
        tel_path, tel_query, tel_hdr, tel_body = phone(3001), phone(3002), phone(3003), phone(3004)
        id_no, email = resident_id(31), "changed.person@example.org"
        tel_cn = phone(3006)
        doc = {"user": {"id": UID, "phone": tel_body, "id_no": id_no, "email": email, "手机号": tel_cn}}
        resp = self.post(px, "/v1/users/%s/notes?mobile=%s&lang=zh" % (tel_path, tel_query), json.dumps(doc),
                         host="us.example",
                         headers={"Content-Type": "application/json", "X-User-Phone": tel_hdr})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.headers.get("X-Bordergate-Decision"), "deidentify")
        value = resp.headers.get("X-Bordergate-Changed")
        self.assertIsNotNone(value, "a de-identified response names what changed")
        for v in (tel_path, tel_query, tel_hdr, tel_body, tel_cn, id_no, email, UID):
            self.assertNotIn(v, value)
        # a valid header value: printable ASCII, the Chinese key %XX-encoded
        self.assertRegex(value, r"^[\x21-\x7e ]+$")
        self.assertIn("$.user.%E6%89%8B%E6%9C%BA%E5%8F%B7=mask", value)
        got = dict(changed_entries(value))
        self.assertEqual(got.get("$.user.phone"), "mask")
        self.assertEqual(got.get("$.user.id_no"), "hash")
        self.assertEqual(got.get("$.user.email"), "redact")
        self.assertEqual(got.get("header.x-user-phone"), "mask")
        self.assertEqual(got.get("query.mobile"), "mask")
        self.assertTrue(any(re.fullmatch(r"path\[\d+\]", p) and op == "mask" for p, op in got.items()), value)
        # Exactly what the decision record says was changed.
        rec = bgtest.wait_for(lambda: decisions(self.audit_dir), t(10), "a decision record")[0]
        self.assertEqual(resp.headers.get("X-Bordergate-Id"), rec["decision_id"])
        self.assertEqual(sorted(set(changed_entries(value))), sorted(set(record_changes(rec))))
        # And it is true: none of the changed values reached the upstream.
        arrived = self.up.wait_records(1)[0]
        raw = json.dumps(arrived.__dict__, default=str)
        for v in (tel_path, tel_query, tel_hdr, tel_body, tel_cn, id_no, email):
            self.assertNotIn(v, raw)

    def test_unchanged_requests_carry_no_header(self):
        px = self.start_proxy()
        resp = self.post(px, "/v1/ping", json.dumps({"user": {"id": UID}, "n": 1}), host="us.example",
                         headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.headers.get("X-Bordergate-Decision"), "allow")
        self.assertNotIn("X-Bordergate-Changed", resp.headers)
        # Blocked (no rule covers this recipient: the default fallback
        # blocks): nothing left, so nothing is said to have changed.
        resp = self.post(px, "/v1/x", json.dumps({"user": {"id": UID, "phone": phone(3005)}}),
                         host="blocked.example", headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 451, resp.text)
        self.assertNotIn("X-Bordergate-Changed", resp.headers)

    def test_an_upstream_cannot_forge_the_header(self):
        def handler(conn, n):
            conn.read_request()
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Bordergate-Changed: $.forged=mask\r\n"
                      b"Connection: close\r\n\r\nok")
        up = bgtest.ScriptedUpstream(self, handler, host="127.0.0.2")
        up.host = "127.0.0.2"
        px = self.start_proxy(up)
        resp = self.post(px, "/v1/ping", json.dumps({"user": {"id": UID}}), host="us.example",
                         headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertNotIn("X-Bordergate-Changed", resp.headers)
        resp = self.post(px, "/v1/x", json.dumps({"user": {"id": UID, "phone": phone(3010)}}),
                         host="us.example", headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.headers.get("X-Bordergate-Changed"), "$.user.phone=mask")

    def test_a_long_list_is_bounded_and_says_how_much_was_left_out(self):
        px = self.start_proxy()
        people = [{"phone": phone(4000 + i), "email": "p%d@example.org" % i} for i in range(150)]
        resp = self.post(px, "/v1/batch", json.dumps({"user": {"id": UID}, "people": people}),
                         host="us.example", headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 200, resp.text)
        value = resp.headers["X-Bordergate-Changed"]
        self.assertLessEqual(len(value), MAX)
        m = re.search(r", \.\.\.\(\+(\d+) more\)$", value)
        self.assertIsNotNone(m, "a cut list ends with the truncation marker: %r" % value[-60:])
        listed = changed_entries(value)
        rec = bgtest.wait_for(lambda: decisions(self.audit_dir), t(10), "a decision record")[0]
        changes = record_changes(rec)
        self.assertEqual(len(changes), 300)
        self.assertEqual(len(listed) + int(m.group(1)), len(changes))
        self.assertEqual(listed, changes[:len(listed)])


if __name__ == "__main__":
    unittest.main()
