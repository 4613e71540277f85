"""A HAR recorded by a real browser replays with the decisions it got live.

Headless Chromium (Debian's, driven by playwright-core with `recordHar`,
tests/browser/record_har.js) opens a checkout page served through a running
bordergate by a small origin server at home (CN). The page's script sends
fetch() requests (JSON, form, multipart, query string, text/plain bodies,
with and without personal information) to paths bordergate routes to a
payment provider abroad (a `bordergate sink` pinned to US) and to a domestic
SMS gateway (a sink pinned to CN). Same origin, so no CORS.

Then the recorded HAR is replayed offline (`bordergate replay`) with the same
policy, and the test checks, for every recorded entry:
  * the offline decision equals the live one (the X-Bordergate-Decision
    response header Chromium recorded; 421 refusals are "refused" offline);
  * what the sinks received agrees: blocked requests never arrived, allowed
    ones arrived byte for byte as recorded, de-identified ones arrived
    changed and without the original personal values.

Skipped (with the reason) only when Chromium or tests/browser/node_modules is
missing; `scripts/deps.sh --test` installs both.
"""
import http.server
import json
import os
import shutil
import subprocess
import threading
import unittest
import urllib.parse

import bgtest
from bgtest import t

BROWSER_DIR = os.path.join(bgtest.SOURCE_DIR, "tests", "browser")
CHROMIUM = os.environ.get("BG_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
HAVE_BROWSER = (os.access(CHROMIUM, os.X_OK) and NODE is not None
                and os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))
SKIP_REASON = "needs %s, node and tests/browser/node_modules/playwright-core (scripts/deps.sh --test)" % CHROMIUM

KEYS = {"pseudonym": "5a" * 32, "token": "4d" * 32, "subject": "6b" * 32, "audit": "7c" * 32}

# Fictitious, valid where a validator applies: a GB 11643 resident ID number
# (check digit X), a Luhn-valid UnionPay card, mainland mobiles.
PI = {
    "name": "陈思远",
    "card": "6222021234567890128",
    "mobile": "13907124581",
    "mobile2": "18612345678",
    "email": "chen.siyuan@example.com",
    "id_no": "11010519491231002X",
}

# The page's script: one fetch after the other; results for the test.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Checkout (bordergate browser test)</title></head>
<body data-state="running"><h1>Checkout</h1><pre id="log"></pre>
<script>
const PI = %(pi)s;
const json = (o) => ({method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(o)});
const steps = [
  ['charge-on-contract', '/api/payments/v1/charges',
   json({order_id: 'ORD-2026-11-880001', amount: 12900, customer: {id: 'qs-c-8801', name: PI.name},
         card: {number: PI.card, exp_month: 3, exp_year: 2029}})],
  ['charge-contact-details', '/api/payments/v1/charges',
   json({order_id: 'ORD-2026-11-880002', amount: 5800, customer: {id: 'qs-c-8802', name: PI.name,
         email: PI.email, phone: PI.mobile}})],
  ['kyc-id-number', '/api/payments/v1/charges',
   json({order_id: 'ORD-2026-11-880003', customer: {id: 'qs-c-8803', id_card_no: PI.id_no}})],
  ['charge-without-order', '/api/payments/v1/charges',
   json({amount: 990, customer: {id: 'qs-c-8804', name: PI.name}, card: {number: PI.card}})],
  ['form-mobile', '/api/payments/v1/charges',
   {method: 'POST', body: new URLSearchParams({order_id: 'ORD-2026-11-880005', mobile: PI.mobile2})}],
  ['multipart-email', '/api/payments/v1/charges',
   {method: 'POST', body: (() => { const f = new FormData(); f.append('order_id', 'ORD-2026-11-880006');
                                    f.append('email', PI.email); return f; })()}],
  ['query-mobile', '/api/payments/v1/customers?order_id=ORD-2026-11-880007&mobile=' + PI.mobile, {method: 'GET'}],
  ['refund-no-pi', '/api/payments/v1/refunds',
   json({order_id: 'ORD-2026-11-880001', refund_id: 'rf_8f2a61c0', amount: 12900, created: 1763650000})],
  ['fullwidth-mobile', '/api/payments/v1/charges',
   json({order_id: 'ORD-2026-11-880009', customer: {id: 'qs-c-8809',
         phone: PI.mobile.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d)))}})],
  ['json-in-json-id', '/api/payments/v1/charges',
   json({order_id: 'ORD-2026-11-880010', customer: {id: 'qs-c-8810'}, metadata: JSON.stringify({kyc: {id: PI.id_no}})})],
  ['text-plain-mobile', '/api/payments/v1/charges',
   {method: 'POST', body: JSON.stringify({order_id: 'ORD-2026-11-880011', customer: {id: 'qs-c-8811', phone: PI.mobile}})}],
  ['sms-domestic', '/api/sms/v1/send',
   json({to: PI.mobile, template: 'SMS_223101', params: {code: '604381'}})],
];
(async () => {
  const results = [];
  for (const [name, url, init] of steps) {
    try {
      const r = await fetch(url, init);
      await r.text();
      results.push({name, status: r.status, decision: r.headers.get('X-Bordergate-Decision')});
    } catch (e) {
      results.push({name, error: String(e)});
    }
  }
  window.__results = results;
  document.body.dataset.state = 'done';
})();
</script></body></html>
"""

# What the policy (quick-start rules) decides for each step.
EXPECTED = {
    "charge-on-contract": "allow",
    "charge-contact-details": "deidentify",
    "kyc-id-number": "block",
    "charge-without-order": "block",
    "form-mobile": "deidentify",
    "multipart-email": "deidentify",
    "query-mobile": "deidentify",
    "refund-no-pi": "allow",
    "fullwidth-mobile": "deidentify",
    "json-in-json-id": "block",
    "text-plain-mobile": "deidentify",
    "sms-domestic": "allow",
}


class _Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] == "/shop/checkout.html":
            body = (PAGE % {"pi": json.dumps(PI)}).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
        else:
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def entry_body(req):
    pd = req.get("postData")
    if not pd or "text" not in pd:
        return None
    if pd.get("encoding") == "base64":
        import base64
        return base64.b64decode(pd["text"])
    return pd["text"].encode("utf-8")


@unittest.skipUnless(HAVE_BROWSER, SKIP_REASON)
class BrowserHar(bgtest.TestCase):

    def origin(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv.server_address[1]

    def policy(self, page_port, pay, sms):
        with open(os.path.join(bgtest.SOURCE_DIR, "config", "quickstart.json")) as f:
            cfg = json.load(f)
        for k, spec in cfg["keys"].items():
            path = os.path.join(self.tmpdir, "%s.key" % k)
            with open(path, "w") as f:
                f.write(KEYS[k] + "\n")
            os.chmod(path, 0o600)
            spec["file"] = path
        for k in ("listen", "admin", "resolve"):
            cfg.pop(k, None)
        cfg["consent"]["registry"] = os.path.join(self.tmpdir, "consents.jsonl")
        cfg["audit"]["directory"] = os.path.join(self.tmpdir, "audit")
        cfg["debug_headers"] = True
        # The browser talks to bordergate by address: routes by path. The
        # page's origin and the SMS gateway are at home, the payment
        # provider's sink is pinned to the US.
        cfg["geo"] = {"overrides": {"cidrs": {"127.0.0.1/32": "CN", "127.0.0.51/32": "US"}}}
        pay_route = next(r for r in cfg["routes"] if r["id"] == "payments")
        sms_route = next(r for r in cfg["routes"] if r["id"] == "sms")
        pay_route["match"] = {"path_prefix": "/api/payments/"}
        pay_route["upstream"] = pay.origin
        sms_route["match"] = {"path_prefix": "/api/sms/"}
        sms_route["upstream"] = sms.origin
        page_route = {"id": "shop-page", "description": "the shop's own pages (domestic origin)",
                      "match": {"path_prefix": "/shop/"}, "upstream": "http://127.0.0.1:%d" % page_port,
                      "allow_private_addresses": True}
        cfg["routes"] = [page_route, pay_route, sms_route]
        return cfg

    def test_recorded_har_replays_with_the_live_decisions(self):
        page_port = self.origin()
        pay = self.sink("payments-us", host="127.0.0.51")
        sms = self.sink("sms-cn", host="127.0.0.1")
        cfg = self.policy(page_port, pay, sms)
        px = self.proxy(cfg, name="proxy-browser")
        har_path = os.path.join(self.tmpdir, "browser.har")
        r = subprocess.run([NODE, os.path.join(BROWSER_DIR, "record_har.js"), px.url("/shop/checkout.html"), har_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(120), cwd=BROWSER_DIR)
        self.assertEqual(r.returncode, 0, "record_har.js failed:\n%s" % r.stderr[-3000:])
        out = json.loads(r.stdout)
        # What the page saw live is what the policy says.
        live_by_name = {x["name"]: x for x in out["results"]}
        self.assertEqual(sorted(live_by_name), sorted(EXPECTED))
        for name, want in EXPECTED.items():
            got = live_by_name[name]
            self.assertNotIn("error", got, name)
            self.assertEqual(got["decision"], want, "live decision of %s" % name)
            self.assertEqual(got["status"], 451 if want == "block" else 200, "live status of %s" % name)

        with open(har_path) as f:
            har = json.load(f)
        self.assertEqual(har["log"]["version"], "1.2")
        entries = har["log"]["entries"]
        api = [(i, e) for i, e in enumerate(entries) if urllib.parse.urlsplit(e["request"]["url"]).path.startswith("/api/")]
        self.assertEqual(len(api), len(EXPECTED), "one recorded entry per fetch")

        # Offline replay of the browser's HAR with the same policy.
        rr = subprocess.run([bgtest.BIN, "replay", "--config", px.config_path, "--har", har_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(60))
        self.assertEqual(rr.returncode, 0, rr.stderr[-3000:])
        offline = {}
        for line in rr.stdout.splitlines():
            if line.startswith("{"):
                doc = json.loads(line)
                if "entry" in doc:
                    offline[doc["entry"]] = doc
        self.assertEqual(sorted(offline), list(range(len(entries))), "one offline line per recorded entry")

        for i, e in enumerate(entries):
            resp = e["response"]
            live = next((h["value"] for h in resp["headers"] if h["name"].lower() == "x-bordergate-decision"), None)
            path = urllib.parse.urlsplit(e["request"]["url"]).path
            with self.subTest(entry=i, path=path):
                if live is None:
                    self.assertEqual(resp["status"], 421, "entry %d: no decision header and not a 421" % i)
                    self.assertEqual(offline[i]["decision"], "refused")
                    self.assertEqual(offline[i].get("status"), 421)
                else:
                    self.assertEqual(offline[i]["decision"], live.split(";")[0], "entry %d (%s): offline vs live" % (i, path))

        # The same comparison, made by `replay --compare-recorded` itself.
        rc = subprocess.run([bgtest.BIN, "replay", "--config", px.config_path, "--har", har_path, "--compare-recorded"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(60))
        self.assertEqual(rc.returncode, 0, rc.stdout[-3000:] + rc.stderr[-3000:])
        self.assertIn('"recorded_differences":0', rc.stderr)

        # What the sinks received agrees with the decisions, in order.
        forwarded = {"payments": [], "sms": []}
        for i, e in api:
            live = next(h["value"] for h in e["response"]["headers"] if h["name"].lower() == "x-bordergate-decision")
            kind = "sms" if "/api/sms/" in e["request"]["url"] else "payments"
            if live != "block":
                forwarded[kind].append((i, live, e))
        for kind, sink in (("payments", pay), ("sms", sms)):
            recs = sink.wait_records(len(forwarded[kind])) if forwarded[kind] else sink.records()
            self.assertEqual(len(recs), len(forwarded[kind]), "%s: blocked requests must never arrive" % kind)
            for (i, decision, e), rec in zip(forwarded[kind], recs):
                req = e["request"]
                u = urllib.parse.urlsplit(req["url"])
                target = u.path + ("?" + u.query if u.query else "")
                body = entry_body(req) or b""
                if decision == "allow":
                    self.assertTrue(rec.body == body, "entry %d: an allowed body arrives byte for byte" % i)
                    self.assertEqual(rec.target, target, "entry %d: target unchanged" % i)
                else:
                    self.assertTrue(rec.body != body or rec.target != target, "entry %d: de-identified but unchanged" % i)
                    arrived = rec.body.decode("utf-8", "replace") + urllib.parse.unquote(rec.target)
                    for k in ("mobile", "mobile2", "email", "id_no"):
                        self.assertNotIn(PI[k], arrived, "entry %d: the original %s arrived" % (i, k))


if __name__ == "__main__":
    bgtest.main()
