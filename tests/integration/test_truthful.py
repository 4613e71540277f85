#!/usr/bin/python3
"""The decision record is true (issue 14's bar), over the whole corpus.

Every entry of every HAR in tests/traffic/corpus/ is sent, exactly as
recorded, through a running bordergate under each policy the corpus is
decided under (the quick-start policy and the three seed packs, copied as
test_corpus.py copies them, consents granted), with one `bordergate sink`
per upstream. Then, for every entry, what the sink received is compared
with what the decision record (found by the X-Bordergate-Id the caller got)
says left, part by part:

  headers   a caller's field that arrived changed or not at all has a
            changing finding (deidentify / remove / remove_record) at
            header.NAME (cookie.* for Cookie) and vice versa; fields the
            proxy adds itself (the caller address it appends to
            X-Forwarded-For and Forwarded, X-Forwarded-Proto/-Host, Host,
            Content-Length) are set aside
  path      changed only with a changing finding at path[N], and the other
            way round
  query     each parameter changed only with a changing finding at
            query.NAME, and the other way round
  body      byte for byte as sent unless a changing finding is in the body;
            for JSON every changed leaf is covered by a changing finding
            (same path, or one inside the other: a removed record), every
            changing finding's value changed, every allowed one arrived
            unchanged; for forms the same per field
  values    the original value of every changing finding is nowhere in
            what arrived (unless it also sits, unchanged, in a field that
            left unchanged)
  bytes     bytes.request is the body as sent; bytes.forwarded is the body
            that arrived, and 0 when blocked (nothing arrived, 451)
  consent   a finding allowed on consent has a subject, and the consent its
            evidence names (in the registry) is that subject's: no finding
            of one person rides on another person's consent
  offline   the offline decision (`bordergate replay`, no network) has the
            same outcome and the same findings (path, category, basis,
            action, operator, subject) as the live record

Refused entries (421 for the other policies' hosts, ...) have no decision
record and nothing arrives. Messages name files, entries, paths and header
names, never values. Runs in well under two minutes (1,384 requests).
"""
import base64
import gzip
import json
import os
import re
import socket
import subprocess
import unittest
import urllib.parse

import bgtest
from bgtest import t
from test_audit import decisions
from test_corpus import CORPUS_DIR, PolicyCopy, corpus_files, replay

CHANGING = ("deidentify", "remove", "remove_record")
# What a HAR request line does not send again (framing, hop-by-hop, Host).
NOT_SENT = {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
            "proxy-connection", "upgrade", "te", "trailer"}
# Fields the proxy writes itself; compared separately.
PROXY_FIELDS = {"host", "content-length", "x-forwarded-proto", "x-forwarded-host"}


# -- the request as sent and as arrived -------------------------------------


class Sent:
    """A HAR entry's request as the test sends it (what the daemon sees)."""

    def __init__(self, entry):
        req = entry["request"]
        self.method = req["method"]
        u = urllib.parse.urlsplit(req["url"])
        self.authority = u.netloc
        rest = req["url"].split("://", 1)[1]
        self.target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        self.target = self.target.split("#", 1)[0]
        self.headers = [(h["name"], h["value"]) for h in req["headers"]
                        if not h["name"].startswith(":") and h["name"].lower() not in NOT_SENT]
        post = req.get("postData")
        self.body = None
        if post is not None and "text" in post:
            self.body = base64.b64decode(post["text"]) if post.get("encoding") == "base64" \
                else post["text"].encode("utf-8")

    def wire(self):
        lines = ["%s %s HTTP/1.1" % (self.method, self.target), "Host: %s" % self.authority]
        lines += ["%s: %s" % (n, v) for n, v in self.headers]
        if self.body is not None:
            lines.append("Content-Length: %d" % len(self.body))
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (self.body or b"")

    def header(self, name):
        return [v for n, v in self.headers if n.lower() == name]


def send(port, sent):
    """Status and lower-cased response headers."""
    s = socket.create_connection(("127.0.0.1", port), timeout=t(30))
    try:
        s.sendall(sent.wire())
    except OSError:
        pass  # refused early: the answer is still there to read
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            d = s.recv(65536)
        except OSError:
            break
        if not d:
            break
        buf += d
    s.close()
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    hs = {}
    for ln in head[1:]:
        k, _, v = ln.partition(":")
        hs[k.strip().lower()] = v.strip()
    return status, hs


class SinkTail:
    """New records of one sink's --record file."""

    def __init__(self, sink):
        self.path = sink.record_path
        self.off = 0

    def new(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.off += end
        return [json.loads(x) for x in data[:end].splitlines() if x.strip()]


def arrived_body(rec):
    if "body" in rec:
        return rec["body"].encode("utf-8")
    return bytes.fromhex(rec.get("body_hex", ""))


# -- finding paths ------------------------------------------------------------


_TOK = re.compile(r"\.([^.\[(]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|(\(json\))")


def path_tokens(path):
    """A body finding path ("$.a.b[2]['k'](json).c") as tokens, or None."""
    if not path.startswith("$"):
        return None
    out, i = [], 1
    while i < len(path):
        m = _TOK.match(path, i)
        if m is None:
            return None
        if m.group(1) is not None:
            out.append(("k", m.group(1)))
        elif m.group(2) is not None:
            out.append(("i", int(m.group(2))))
        elif m.group(3) is not None:
            out.append(("k", m.group(3)))
        else:
            out.append(("json",))
        i = m.end()
    return tuple(out)


def overlaps(a, b):
    n = min(len(a), len(b))
    return a[:n] == b[:n]


MISSING = object()


def resolve(doc, toks):
    for tk in toks:
        if tk[0] == "json":
            if not isinstance(doc, str):
                return MISSING
            try:
                doc = json.loads(doc)
            except ValueError:
                return MISSING
        elif tk[0] == "k":
            if not isinstance(doc, dict) or tk[1] not in doc:
                return MISSING
            doc = doc[tk[1]]
        else:
            if not isinstance(doc, list) or tk[1] >= len(doc):
                return MISSING
            doc = doc[tk[1]]
    return doc


def json_container(s):
    if not isinstance(s, str) or not s.strip().startswith(("{", "[")):
        return MISSING
    try:
        v = json.loads(s)
    except ValueError:
        return MISSING
    return v if isinstance(v, (dict, list)) else MISSING


def json_diff(o, a, path, changed, same):
    """Token paths where O and A differ (CHANGED; an array whose length
    changed is one path) and (path, scalar value) pairs that stayed (SAME)."""
    if isinstance(o, dict) and isinstance(a, dict):
        for k in o:
            if k not in a:
                changed.append(path + (("k", k),))
            else:
                json_diff(o[k], a[k], path + (("k", k),), changed, same)
        for k in a:
            if k not in o:
                changed.append(path + (("k", k),))
        return
    if isinstance(o, list) and isinstance(a, list):
        if len(o) != len(a):
            changed.append(path)
            return
        for i, (x, y) in enumerate(zip(o, a)):
            json_diff(x, y, path + (("i", i),), changed, same)
        return
    if o == a and type(o) is type(a):
        if not isinstance(o, (dict, list)):
            same.append((path, str(o)))
        return
    jo, ja = json_container(o), json_container(a)
    if jo is not MISSING and ja is not MISSING:
        json_diff(jo, ja, path + (("json",),), changed, same)
        return
    changed.append(path)


def is_body_path(p):
    return not p.startswith(("header.", "query.", "cookie.", "path[", "method"))


# -- the invariant for one entry ------------------------------------------------


def forwarded_caller_part(name, value, peer):
    """The caller's part of an X-Forwarded-For / Forwarded field the proxy
    appended its caller address to (None when the caller sent none)."""
    if name == "x-forwarded-for":
        if value == peer:
            return None
        assert value.endswith(", " + peer), "X-Forwarded-For does not end with the caller address"
        return value[:-len(", " + peer)]
    i = value.rfind("for=%s;proto=http" % peer)
    if i == 0:
        return None
    assert i > 2 and value[i - 2:i] == ", ", "Forwarded does not end with the proxy's element"
    return value[:i - 2]


def check_arrival(sent, rec, arrival, peer):
    """Problems (no values) between what was sent, what arrived and what
    the record REC says left."""
    probs = []
    monitor = rec.get("mode") == "monitor"
    fs = rec.get("findings", [])
    chg = [f for f in fs if f["action"] in CHANGING and not monitor]
    alw = [f for f in fs if f["action"] == "allow" or (monitor and f["action"] in CHANGING)]
    removed_records = any(f["action"] == "remove_record" for f in chg)
    body = sent.body if sent.body is not None else b""
    got = arrived_body(arrival)

    # bytes
    if rec["bytes"]["request"] != len(body):
        probs.append("bytes.request %d, %d were sent" % (rec["bytes"]["request"], len(body)))
    if rec["bytes"]["forwarded"] != len(got):
        probs.append("bytes.forwarded %d, %d arrived" % (rec["bytes"]["forwarded"], len(got)))

    # header fields
    sent_h, got_h = {}, {}
    for n, v in sent.headers:
        sent_h.setdefault(n.lower(), []).append(v)
    for n, v in arrival["headers"]:
        n = n.lower()
        if n in PROXY_FIELDS:
            continue
        if n in ("x-forwarded-for", "forwarded"):
            v = forwarded_caller_part(n, v, peer)
            if v is None:
                continue
        got_h.setdefault(n, []).append(v)
    body_changed = got != body
    for n in sorted(set(sent_h) | set(got_h)):
        where = "cookie." if n == "cookie" else "header.%s" % n
        covered = [f for f in chg if f["path"].startswith(where) and (n == "cookie" or f["path"] == where)]
        if n == "content-encoding" and body_changed and n not in got_h:
            continue  # a rewritten body is sent as identity
        if sent_h.get(n) != got_h.get(n):
            if not covered:
                probs.append("header %s arrived changed or not at all, the record has no changing "
                             "finding there" % n)
        elif covered:
            probs.append("the record says %s was %s, it arrived as sent"
                         % (covered[0]["path"], covered[0]["action"]))

    # path and query
    sp, _, sq = sent.target.partition("?")
    gp, _, gq = arrival["target"].partition("?")
    path_chg = [f for f in chg if f["path"].startswith("path[")]
    if sp != gp and not path_chg:
        probs.append("the path arrived changed, the record has no changing path finding")
    if sp == gp and path_chg:
        probs.append("the record says %s was %s, the path arrived as sent"
                     % (path_chg[0]["path"], path_chg[0]["action"]))
    sq_d, gq_d = {}, {}
    for k, v in urllib.parse.parse_qsl(sq, keep_blank_values=True):
        sq_d.setdefault(k, []).append(v)
    for k, v in urllib.parse.parse_qsl(gq, keep_blank_values=True):
        gq_d.setdefault(k, []).append(v)
    for k in sorted(set(sq_d) | set(gq_d)):
        cov = [f for f in chg if f["path"] == "query." + k]
        if sq_d.get(k) != gq_d.get(k) and not cov:
            probs.append("query parameter %s arrived changed, the record has no changing finding "
                         "there" % (k if re.fullmatch(r"[A-Za-z_]{1,40}", k) else "*"))
        if sq_d.get(k) == gq_d.get(k) and cov:
            probs.append("the record says %s was %s, it arrived as sent" % (cov[0]["path"], cov[0]["action"]))
    for f in alw:
        if f["path"].startswith("query.") and sq_d.get(f["path"][6:]) != gq_d.get(f["path"][6:]):
            probs.append("%s was allowed, it arrived changed" % f["path"])

    # body
    body_chg = [f for f in chg if is_body_path(f["path"])]
    plain = body
    if any(v.lower() == "gzip" for v in sent.header("content-encoding")):
        try:
            plain = gzip.decompress(body)
        except OSError:
            pass
    same = []  # (token path or None, value) of fields that left unchanged
    if not body_chg:
        if body_changed:
            probs.append("the body arrived changed, the record has no changing body finding")
    else:
        if not body_changed:
            probs.append("the record says %s was %s, the body arrived as sent"
                         % (body_chg[0]["path"], body_chg[0]["action"]))
        try:
            o, a = json.loads(plain), json.loads(got)
        except ValueError:
            o = a = MISSING
        if o is not MISSING:
            changed = []
            json_diff(o, a, (), changed, same)
            ftoks = [(f, path_tokens(f["path"])) for f in body_chg]
            for c in changed:
                if not any(tk is not None and overlaps(tk, c) for _, tk in ftoks):
                    probs.append("a body field arrived changed that no changing finding covers "
                                 "(%d levels deep)" % len(c))
            for f, tk in ftoks:
                if tk is None or f["action"] == "remove_record":
                    continue
                ov = resolve(o, tk)
                if ov is not MISSING and not removed_records and resolve(a, tk) == ov:
                    probs.append("the record says %s was %s, it arrived unchanged" % (f["path"], f["action"]))
            for f in alw:
                tk = path_tokens(f["path"])
                if tk is None or removed_records or any(
                        overlaps(tk, t2) for _, t2 in ftoks if t2 is not None):
                    continue
                ov = resolve(o, tk)
                if ov is not MISSING and resolve(a, tk) != ov:
                    probs.append("%s was allowed, it arrived changed or not at all" % f["path"])
        elif "x-www-form-urlencoded" in ";".join(sent.header("content-type")):
            of = urllib.parse.parse_qs(plain.decode("utf-8", "replace"), keep_blank_values=True)
            gf = urllib.parse.parse_qs(got.decode("utf-8", "replace"), keep_blank_values=True)
            for k in set(of) | set(gf):
                if of.get(k) != gf.get(k) and not any(f["path"] == "form." + k for f in body_chg):
                    probs.append("a form field arrived changed that no changing finding covers")
            for k, vs in of.items():
                if gf.get(k) == vs:
                    same += [(None, v) for v in vs]

    # no original value of a changed finding left in clear (unless it
    # also sits in a field that legitimately left unchanged)
    try:
        o = json.loads(plain)
    except ValueError:
        o = MISSING
    if o is not MISSING:
        if not body_chg:
            json_diff(o, o, (), [], same)
        ctoks = [path_tokens(f["path"]) for f in chg]
        kept = {v for p, v in same if p is None or not any(c is not None and overlaps(c, p) for c in ctoks)}
        text = got.decode("utf-8", "replace") + arrival["target"] + \
            "".join(v for _, v in arrival["headers"])
        for f in chg:
            tk = path_tokens(f["path"])
            v = resolve(o, tk) if tk is not None else MISSING
            if isinstance(v, (str, int)) and not isinstance(v, bool) and len(str(v)) >= 6 \
                    and str(v) not in kept and str(v) in text:
                probs.append("the original value of %s (%s) left in clear" % (f["path"], f["action"]))
    return probs


def consent_problems(rec, registry):
    probs = []
    for f in rec.get("findings", []):
        if f.get("basis") != "consent":
            continue
        m = re.search(r"\bc-[0-9a-f]{8,}", f.get("evidence", ""))
        if "subject" not in f:
            probs.append("%s left on consent but belongs to no subject the route names" % f["path"])
        elif m is None or m.group(0) not in registry:
            probs.append("%s left on consent, its evidence names no consent in the registry" % f["path"])
        elif registry[m.group(0)] != f["subject"]:
            probs.append("%s rides on another subject's consent (%s)" % (f["path"], m.group(0)))
    return probs


def finding_key(f):
    return (f["path"], f["category"], f["basis"], f["action"], f.get("operator"), f.get("subject"))


def check_entry(s, status, hs, got, rec, off, registry):
    """Every problem of one entry: S as sent, STATUS and response headers
    HS, the sink records GOT, the decision record REC (None when there is
    none), the offline line OFF and the consent REGISTRY {id: subject}."""
    if rec is None:
        if "x-bordergate-decision" in hs or off["decision"] != "refused" or got:
            return ["status %d without a decision record (offline %s, %d arrived)"
                    % (status, off["decision"], len(got))]
        return []
    out = rec["outcome"]
    p = []
    if off["decision"] != out:
        p.append("live %s, offline %s" % (out, off["decision"]))
    elif sorted(map(finding_key, rec["findings"]), key=repr) != \
            sorted(map(finding_key, off["findings"]), key=repr):
        p.append("the live record's findings differ from the offline decision's")
    p += consent_problems(rec, registry)
    if out == "block":
        if status != 451 or got:
            p.append("blocked, but status %d and %d arrived" % (status, len(got)))
        if rec["bytes"]["forwarded"] != 0:
            p.append("blocked, but bytes.forwarded %d" % rec["bytes"]["forwarded"])
    elif len(got) != 1:
        p.append("%s, but %d request(s) arrived" % (out, len(got)))
    else:
        p += check_arrival(s, rec, got[0], "127.0.0.1")
    return p


class Truthful(bgtest.TestCase):

    def run_policy(self, name):
        pol = PolicyCopy(self, name)
        px, sinks = pol.start_live()
        tails = [SinkTail(s) for s in sinks.values()]
        sent = []
        for har in corpus_files():
            with open(os.path.join(CORPUS_DIR, har), encoding="utf-8") as f:
                entries = json.load(f)["log"]["entries"]
            for i, e in enumerate(entries):
                s = Sent(e)
                status, hs = send(px.port, s)
                got = [r for tl in tails for r in tl.new()]
                sent.append((har, i, s, status, hs, got))
        self.assertEqual(px.stop(), 0, "proxy %s did not exit cleanly" % name)
        recs = {r["decision_id"]: r for r in decisions(pol.config["audit"]["directory"])}
        registry = {}
        with open(pol.registry) as f:
            for line in f:
                c = json.loads(line)
                if c.get("op") == "grant":
                    registry[c["id"]] = c["subject"]
        offline = {}
        for har in corpus_files():
            r = replay(pol, "--har", os.path.join(CORPUS_DIR, har))
            self.assertEqual(r.returncode, 0, "%s offline under %s: %s" % (har, name, r.stderr[-2000:]))
            for line in r.stdout.splitlines():
                o = json.loads(line)
                if "entry" in o:
                    offline[(har, o["entry"])] = o

        problems, counts, kept = [], {}, {}
        for har, i, s, status, hs, got in sent:
            label = "%s entry %d under %s" % (har, i, name)
            rec = recs.get(hs.get("x-bordergate-id"))
            off = offline[(har, i)]
            out = rec["outcome"] if rec is not None else "refused"
            counts[out] = counts.get(out, 0) + 1
            if rec is not None:
                n = sum(1 for f in rec["findings"] if f["basis"] == "consent")
                counts["consent findings"] = counts.get("consent findings", 0) + n
            kept[(har, i)] = (s, status, hs, got, rec, off)
            problems += ["%s: %s" % (label, x) for x in check_entry(s, status, hs, got, rec, off, registry)]
        return problems, counts, kept, registry

    def check_policy(self, name):
        problems, counts, kept, registry = self.run_policy(name)
        # Not vacuous: every outcome is exercised under every policy.
        for k in ("allow", "deidentify", "block", "refused", "consent findings"):
            self.assertGreater(counts.get(k, 0), 0, "%s: no %s entry: %r" % (name, k, counts))
        self.assertEqual(problems, [], "%d problem(s):\n%s" % (len(problems), "\n".join(problems[:60])))
        return kept, registry

    def test_quickstart(self):
        kept, registry = self.check_policy("quickstart")
        self.lying_records_are_caught(kept, registry)

    def lying_records_are_caught(self, kept, registry):
        """The checks are not vacuous: the issue-14 defects, put back into
        real exchanges of truthful.har, are each reported."""
        def problems(key, rec=None, got=None, status=None):
            s, st, hs, g, r, off = kept[("truthful.har", key)]
            return check_entry(s, st if status is None else status, hs, g if got is None else got,
                               r if rec is None else rec, off, registry)

        def copy(x):
            return json.loads(json.dumps(x))

        # 0: the record says the mobile in X-Forwarded-For was masked, the
        # upstream got it in clear.
        s, _, _, got, rec, _ = kept[("truthful.har", 0)]
        self.assertEqual(problems(0), [])
        clear = copy(got)
        for h in clear[0]["headers"]:
            if h[0].lower() == "x-forwarded-for":
                h[1] = "%s, 127.0.0.1" % s.header("x-forwarded-for")[0]
        self.assertTrue(any("header.x-forwarded-for was deidentify, it arrived as sent" in x
                            for x in problems(0, got=clear)), problems(0, got=clear))
        # ... or the record does not mention the header it changed.
        silent = copy(rec)
        silent["findings"] = [f for f in silent["findings"] if not f["path"].startswith("header.")]
        self.assertTrue(any("header x-forwarded-for arrived changed" in x for x in problems(0, rec=silent)))
        # 2: the emergency contact's mobile rides on the customer's consent,
        # and leaves in clear.
        s, _, _, got, rec, _ = kept[("truthful.har", 2)]
        self.assertEqual(problems(2), [])
        riding = copy(rec)
        own = next(f for f in riding["findings"] if f["path"] == "$.customer.phone")
        for f in riding["findings"]:
            if f["path"] == "$.customer.emergency_contact.phone":
                f.update(basis="consent", action="allow", evidence=own["evidence"])
                f.pop("operator", None)
        self.assertTrue(any("emergency_contact.phone left on consent but belongs to no subject" in x
                            for x in problems(2, rec=riding)))
        other = copy(rec)
        for f in other["findings"]:
            if f["path"] == "$.customer.phone":
                f["subject"] = "0" * 64
        self.assertTrue(any("$.customer.phone rides on another subject's consent" in x
                            for x in problems(2, rec=other)))
        leaked = copy(got)
        leaked[0]["body"] = s.body.decode("utf-8")
        leaked[0]["headers"] = [h if h[0].lower() != "content-length" else [h[0], str(len(s.body))]
                                for h in leaked[0]["headers"]]
        out = problems(2, got=leaked)
        self.assertTrue(any("emergency_contact.phone was deidentify, it arrived unchanged" in x for x in out), out)
        self.assertTrue(any("emergency_contact.phone (deidentify) left in clear" in x for x in out), out)
        # 3: blocked, but the record counts the request's bytes as forwarded,
        # or something arrived.
        s, _, _, got, rec, _ = kept[("truthful.har", 3)]
        self.assertEqual((rec["outcome"], problems(3)), ("block", []))
        counted = copy(rec)
        counted["bytes"]["forwarded"] = counted["bytes"]["request"]
        self.assertIn("blocked, but bytes.forwarded %d" % rec["bytes"]["request"], problems(3, rec=counted))
        self.assertTrue(any(x.startswith("blocked, but status") for x in problems(3, got=[{}])))

    def test_wadesk(self):
        self.check_policy("wadesk")

    def test_wking(self):
        self.check_policy("wking")

    def test_weidijia(self):
        self.check_policy("weidijia")


if __name__ == "__main__":
    unittest.main()
