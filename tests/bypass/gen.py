#!/usr/bin/env python3
"""
Writes the bypass corpus: tests/bypass/<family>.jsonl (see README.md).

Deterministic (no clock, no randomness; gzip members carry mtime 0), so the
committed files are exactly this script's output:

    python3 tests/bypass/gen.py            # rewrite the files
    python3 tests/bypass/gen.py --check    # exit 1 if a file differs

Every value is synthetic but fully valid: resident ID numbers with a real
region code, a real birth date and a correct GB 11643 check character;
mobiles with allocated prefixes. Each entry is written as an adversary
would write it, to get the value past the proxy, not to pass.
"""

import base64
import gzip
import io
import json
import os
import quopri
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def gb11643(first17):
    """FIRST17 + its ISO 7064 MOD 11-2 check character."""
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, _W)) % 11]


# Resident ID numbers: region (real county-level code), birth date, sequence.
ID = [gb11643(s) for s in (
    "11010119900307851",  # Beijing Dongcheng
    "31010419851122402",  # Shanghai Xuhui
    "44030520000229163",  # Shenzhen Nanshan, born on a leap day
    "51010719780815002",  # Chengdu Wuhou
    "33010619921001387",  # Hangzhou Xihu
    "42011119880512661",  # Wuhan Hongshan
    "11010519491231002",  # Beijing Chaoyang (check character X)
    "32010219730418079",  # Nanjing Xuanwu
    "37020219990909120",  # Qingdao Shinan
    "61010320011111083",  # Xi'an Beilin
)]
# Residence permits for Hong Kong / Macao / Taiwan residents (GB 11643 numbering).
HMT = [gb11643("81000019950620123"), gb11643("82000019891203456"), gb11643("83000019870101456")]
# First-generation (15-digit) numbers: region + YYMMDD + sequence, no check character.
LEGACY = ["110101900307851", "310104851122402", "440305760229163", "510107780815002",
          "330106621001387", "420111880512661", "320102730418079", "370202690909120"]
# Mobiles with allocated prefixes (13x, 15x, 17x, 18x, 19x, 14x, 16x).
MOB = ["13812345678", "15067891234", "18623456789", "19912345608", "17712345678",
       "13598761234", "14787654321", "16623456780", "18800001111", "15911112222"]

for _v in ID + HMT:
    assert len(_v) == 18 and gb11643(_v[:17]) == _v, _v
assert ID[6].endswith("X")

HOST = "api.abroad.example"  # the route matched by Host
PHOST = "gw.partner.example"  # any host: the route matched by path prefix only
PFX = "/partner/v1/"

ST_ID = [451]  # an identity number abroad: blocked
ST_MOB = [200, 451]  # a mobile abroad: forwarded masked, or blocked when it cannot be rewritten
ST_400 = [400]


class Corpus:
    def __init__(self):
        self.families = {}

    @staticmethod
    def only_in_caller_host(req, secrets, want_all=True):
        """Every secret sits only in the Host header or an absolute-form
        authority: bordergate sends the route's own Host upstream and echoes
        the caller's only on routes matched by Host, so a proxy that passes
        everything else unchanged still does not forward it."""
        if not secrets:
            return False
        t = req["target"]
        authority = t.split("/")[2] if t.startswith("http://") or t.startswith("https://") else ""
        rest = [req["method"], t[len(t.split("/")[0]) + 2 + len(authority):] if authority else t,
                req.get("body", ""), req.get("body_b64", "")]
        rest += [n + ":" + v for n, v in req["headers"] if n.lower() != "host"]
        hosts = [v for n, v in req["headers"] if n.lower() == "host"] + [authority]
        digits = lambda v: "".join(ch for ch in v if ch.isdigit() or ch in "xX")
        hosts = [digits(h) for h in hosts]
        rest = [digits(r) for r in rest]
        only = [any(x in h for h in hosts) and not any(x in r for r in rest) for x in secrets]
        return all(only) if want_all else any(only)

    def add(self, family, why, method="POST", target="/v1/data", headers=None, body=None,
            body_bytes=None, secrets=(), status=None, host=HOST, nothing_arrives=False,
            content_type=None, consumed=False):
        """One entry; Host goes first unless HEADERS already has one. CONSUMED:
        the value sits in something an HTTP proxy consumes rather than
        forwards (hop-by-hop fields, chunk framing, its own X-Forwarded-Host),
        so even an uninspecting proxy need not pass it on."""
        fam = self.families.setdefault(family, [])
        hs = [list(h) for h in (headers or [])]
        if host is not None and not any(h[0].lower() == "host" for h in hs):
            hs.insert(0, ["Host", host])
        if content_type is not None:
            hs.append(["Content-Type", content_type])
        req = {"method": method, "target": target, "headers": hs}
        if body_bytes is not None:
            req["body_b64"] = base64.b64encode(body_bytes).decode("ascii")
        elif body is not None:
            req["body"] = body
        secrets = list(secrets)
        if status is None:
            status = ST_ID if any(len(s) >= 15 for s in secrets) else ST_MOB
        e = {"id": "%s-%03d" % (family, len(fam) + 1), "family": family, "why": why, "request": req,
             "secrets": secrets, "expect": {"status": list(status)}}
        if nothing_arrives:
            e["expect"]["nothing_arrives"] = True
        if consumed or self.only_in_caller_host(req, secrets, want_all=False):
            e["expect"]["consumed_by_proxy"] = True
        if self.only_in_caller_host(req, secrets) and 200 not in e["expect"]["status"]:
            e["expect"]["status"].append(200)  # forwarded without the caller's Host
        fam.append(e)
        return e

    def raw(self, family, why, writes, secrets=(), status=None, nothing_arrives=False, half_close=False,
            responses=None, expand=None, consumed=False):
        """One entry sent as exact bytes: WRITES (str or bytes each) are sent
        one after the other with a short pause, so nothing is added or
        normalised (bare LF, obs-fold, odd versions, pipelines, a body after
        100 Continue). HALF_CLOSE: the client shuts its side after the last
        write. RESPONSES: how many responses to read (a pipeline). EXPAND:
        (marker, unit, count), each marker replaced by UNIT * COUNT when sent."""
        fam = self.families.setdefault(family, [])
        bs = [w.encode("utf-8") if isinstance(w, str) else w for w in writes]
        try:
            req = {"raw": [b.decode("utf-8") for b in bs]}
        except UnicodeDecodeError:
            req = {"raw_b64": [base64.b64encode(b).decode("ascii") for b in bs]}
        if half_close:
            req["half_close"] = True
        if responses is not None:
            req["responses"] = responses
        if expand is not None:
            req["expand"] = {"marker": expand[0], "unit": expand[1], "count": expand[2]}
        secrets = list(secrets)
        if status is None:
            status = ST_ID if any(len(x) >= 15 for x in secrets) else ST_MOB
        e = {"id": "%s-%03d" % (family, len(fam) + 1), "family": family, "why": why, "request": req,
             "secrets": secrets, "expect": {"status": list(status)}}
        if nothing_arrives:
            e["expect"]["nothing_arrives"] = True
        if consumed:
            e["expect"]["consumed_by_proxy"] = True
        fam.append(e)
        return e


def js(o):
    return json.dumps(o, ensure_ascii=False)


def gz(b, **kw):
    return gzip.compress(b, mtime=0, **kw)


def pct_all(s):
    return "".join("%%%02X" % ord(c) for c in s)


def pct_all_utf8(s):
    return "".join("%%%02X" % b for b in s.encode("utf-8"))


def pct_twice(s):
    return "".join("%%25%02X" % ord(c) for c in s)


def b64(s, url=False, pad=True):
    b = s.encode() if isinstance(s, str) else s
    out = (base64.urlsafe_b64encode(b) if url else base64.b64encode(b)).decode()
    return out if pad else out.rstrip("=")


def spaced(s, sep):
    return sep.join(s)


def gzip_with_name(data, fname=None, comment=None):
    """A gzip member with FNAME/FCOMMENT header fields (RFC 1952), mtime 0."""
    flags = (8 if fname else 0) | (16 if comment else 0)
    head = bytes([0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 255])
    if fname:
        head += fname.encode("latin-1") + b"\0"
    if comment:
        head += comment.encode("latin-1") + b"\0"
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = co.compress(data) + co.flush()
    tail = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")
    return head + body + tail


def raw_deflate(data):
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush()


def utf7_digits(s):
    """S in UTF-7 with every character in base64 mode (no digit in clear)."""
    b = s.encode("utf-16-be")
    return "+" + base64.b64encode(b).decode().rstrip("=") + "-"


def csv_ids(ids, mobs):
    rows = ["name,id_card_no,mobile"]
    for i, (a, m) in enumerate(zip(ids, mobs)):
        rows.append("Customer %d,%s,%s" % (i + 1, a, m))
    return "\n".join(rows) + "\n"


def multipart(boundary, parts, preamble="", epilogue="", nl="\r\n"):
    """PARTS: (headers list of (name, value), body bytes or str)."""
    out = b""
    if preamble:
        out += preamble.encode() + nl.encode()
    for hs, body in parts:
        out += ("--%s%s" % (boundary, nl)).encode()
        for k, v in hs:
            out += ("%s: %s%s" % (k, v, nl)).encode("utf-8")
        out += nl.encode()
        out += body if isinstance(body, bytes) else body.encode("utf-8")
        out += nl.encode()
    out += ("--%s--%s" % (boundary, nl)).encode()
    if epilogue:
        out += epilogue.encode()
    return out


def png_with_text(text):
    """A 1x1 PNG with a tEXt chunk holding TEXT (valid chunk CRCs)."""
    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + (zlib.crc32(t + d) & 0xFFFFFFFF).to_bytes(4, "big")
    ihdr = (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\0\0")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"Comment\0" + text.encode())
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def pdf_with_text(text):
    return ("%%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
            "endobj\n3 0 obj<</Type/Page/Parent 2 0 R/Contents 4 0 R>>endobj\n4 0 obj<</Length 44>>stream\n"
            "BT /F1 12 Tf 72 712 Td (%s) Tj ET\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%%%EOF\n"
            % text).encode()


def zip_stored(name, data):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_STORED) as z:
        zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        z.writestr(zi, data)
    return bio.getvalue()


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"


# ---------------------------------------------------------------------------
# Families


def fam_path(c):
    f = "path"
    m, i = MOB, ID
    c.add(f, "REST resource id: mobile as a path segment (issue 13 class 1)", "GET", "/users/%s" % m[0],
          secrets=[m[0]])
    c.add(f, "REST resource id: ID number as a path segment", "GET", "/users/%s/profile" % i[0], secrets=[i[0]])
    c.add(f, "ID number in the path of the path-prefix route", "GET", PFX + "customers/%s" % i[1],
          host=PHOST, secrets=[i[1]])
    c.add(f, "mobile mid-path on the prefix route", "GET", PFX + "customers/%s/orders" % m[1], host=PHOST,
          secrets=[m[1]])
    c.add(f, "matrix parameter ;id= (Servlet/JAX-RS path params)", "GET", "/t;id=%s" % i[2], secrets=[i[2]])
    c.add(f, "matrix parameters on the prefix route", "GET", PFX + "t;phone=%s;v=1" % m[2], host=PHOST,
          secrets=[m[2]])
    c.add(f, "every digit of the mobile percent-encoded in the segment", "GET", "/users/%s" % pct_all(m[3]),
          secrets=[m[3]])
    c.add(f, "ID number percent-encoded in the segment", "GET", "/users/%s" % pct_all(i[3]), secrets=[i[3]])
    c.add(f, "ID number partly percent-encoded (only some digits)", "GET",
          "/users/%s%%3%s%s" % (i[4][:5], i[4][5], i[4][6:]), secrets=[i[4]])
    c.add(f, "ID number as a file name with an extension", "GET", "/files/%s.pdf" % i[5], secrets=[i[5]])
    c.add(f, "ID number split over two segments", "GET", "/users/%s/%s" % (i[0][:9], i[0][9:]), secrets=[i[0]])
    c.add(f, "ID number with check character X, lower-cased", "GET", "/u/%s" % i[6].lower(), secrets=[i[6]])
    c.add(f, "+86 mobile with the plus percent-encoded", "POST", "/call/%%2B86%s" % m[4], body="{}",
          content_type=JSON, secrets=[m[4]])
    c.add(f, "ID number and mobile on the prefix route", "DELETE", PFX + "export/%s/%s" % (i[7], m[5]),
          host=PHOST, secrets=[i[7], m[5]])
    c.add(f, "ID number glued to letters in a segment", "GET", "/users/ID%s" % i[8], secrets=[i[8]])
    c.add(f, "absolute-form request target carrying the ID number", "GET",
          "http://%s/users/%s" % (HOST, i[9]), secrets=[i[9]])
    c.add(f, "double percent-encoded mobile in the segment", "GET", "/users/%s" % pct_twice(m[6]),
          secrets=[m[6]])
    c.add(f, "mobile with %2D dashes in the segment", "GET", "/users/%s%%2D%s%%2D%s" % (m[7][:3], m[7][3:7],
                                                                                   m[7][7:]), secrets=[m[7]])
    c.add(f, "path param before the prefix route's next segment", "GET", PFX + ";u=%s/items" % i[0],
          host=PHOST, secrets=[i[0]])
    c.add(f, "deep path with the ID number at depth 6", "PUT", "/a/b/c/d/e/%s" % i[1], body="{}",
          content_type=JSON, secrets=[i[1]])
    c.add(f, "HMT residence permit number in the path", "GET", "/permits/%s" % HMT[0], secrets=[HMT[0]])
    c.add(f, "ID number in a PATCH on the prefix route with an empty JSON body", "PATCH",
          PFX + "people/%s" % i[2], host=PHOST, body="{}", content_type=JSON, secrets=[i[2]])
    c.add(f, "mobile as the last segment with a trailing slash", "GET", "/v2/lookup/%s/" % m[8],
          secrets=[m[8]])
    c.add(f, "mobile as a dotted segment name (/contact/138.1234.5678)", "GET",
          "/contact/%s.%s.%s" % (m[9][:3], m[9][3:7], m[9][7:]), secrets=[m[9]])


def fam_query(c):
    f = "query"
    m, i = MOB, ID
    c.add(f, "ID number as a bare query value under a neutral name", "GET", "/search?q=%s" % i[0],
          secrets=[i[0]])
    c.add(f, "the value as the parameter NAME", "GET", "/search?%s=1" % i[1], secrets=[i[1]])
    c.add(f, "a bare value with no = at all", "GET", "/search?%s" % m[0], secrets=[m[0]])
    c.add(f, "value percent-encoded digit by digit", "GET", "/search?p=%s" % pct_all(i[2]), secrets=[i[2]])
    c.add(f, "value percent-encoded twice", "GET", "/search?p=%s" % pct_twice(i[3]), secrets=[i[3]])
    c.add(f, "'+' as the space between groups", "GET", "/search?id=%s+%s+%s" % (i[4][:6], i[4][6:14], i[4][14:]),
          secrets=[i[4]])
    c.add(f, "the same parameter repeated: the first harmless, the second the ID", "GET",
          "/search?id=42&id=%s" % i[5], secrets=[i[5]])
    c.add(f, "bracket parameter names (PHP/Rails style)", "GET", "/search?filter%%5Bphone%%5D=%s" % m[1],
          secrets=[m[1]])
    c.add(f, "JSON in a query parameter, percent-encoded", "GET",
          "/search?data=%s" % "".join("%%%02X" % b for b in js({"id_no": i[6]}).encode()), secrets=[i[6]])
    c.add(f, "base64 JSON in a query parameter", "GET", "/search?d=%s" % b64(js({"idCard": i[7]}), url=True),
          secrets=[i[7]])
    c.add(f, "cache-buster style parameter", "GET", "/api?callback=cb&_=%s" % m[2], secrets=[m[2]])
    c.add(f, "search syntax q=phone:<value>", "GET", "/search?q=phone%%3A%s" % m[3], secrets=[m[3]])
    c.add(f, "semicolon as the parameter separator", "GET", "/search?a=1;id=%s" % i[8], secrets=[i[8]])
    c.add(f, "query on the path-prefix route", "GET", PFX + "search?q=%s" % i[9], host=PHOST, secrets=[i[9]])
    c.add(f, "UTM field carrying a mobile", "GET", "/landing?utm_content=%s&utm_source=sms" % m[4],
          secrets=[m[4]])
    c.add(f, "IIS %u encoding of every digit", "GET",
          "/search?x=%s" % "".join("%%u%04X" % ord(ch) for ch in i[0]), secrets=[i[0]],
          status=[400, 451])
    c.add(f, "ID number in three %20-separated groups", "GET",
          "/search?id=%s%%20%s%%20%s" % (i[1][:6], i[1][6:14], i[1][14:]), secrets=[i[1]])
    c.add(f, "+86 mobile with the plus percent-encoded", "GET", "/search?tel=%%2B86%s" % m[5], secrets=[m[5]])
    c.add(f, "array parameters ids[]=", "GET", "/bulk?ids%%5B%%5D=7&ids%%5B%%5D=%s" % i[2], secrets=[i[2]])
    c.add(f, "an URL inside a parameter, itself carrying the ID in its query", "GET",
          "/go?redirect=https%%3A%%2F%%2Fshop.example%%2F%%3Fid%%3D%s" % i[3], secrets=[i[3]])
    c.add(f, "empty parameters around the value", "GET", "/search?&&&v=%s&&" % m[6], secrets=[m[6]])
    c.add(f, "query on a POST whose body is harmless", "POST", "/submit?uid=%s" % i[4], body='{"ok":true}',
          content_type=JSON, secrets=[i[4]])
    c.add(f, "HMT permit number in the query", "GET", "/kyc?doc=%s" % HMT[1], secrets=[HMT[1]])
    c.add(f, "query with a fragment-looking %23 before the value", "GET", "/search?x=%%23%s" % m[7],
          secrets=[m[7]])


def jwt(payload):
    h = b64(js({"alg": "HS256", "typ": "JWT"}), url=True, pad=False)
    p = b64(js(payload), url=True, pad=False)
    return "%s.%s.%s" % (h, p, b64(b"signature-not-checked-by-anyone", url=True, pad=False))


def fam_headers(c):
    f = "headers"
    m, i = MOB, ID
    g = "GET"
    c.add(f, "Authorization: Bearer JWT whose payload carries the ID number", g, "/me",
          headers=[["Authorization", "Bearer " + jwt({"sub": i[0], "iat": 1700000000})]], secrets=[i[0]])
    c.add(f, "Authorization: Basic base64(mobile:password)", g, "/me",
          headers=[["Authorization", "Basic " + b64("%s:hunter2" % m[0])]], secrets=[m[0]])
    c.add(f, "Authorization: Basic base64(ID:password)", g, "/me",
          headers=[["Authorization", "Basic " + b64("%s:pw" % i[1])]], secrets=[i[1]])
    c.add(f, "Referer with a query string carrying the mobile", g, "/pixel.gif",
          headers=[["Referer", "https://shop.example/checkout?phone=%s" % m[1]]], secrets=[m[1]])
    c.add(f, "User-Agent with an embedded user id", g, "/ping",
          headers=[["User-Agent", "ShopApp/5.2 (Android 14; uid %s)" % i[2]]], secrets=[i[2]])
    c.add(f, "From header with the mobile as the mailbox", g, "/ping",
          headers=[["From", "%s@sms.example.cn" % m[2]]], secrets=[m[2]])
    c.add(f, "Via with the mobile as the pseudonym", g, "/ping", headers=[["Via", "1.1 %s.relay" % m[3]]],
          secrets=[m[3]])
    c.add(f, "Forwarded for= carrying the ID number", g, "/ping",
          headers=[["Forwarded", 'for="%s";proto=https' % i[3]]], secrets=[i[3]])
    c.add(f, "If-None-Match ETag holding the ID number", g, "/profile",
          headers=[["If-None-Match", '"%s"' % i[4]]], secrets=[i[4]])
    c.add(f, "X-Forwarded-For with the mobile appended", g, "/ping",
          headers=[["X-Forwarded-For", "10.0.0.1, %s" % m[4]]], secrets=[m[4]])
    c.add(f, "W3C traceparent whose trace-id ends in the mobile digits", g, "/ping",
          headers=[["traceparent", "00-000000000000000000000%s-00f067aa0ba902b7-01" % m[5]]], secrets=[m[5]])
    c.add(f, "B3 trace header carrying the ID number", g, "/ping", headers=[["X-B3-TraceId", i[5]]],
          secrets=[i[5]])
    c.add(f, "custom Phone: header", g, "/ping", headers=[["Phone", m[6]]], secrets=[m[6]])
    c.add(f, "custom Id-Card header", g, "/ping", headers=[["Id-Card", i[6]]], secrets=[i[6]])
    c.add(f, "the ID number as a header NAME", g, "/ping", headers=[[i[7], "1"]], secrets=[i[7]])
    c.add(f, "the mobile inside an X- header NAME", g, "/ping", headers=[["X-U-%s" % m[7], "yes"]],
          secrets=[m[7]])
    c.add(f, "X-Request-Id carrying the mobile", g, "/ping", headers=[["X-Request-Id", m[8]]], secrets=[m[8]])
    c.add(f, "X-Trace-Id carrying the ID number", g, "/ping", headers=[["X-Trace-Id", i[8]]], secrets=[i[8]])
    c.add(f, "Digest username= carrying the mobile", g, "/me",
          headers=[["Authorization", 'Digest username="%s", realm="api", nonce="abc", uri="/me", '
                    'response="0123456789abcdef0123456789abcdef"' % m[9]]], secrets=[m[9]])
    # Hop-by-hop: a proxy may consume it (200, nothing leaves) or block; never forward it.
    c.add(f, "Proxy-Authorization: Basic with the ID number", g, "/ping",
          headers=[["Proxy-Authorization", "Basic " + b64("%s:x" % i[9])]], secrets=[i[9]], status=[200, 451],
          consumed=True)
    c.add(f, "Origin naming a per-user subdomain", g, "/ping",
          headers=[["Origin", "https://%s.users.example" % m[0]]], secrets=[m[0]])
    c.add(f, "Warning header with a quoted ID number", g, "/ping",
          headers=[["Warning", '199 - "%s"' % i[0]]], secrets=[i[0]])
    c.add(f, "Accept-Language with a private-use tag holding digits", g, "/ping",
          headers=[["Accept-Language", "zh-CN, x-%s;q=0.5" % m[1]]], secrets=[m[1]])
    c.add(f, "Cookie with the ID number in a non-obvious name", g, "/ping",
          headers=[["Cookie", "lang=zh; _ga=GA1.2.%s" % i[1]]], secrets=[i[1]])
    c.add(f, "Link header with the mobile in a URI", g, "/ping",
          headers=[["Link", "<https://cdn.example/u/%s>; rel=preload" % m[2]]], secrets=[m[2]])
    c.add(f, "the ID number in a second, repeated custom header", g, "/ping",
          headers=[["X-Note", "ok"], ["X-Note", i[2]]], secrets=[i[2]])
    c.add(f, "Prefer header with an extension parameter", g, "/ping",
          headers=[["Prefer", "return=minimal; subject=%s" % i[3]]], secrets=[i[3]])


def fam_method_host(c):
    f = "method_host"
    m, i = MOB, ID
    st_m = [400, 405, 451, 501]
    c.add(f, "the mobile as the method token", m[0], "/x", secrets=[m[0]], status=[200] + st_m)
    c.add(f, "the ID number as the method token", i[0], "/x", secrets=[i[0]], status=st_m)
    c.add(f, "method token with the ID number glued to GET", "GET" + i[1], "/x", secrets=[i[1]], status=st_m)
    c.add(f, "WebDAV-looking method with the ID number", "PROPFIND-" + i[2], "/x", secrets=[i[2]],
          status=st_m)
    c.add(f, "custom method X-<mobile>", "X-" + m[1], "/x", secrets=[m[1]], status=[200] + st_m)
    c.add(f, "caller's Host on the path-only route: the mobile as a subdomain (echoed in X-Forwarded-Host)",
          "GET", PFX + "ping", host="%s.partner.example" % m[2], secrets=[m[2]], status=[200, 400, 451])
    c.add(f, "caller's Host on the path-only route: the ID number as a subdomain", "GET", PFX + "ping",
          host="%s.partner.example" % i[3], secrets=[i[3]], status=[400, 451])
    c.add(f, "Host with the ID number and a port on the path-only route", "POST", PFX + "ping",
          host="u-%s.partner.example:8443" % i[4], body="{}", content_type=JSON, secrets=[i[4]],
          status=[400, 451])
    c.add(f, "dashed mobile as a Host label on the path-only route", "GET", PFX + "ping",
          host="%s-%s-%s.partner.example" % (m[3][:3], m[3][3:7], m[3][7:]), secrets=[m[3]],
          status=[200, 400, 451])
    c.add(f, "absolute-form target whose authority carries the mobile (path-only route)", "GET",
          "http://%s.partner.example%sping" % (m[4], PFX), host=PHOST, secrets=[m[4]], status=[200, 400, 451])
    c.add(f, "client-sent X-Forwarded-Host with the ID number", "GET", PFX + "ping",
          headers=[["Host", PHOST], ["X-Forwarded-Host", "%s.example" % i[5]]], host=None, secrets=[i[5]],
          status=[200, 400, 451], consumed=True)
    c.add(f, "client-sent Forwarded: host= with the mobile", "GET", PFX + "ping",
          headers=[["Host", PHOST], ["Forwarded", "host=%s.example;proto=http" % m[5]]], host=None,
          secrets=[m[5]], status=[200, 400, 451])
    c.add(f, "Host with the ID number on the host route's sibling name", "GET", "/ping",
          host="%s.%s" % (i[6], HOST), secrets=[i[6]], status=[400, 404, 421, 451])
    c.add(f, "the mobile as a lower-case method on the prefix route", m[6].lower(), PFX + "x", host=PHOST,
          secrets=[m[6]], status=[200] + st_m)
    c.add(f, "method token with the ID number on the prefix route", "POST_" + i[7], PFX + "x", host=PHOST,
          body="{}", content_type=JSON, secrets=[i[7]], status=st_m)
    c.add(f, "Host on the path-only route: ID number with a trailing dot", "GET", PFX + "ping",
          host="%s.partner.example." % i[8], secrets=[i[8]], status=[400, 451])
    c.add(f, "HMT permit in the caller's Host on the path-only route", "GET", PFX + "ping",
          host="%s.partner.example" % HMT[2], secrets=[HMT[2]], status=[400, 451])
    c.add(f, "Host in upper case with the ID number (check X upper)", "GET", PFX + "ping",
          host="ID%s.PARTNER.EXAMPLE" % ID[6], secrets=[ID[6]], status=[400, 451])
    c.add(f, "mobile as the Host's only label on the path-only route", "GET", PFX + "ping", host=m[7],
          secrets=[m[7]], status=[200, 400, 451])
    c.add(f, "ID number as a Host IPv6-looking literal is refused or blocked", "GET", PFX + "ping",
          host="[%s]" % i[9], secrets=[i[9]], status=[400, 451])
    c.add(f, "method token with the mobile and an empty JSON body on the host route", "SEND" + m[8], "/x",
          body="{}", content_type=JSON, secrets=[m[8]], status=[200] + st_m)
    c.add(f, "both: mobile in Host (path-only route) and ID in Forwarded", "GET", PFX + "ping",
          headers=[["Host", "%s.partner.example" % m[9]], ["Forwarded", "host=%s" % i[0]]], host=None,
          secrets=[m[9], i[0]], status=[400, 451])


def fam_multipart(c):
    f = "multipart"
    m, i = MOB, ID
    B = "----bgbound7MA4YWxkTrZu0gW"
    ctf = "multipart/form-data; boundary=%s" % B
    csv = csv_ids(i[:3], m[:3])

    def fd(name, filename=None):
        v = 'form-data; name="%s"' % name
        if filename:
            v += '; filename="%s"' % filename
        return ["Content-Disposition", v]

    def add(why, body, secrets, ct=ctf, target="/upload", **kw):
        c.add(f, why, "POST", target, body_bytes=body, content_type=ct, secrets=secrets, **kw)

    add("ID-card CSV upload as application/octet-stream file part",
        multipart(B, [([fd("file", "customers.csv"), ("Content-Type", "application/octet-stream")], csv)]),
        i[:3] + m[:3])
    add("ID number in a tEXt chunk of an image/png file part",
        multipart(B, [([fd("avatar", "a.png"), ("Content-Type", "image/png")], png_with_text(i[3]))]), [i[3]])
    add("ID number in the text of an application/pdf file part",
        multipart(B, [([fd("doc", "contract.pdf"), ("Content-Type", "application/pdf")],
                       pdf_with_text("ID %s" % i[4]))]), [i[4]])
    add("ID number in a part header",
        multipart(B, [([fd("x"), ("X-Id-Card", i[5])], "hello")]), [i[5]])
    add("ID number as the file name", multipart(B, [([fd("photo", "%s.jpg" % i[6]),
                                                     ("Content-Type", "image/jpeg")], b"\xff\xd8\xff\xe0")]),
        [i[6]])
    add("mobile as the field name", multipart(B, [([fd(m[3])], "1")]), [m[3]])
    add("Content-Transfer-Encoding: base64 text part with the ID number",
        multipart(B, [([fd("note"), ("Content-Type", TEXT), ("Content-Transfer-Encoding", "base64")],
                       b64("customer id %s" % i[7]))]), [i[7]])
    add("Content-Transfer-Encoding: quoted-printable with every digit as =3X",
        multipart(B, [([fd("note"), ("Content-Type", TEXT), ("Content-Transfer-Encoding", "quoted-printable")],
                       "id " + "".join("=%02X" % ord(ch) for ch in i[8]))]), [i[8]])
    decoy = ("--%s\r\n" % B).encode() + b'Content-Disposition: form-data; name="a"\r\n\r\nok\r\n' + \
        ("--%s--\r\n" % B).encode() + \
        multipart(B, [([fd("b")], "id=%s" % i[9])])
    add("decoy close delimiter: a part after the first --boundary--", decoy, [i[9]])
    add("ID number in the preamble",
        multipart(B, [([fd("a")], "ok")], preamble="ID %s" % i[0]), [i[0]])
    add("mobile in the epilogue", multipart(B, [([fd("a")], "ok")], epilogue="tel %s\r\n" % m[4]), [m[4]])
    B2 = "realboundary42"
    add("duplicate boundary= parameters: the body uses the second",
        multipart(B2, [([fd("id_card")], i[1])]),
        [i[1]], ct="multipart/form-data; boundary=decoy99; boundary=%s" % B2, status=[400, 451])
    inner_b = "innerMixed17"
    inner = multipart(inner_b, [([("Content-Disposition", 'attachment; filename="ids.txt"'),
                                  ("Content-Type", TEXT)], "id %s" % i[2])])
    add("nested multipart/mixed inside a form-data part (RFC 2388 multiple files)",
        multipart(B, [([fd("files"), ("Content-Type", "multipart/mixed; boundary=%s" % inner_b)], inner)]),
        [i[2]])
    add("text/csv file part (compliance field rules must reach file parts)",
        multipart(B, [([fd("f", "x.csv"), ("Content-Type", "text/csv")], csv_ids(i[3:5], m[5:7]))]),
        i[3:5] + m[5:7])
    add("JSON labelled application/octet-stream in a file part",
        multipart(B, [([fd("payload", "p.bin"), ("Content-Type", "application/octet-stream")],
                       js({"id_no": i[5]}))]), [i[5]])
    add("stored (uncompressed) zip of an ID-card CSV as application/zip",
        multipart(B, [([fd("archive", "batch.zip"), ("Content-Type", "application/zip")],
                       zip_stored("ids.csv", csv_ids([i[6]], [m[7]])))]), [i[6], m[7]])
    add("RFC 5987 filename*= with the ID number",
        multipart(B, [([("Content-Disposition", "form-data; name=\"f\"; filename*=UTF-8''%s.csv" % i[7]),
                        ("Content-Type", TEXT)], "x")]), [i[7]])
    add("quoted boundary parameter", multipart(B2, [([fd("idno")], i[8])]), [i[8]],
        ct='multipart/form-data; boundary="%s"' % B2)
    add("top-level multipart/mixed", multipart(B, [([("Content-Type", TEXT)], "ID %s" % i[9])]), [i[9]],
        ct="multipart/mixed; boundary=%s" % B)
    add("gzip-compressed CSV in a part with a part-level Content-Encoding",
        multipart(B, [([fd("f", "c.csv.gz"), ("Content-Type", "text/csv"), ("Content-Encoding", "gzip")],
                       gz(csv_ids([i[0]], [m[8]]).encode()))]), [i[0], m[8]])
    add("multipart/related with the ID number in the root part",
        multipart(B, [([("Content-Type", JSON)], js({"id_no": i[1]}))]), [i[1]],
        ct="multipart/related; boundary=%s; type=\"application/json\"" % B)
    add("UTF-16LE text part", multipart(B, [([fd("note"), ("Content-Type", "text/plain; charset=utf-16le")],
                                            ("身份证 %s" % i[2]).encode("utf-16-le"))]), [i[2]])
    add("LF-only line endings (no CR) in the multipart body",
        multipart(B, [([fd("idno")], i[3])], nl="\n"), [i[3]])
    add("mobile in an octet-stream part", multipart(B, [([fd("f", "m.bin"),
                                                         ("Content-Type", "application/octet-stream")],
                                                        "tel:%s" % m[9])]), [m[9]])
    add("multipart on the prefix route: ID-card CSV as octet-stream",
        multipart(B, [([fd("file", "c.csv"), ("Content-Type", "application/octet-stream")],
                       csv_ids([i[4]], [m[0]]))]), [i[4], m[0]], target=PFX + "upload", host=PHOST)
    add("boundary parameter in upper case (BOUNDARY=)", multipart(B2, [([fd("idno")], i[5])]), [i[5]],
        ct="multipart/form-data; BOUNDARY=%s" % B2)


def fam_content_encoding(c):
    f = "content_encoding"
    m, i = MOB, ID
    doc = lambda k, v: js({k: v}).encode()  # noqa: E731

    def add(why, body, secrets, headers, status=None):
        c.add(f, why, "POST", "/ingest", headers=headers, body_bytes=body, secrets=secrets, status=status)

    add("gzip body labelled text/plain, no Content-Encoding", gz(doc("id_no", i[0])), [i[0]],
        [["Content-Type", TEXT]])
    add("gzip body with no Content-Type and no Content-Encoding", gz(doc("id_no", i[1])), [i[1]], [])
    add("zlib (deflate) body labelled text/plain", zlib.compress(doc("id_no", i[2])), [i[2]],
        [["Content-Type", TEXT]])
    add("raw deflate under Content-Encoding: deflate", raw_deflate(doc("id_no", i[3])), [i[3]],
        [["Content-Type", JSON], ["Content-Encoding", "deflate"]])
    add("gzip inside gzip, one gzip label", gz(gz(doc("id_no", i[4]))), [i[4]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip"]])
    add("gzip inside gzip, labelled gzip, gzip", gz(gz(doc("id_no", i[5]))), [i[5]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip, gzip"]])
    add("two Content-Encoding headers: identity then gzip", gz(doc("id_no", i[6])), [i[6]],
        [["Content-Type", JSON], ["Content-Encoding", "identity"], ["Content-Encoding", "gzip"]], ST_400)
    add("two Content-Encoding headers: gzip then identity", gz(doc("id_no", i[7])), [i[7]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip"], ["Content-Encoding", "identity"]], ST_400)
    add("second Content-Type header: image/png then application/json", doc("id_no", i[8]), [i[8]],
        [["Content-Type", "image/png"], ["Content-Type", JSON]], ST_400)
    add("second Content-Type header: application/json then application/octet-stream", doc("id_no", i[9]),
        [i[9]], [["Content-Type", JSON], ["Content-Type", "application/octet-stream"]], ST_400)
    add("br label on a body that is plain JSON", doc("id_no", i[0]), [i[0]],
        [["Content-Type", JSON], ["Content-Encoding", "br"]])
    add("zstd label on a gzip body", gz(doc("id_no", i[1])), [i[1]],
        [["Content-Type", JSON], ["Content-Encoding", "zstd"]])
    add("x-gzip label", gz(doc("id_no", i[2])), [i[2]], [["Content-Type", JSON], ["Content-Encoding", "x-gzip"]])
    add("GZIP label in upper case", gz(doc("id_no", i[3])), [i[3]],
        [["Content-Type", JSON], ["Content-Encoding", "GZIP"]])
    add("identity label on a gzip body", gz(doc("id_no", i[4])), [i[4]],
        [["Content-Type", JSON], ["Content-Encoding", "identity"]])
    add("compress (LZW) label on a plain body", doc("id_no", i[5]), [i[5]],
        [["Content-Type", JSON], ["Content-Encoding", "compress"]])
    add("ID number in the gzip header's FNAME field (body itself harmless)",
        gzip_with_name(b'{"ok":true}', fname="%s.json" % i[6]), [i[6]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip"]])
    add("mobile in the gzip header's FCOMMENT field", gzip_with_name(b'{"ok":true}', comment="tel %s" % m[0]),
        [m[0]], [["Content-Type", JSON], ["Content-Encoding", "gzip"]])
    add("plain text after the end of the gzip member", gz(b'{"ok":true}') + ("id %s" % i[7]).encode(), [i[7]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip"]])
    add("two gzip members: the first harmless, the second with the ID number",
        gz(b'{"ok":true}') + gz(doc("id_no", i[8])), [i[8]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip"]])
    add("deflate label on gzip bytes", gz(doc("id_no", i[9])), [i[9]],
        [["Content-Type", JSON], ["Content-Encoding", "deflate"]])
    add("gzip label on zlib bytes", zlib.compress(doc("phone", m[1])), [m[1]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip"]])
    add("gzip body labelled application/octet-stream with the mobile", gz(doc("phone", m[2])), [m[2]],
        [["Content-Type", "application/octet-stream"]])
    add("Content-Encoding with parameters-looking junk", gz(doc("id_no", i[0])), [i[0]],
        [["Content-Type", JSON], ["Content-Encoding", "gzip;q=1"]])
    add("gzip of a form body labelled form-urlencoded, no Content-Encoding",
        gz(("idno=%s" % i[1]).encode()), [i[1]], [["Content-Type", FORM]])
    c.add(f, "chunk extension carrying the ID number", "POST", "/ingest",
          headers=[["Content-Type", JSON], ["Transfer-Encoding", "chunked"]],
          body="b;id=%s\r\n{\"ok\":true}\r\n0\r\n\r\n" % i[2], secrets=[i[2]], status=[200, 400, 451],
          consumed=True)
    c.add(f, "chunked trailer field carrying the ID number", "POST", "/ingest",
          headers=[["Content-Type", JSON], ["Transfer-Encoding", "chunked"], ["Trailer", "X-Id"]],
          body="b\r\n{\"ok\":true}\r\n0\r\nX-Id: %s\r\n\r\n" % i[3], secrets=[i[3]], status=[200, 400, 451],
          consumed=True)
    c.add(f, "Transfer-Encoding: gzip, chunked (transfer-coding compression)", "POST", "/ingest",
          headers=[["Content-Type", JSON], ["Transfer-Encoding", "gzip, chunked"]],
          body_bytes=(("%x\r\n" % len(gz(doc("id_no", i[4])))).encode() + gz(doc("id_no", i[4])) +
                      b"\r\n0\r\n\r\n"), secrets=[i[4]], status=[400, 451, 501])


def fam_charset(c):
    f = "charset"
    m, i = MOB, ID
    t = "身份证号码 %s 手机 %s"

    def add(why, body, secrets, ct, status=None):
        c.add(f, why, "POST", "/notes", body_bytes=body, content_type=ct, secrets=secrets, status=status)

    add("UTF-16LE with BOM under text/plain", (t % (i[0], m[0])).encode("utf-16"), [i[0], m[0]], TEXT)
    add("UTF-16LE without BOM under text/plain", (t % (i[1], m[1])).encode("utf-16-le"), [i[1], m[1]], TEXT)
    add("UTF-16BE with BOM under text/plain", b"\xfe\xff" + (t % (i[2], m[2])).encode("utf-16-be"),
        [i[2], m[2]], TEXT)
    add("UTF-16BE without BOM under text/plain", (t % (i[3], m[3])).encode("utf-16-be"), [i[3], m[3]], TEXT)
    add("UTF-32LE with BOM under text/plain", (t % (i[4], m[4])).encode("utf-32"), [i[4], m[4]], TEXT)
    add("UTF-32BE without BOM under text/plain", (t % (i[5], m[5])).encode("utf-32-be"), [i[5], m[5]], TEXT)
    add("JSON in UTF-16LE with BOM under application/json", js({"id_no": i[6]}).encode("utf-16"), [i[6]], JSON)
    add("JSON in UTF-16BE without BOM, no charset (RFC 4627 detection)", js({"id_no": i[7]}).encode("utf-16-be"),
        [i[7]], JSON)
    add("JSON in UTF-32LE under application/json; charset=utf-32",
        js({"phone": m[6]}).encode("utf-32-le"), [m[6]], "application/json; charset=utf-32")
    add("GBK text with full-width digits (A3B0-A3B9 bytes, no ASCII digit)",
        ("身份证：%s" % i[8].translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})).encode("gbk"),
        [i[8]], "text/plain; charset=gbk")
    add("GB18030 JSON with full-width digits", js({"备注": "手机" + m[7].translate(
        {ord(d): 0xFF10 + int(d) for d in "0123456789"})}).encode("gb18030"), [m[7]],
        "application/json; charset=gb18030")
    add("UTF-7 with every digit in base64 mode under text/plain", ("id " + utf7_digits(i[9])).encode(), [i[9]],
        "text/plain; charset=utf-7")
    add("UTF-7 inside a JSON string", js({"note": utf7_digits(i[0])}).encode(), [i[0]],
        "application/json; charset=utf-7")
    add("charset label says utf-8, bytes are UTF-16LE", (t % (i[1], m[8])).encode("utf-16-le"), [i[1], m[8]],
        "text/plain; charset=utf-8")
    add("form body in UTF-16LE", ("idno=%s" % i[2]).encode("utf-16-le"), [i[2]], FORM + "; charset=utf-16le")
    add("Big5 with full-width digits", ("身分證 %s" % i[3].translate(
        {ord(d): 0xFF10 + int(d) for d in "0123456789"})).encode("big5"), [i[3]], "text/plain; charset=big5")
    add("Shift_JIS with full-width digits", ("ID %s" % i[4].translate(
        {ord(d): 0xFF10 + int(d) for d in "0123456789"})).encode("shift_jis"), [i[4]],
        "text/plain; charset=shift_jis")
    add("EBCDIC (IBM037) text: digits are bytes F0-F9", ("ID %s" % i[5]).encode("cp037"), [i[5]],
        "text/plain; charset=ibm037")
    add("UTF-16LE without BOM and with no Content-Type at all", (t % (i[6], m[9])).encode("utf-16-le"),
        [i[6], m[9]], None)
    add("UTF-16LE behind a leading odd byte (misaligned)", b"\n" + (t % (i[7], m[0])).encode("utf-16-le"),
        [i[7], m[0]], TEXT)
    add("UTF-32BE JSON with BOM", b"\x00\x00\xfe\xff" + js({"id_no": i[8]}).encode("utf-32-be"), [i[8]], JSON)
    add("mobile alone in UTF-16LE text", ("tel %s" % m[1]).encode("utf-16-le"), [m[1]], TEXT)
    add("UTF-16LE under application/xml", ('<r><id>%s</id></r>' % i[9]).encode("utf-16"), [i[9]],
        "application/xml")


def fam_json_shapes(c):
    f = "json_shapes"
    m, i = MOB, ID

    def add(why, body, secrets, ct, status=None, **kw):
        c.add(f, why, "POST", "/events", body=body, content_type=ct, secrets=secrets, status=status, **kw)

    add("JSON sent as text/plain", js({"id_no": i[0]}), [i[0]], TEXT)
    add("JSON sent as application/xml", js({"id_no": i[1]}), [i[1]], "application/xml")
    add("JSON sent as application/x-www-form-urlencoded", js({"id_no": i[2]}), [i[2]], FORM)
    add("JSON sent as application/octet-stream", js({"id_no": i[3]}), [i[3]], "application/octet-stream")
    add("JSON sent with no Content-Type", js({"id_no": i[4]}), [i[4]], None)
    add("JSON sent as text/html", js({"id_no": i[5]}), [i[5]], "text/html")
    add("a top-level JSON string holding escaped JSON", js(js({"id_no": i[6]})), [i[6]], JSON)
    add("\\u escapes for every digit of the ID number",
        '{"id_no":"%s"}' % "".join("\\u%04x" % ord(ch) for ch in i[7]), [i[7]], JSON)
    add("\\u escapes for the mobile under a neutral key",
        '{"note":"%s"}' % "".join("\\u%04X" % ord(ch) for ch in m[0]), [m[0]], JSON)
    add("key escaped too: \\u0069d_no", '{"\\u0069\\u0064_no":"%s"}' % i[8], [i[8]], JSON)
    add("BOM before JSON inside a JSON string", js({"payload": "\ufeff" + js({"id_no": i[9]})}), [i[9]], JSON)
    add("prefix= before JSON (form-looking body)", "data=" + js({"id_no": i[0]}), [i[0]], FORM)
    add("prefix= before JSON under text/plain", "payload=" + js({"phone": m[1]}), [m[1]], TEXT)
    s = {"id_no": i[1]}
    for _ in range(4):
        s = js(s)
    add("JSON nested four levels deep in strings", js({"envelope": s}), [i[1]], JSON)
    add("JSONP callback around JSON", "cb(%s);" % js({"phone": m[2]}), [m[2]], "application/javascript")
    add("NDJSON: the second line carries the ID number", js({"ok": 1}) + "\n" + js({"id_no": i[2]}) + "\n",
        [i[2]], "application/x-ndjson")
    add("JSON with a comment (not strict JSON)", '{"a":1, /* note */ "id_no":"%s"}' % i[3], [i[3]], JSON)
    add("duplicate keys: the first harmless", '{"id_no":"n/a","id_no":"%s"}' % i[4], [i[4]], JSON)
    deep = '"%s"' % i[5]
    for _ in range(40):
        deep = "[" + deep + "]"
    add("ID number forty arrays deep", deep, [i[5]], JSON)
    add("the ID number as a JSON key", js({i[6]: {"ok": True}}), [i[6]], JSON)
    add("vendor +json type", js({"id_no": i[7]}), [i[7]], "application/vnd.api+json")
    add("XSSI prefix )]}' before JSON", ")]}'\n" + js({"id_no": i[8]}), [i[8]], JSON)
    add("JSON in an XML CDATA section", "<r><![CDATA[%s]]></r>" % js({"id_no": i[9]}), [i[9]], "application/xml")
    add("GraphQL request whose variables carry the mobile",
        js({"query": "mutation($p:String){bind(p:$p)}", "variables": {"p": m[3]}}), [m[3]], "application/graphql")
    add("JSON array of strings as text/plain", js([m[4], "x"]), [m[4]], TEXT)
    add("JSON with a 4 KiB whitespace run before the value", '{"id_no":' + " " * 4096 + '"%s"}' % i[0], [i[0]], JSON)


def fam_separators(c):
    f = "separators"
    m, i = MOB, ID

    def mob(why, v, sec, ct=JSON, key="note"):
        c.add(f, why, "POST", "/contacts", body=js({key: v}) if ct == JSON else v, content_type=ct, secrets=[sec])

    a = m[0]
    g = (a[:3], a[3:7], a[7:])
    mob("dots 138.1234.5678", ".".join(g), a)
    mob("slashes 138/1234/5678", "%s/%s/%s" % (m[1][:3], m[1][3:7], m[1][7:]), m[1])
    mob("underscores", "%s_%s_%s" % (m[2][:3], m[2][3:7], m[2][7:]), m[2])
    mob("commas", "%s,%s,%s" % (m[3][:3], m[3][3:7], m[3][7:]), m[3])
    mob("(138)1234-5678", "(%s)%s-%s" % (m[4][:3], m[4][3:7], m[4][7:]), m[4])
    mob("tabs between groups", "%s\t%s\t%s" % (m[5][:3], m[5][3:7], m[5][7:]), m[5])
    mob("newlines between groups (JSON \\n)", "%s\n%s\n%s" % (m[6][:3], m[6][3:7], m[6][7:]), m[6])
    mob("literal newlines between groups in text/plain", "tel %s\r\n%s\r\n%s" % (m[7][:3], m[7][3:7], m[7][7:]),
        m[7], ct=TEXT)
    mob("double spaces", "%s  %s  %s" % (m[8][:3], m[8][3:7], m[8][7:]), m[8])
    mob("a dash between every digit", "-".join(m[9]), m[9])
    mob("a space between every digit", " ".join(m[0]), m[0])
    mob("+86 with dots", "+86.%s.%s.%s" % (m[1][:3], m[1][3:7], m[1][7:]), m[1])
    mob("0086 with slashes", "0086/%s/%s/%s" % (m[2][:3], m[2][3:7], m[2][7:]), m[2])
    mob("+86 (138) 1234 5678", "+86 (%s) %s %s" % (m[3][:3], m[3][3:7], m[3][7:]), m[3])
    mob("a dot between every digit", ".".join(m[4]), m[4])
    mob("middle dots (U+00B7) between groups", "\u00b7".join((m[5][:3], m[5][3:7], m[5][7:])), m[5])
    mob("ideographic space (U+3000) between groups", "\u3000".join((m[6][:3], m[6][3:7], m[6][7:])), m[6])

    def idv(why, v, sec, ct=JSON):
        c.add(f, why, "POST", "/contacts", body=js({"note": v}) if ct == JSON else v, content_type=ct,
              secrets=[sec])

    idv("ID number with dots between region, birth date and sequence",
        "%s.%s.%s" % (i[0][:6], i[0][6:14], i[0][14:]), i[0])
    idv("ID number with slashes", "%s/%s/%s/%s" % (i[1][:6], i[1][6:10], i[1][10:14], i[1][14:]), i[1])
    idv("ID number grouped in fours like a card", " ".join(i[2][k:k + 4] for k in range(0, 18, 4)), i[2])
    idv("a dash between every digit of the ID number", "-".join(i[3]), i[3])
    idv("ID number with underscores (check X)", "%s_%s_%s" % (i[6][:6], i[6][6:14], i[6][14:]), i[6])
    idv("ID number with tabs in text/plain", "ID\t%s\t%s\t%s" % (i[4][:6], i[4][6:14], i[4][14:]), i[4], ct=TEXT)
    idv("ID number with newlines in text/plain", "%s\n%s\n%s" % (i[5][:6], i[5][6:14], i[5][14:]), i[5], ct=TEXT)
    idv("ID number with double spaces", "%s  %s  %s" % (i[7][:6], i[7][6:14], i[7][14:]), i[7])
    idv("ID number with commas", "%s,%s,%s" % (i[8][:6], i[8][6:14], i[8][14:]), i[8])
    idv("ID number with dashes and a space", "%s - %s - %s" % (i[9][:6], i[9][6:14], i[9][14:]), i[9])


_DIGITS = {
    "arabic_indic": 0x0660, "ext_arabic_indic": 0x06F0, "devanagari": 0x0966, "bengali": 0x09E6,
    "thai": 0x0E50, "fullwidth": 0xFF10, "math_bold": 0x1D7CE, "math_double": 0x1D7D8,
    "math_mono": 0x1D7F6, "tibetan": 0x0F20, "myanmar": 0x1040, "mongolian": 0x1810,
}
_SUP = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_SUB = "₀₁₂₃₄₅₆₇₈₉"
_CIRCLED = "⓪①②③④⑤⑥⑦⑧⑨"


def script(s, base):
    return "".join(chr(base + int(ch)) if ch.isdigit() else ch for ch in s)


def fam_unicode(c):
    f = "unicode"
    m, i = MOB, ID
    k = 0

    def add(why, v, sec, ct=JSON):
        c.add(f, why, "POST", "/profile", body=js({"note": v}) if ct == JSON else v, content_type=ct,
              secrets=[sec])

    for name, base in sorted(_DIGITS.items()):
        v = m[k % len(m)] if k % 2 == 0 else i[k % len(i)]
        add("%s digits (Unicode Nd)" % name.replace("_", " "), script(v, base), v)
        k += 1
    add("superscript digits", "".join(_SUP[int(ch)] for ch in m[2]), m[2])
    add("subscript digits", "".join(_SUB[int(ch)] for ch in m[3]), m[3])
    add("circled digits", "".join(_CIRCLED[int(ch)] for ch in i[4][:17]) + i[4][17], i[4])
    add("mixed scripts, one per digit", "".join(
        chr(list(_DIGITS.values())[n % len(_DIGITS)] + int(ch)) for n, ch in enumerate(m[5])), m[5])
    add("full-width ID number with full-width X", script(i[6][:17], 0xFF10) + "\uff38", i[6])
    for why, sep, v in (("zero-width space U+200B between digits", "\u200b", m[6]),
                        ("zero-width joiner U+200D between digits", "\u200d", i[7]),
                        ("soft hyphen U+00AD between digits", "\u00ad", m[7]),
                        ("word joiner U+2060 between digits", "\u2060", i[8]),
                        ("BOM U+FEFF between digits", "\ufeff", m[8]),
                        ("Hangul filler U+3164 between digits", "\u3164", i[9]),
                        ("variation selector U+FE0F after each digit", "\ufe0f", m[9]),
                        ("combining acute U+0301 on each digit", "\u0301", i[0]),
                        ("tag characters (U+E0030 range) between digits", "\U000e0020", m[0]),
                        ("bidi isolates U+2066/U+2069 between digits", "\u2066\u2069", i[1])):
        add(why, "".join(ch + sep for ch in v), v)
    add("keycap sequences 1\ufe0f\u20e3 (digit + VS16 + U+20E3)", "".join(ch + "\ufe0f\u20e3" for ch in m[1]), m[1])
    add("right-to-left override around the mobile in text/plain", "tel \u202e%s\u202c" % m[2], m[2],
        ct="text/plain; charset=utf-8")
    add("full-width digits in a form field", "note=" + script(i[2], 0xFF10), i[2], ct=FORM)
    add("Arabic-Indic digits in a query-like text body", "id=" + script(i[3], 0x0660), i[3], ct=TEXT)


def fam_string_encodings(c):
    f = "string_encodings"
    m, i = MOB, ID

    def add(why, body, sec, ct=JSON, **kw):
        c.add(f, why, "POST", "/submit", body=body, content_type=ct, secrets=sec, **kw)

    add("percent-encoded once inside a JSON string", js({"note": pct_all(m[0])}), [m[0]])
    add("percent-encoded twice inside a JSON string", js({"note": pct_twice(i[0])}), [i[0]])
    add("HTML decimal entities in a JSON string", js({"note": "".join("&#%d;" % ord(ch) for ch in m[1])}), [m[1]])
    add("HTML hex entities in text/html", "<p>%s</p>" % "".join("&#x%x;" % ord(ch) for ch in i[1]), [i[1]],
        ct="text/html")
    add("XML entities in an application/xml element",
        "<customer><idno>%s</idno></customer>" % "".join("&#x%X;" % ord(ch) for ch in i[2]), [i[2]],
        ct="application/xml")
    add("base64 (standard) of the ID number in a JSON string", js({"blob": b64(i[3])}), [i[3]])
    add("base64url unpadded of id:<ID> in a JSON string", js({"t": b64("id:" + i[4], url=True, pad=False)}), [i[4]])
    add("base64 of the mobile in a form field", "x=" + b64(m[2]).replace("=", "%3D"), [m[2]], ct=FORM)
    add("base64 of JSON in a JSON string", js({"data": b64(js({"id_no": i[5]}))}), [i[5]])
    add("hex of the ID number's ASCII in a JSON string", js({"h": i[6].encode().hex()}), [i[6]])
    add("upper-case hex of the mobile in a header", '{"ok":1}', [m[3]],
        headers=[["X-Data", m[3].encode().hex().upper()]])
    add("base64 of gzip of JSON in a JSON string", js({"z": b64(gz(js({"id_no": i[7]}).encode()))}), [i[7]])
    add("base64 twice", js({"b": b64(b64(i[8]))}), [i[8]])
    add("percent-encoded UTF-16LE", js({"u": "".join("%%%02X" % b for b in i[9].encode("utf-16-le"))}), [i[9]])
    add("JSON \\u escapes inside a form field", "note=" + "".join("%%5Cu%04x" % ord(ch) for ch in i[0]), [i[0]],
        ct=FORM)
    add("base64url with - and _ of binary-prefixed data", js({"k": b64(b"\xfb\xff\xfe" + i[1].encode(), url=True)}),
        [i[1]])
    add("quoted-printable in a text/plain body", "id " + "".join("=%02X" % ord(ch) for ch in i[2]), [i[2]], ct=TEXT)
    add("C-style \\x escapes in text/plain", "id " + "".join("\\x%02x" % ord(ch) for ch in i[3]), [i[3]], ct=TEXT)
    add("base64 of the mobile in an X- header", '{"ok":1}', [m[4]], headers=[["X-Ctx", b64("tel=" + m[4])]])
    add("hex with colons (like a MAC) of the mobile", js({"mac": ":".join("%02x" % b for b in m[5].encode())}),
        [m[5]])
    add("base64 of UTF-16LE of the ID number", js({"w": b64(i[4].encode("utf-16-le"))}), [i[4]])
    add("base64 split over MIME 4-char lines", js({"b": "\n".join(
        [b64("ID " + i[5])[k:k + 4] for k in range(0, len(b64("ID " + i[5])), 4)])}), [i[5]])
    add("percent-encoded once in a header value", '{"ok":1}', [i[6]], headers=[["X-Q", pct_all(i[6])]])
    add("HTML entities in a Referer-like header", '{"ok":1}', [m[6]],
        headers=[["X-Ref", "".join("&#%d;" % ord(ch) for ch in m[6])]])
    # A second pass, spellings the first did not think of.
    add("base32 (RFC 4648) of the mobile in a JSON string",
        js({"b32": base64.b32encode(m[7].encode()).decode()}), [m[7]])
    add("C octal escapes in text/plain", "tel " + "".join("\\%03o" % ord(ch) for ch in m[8]), [m[8]], ct=TEXT)
    add("ES6 \\u{..} escapes in text/plain", "id " + "".join("\\u{%x}" % ord(ch) for ch in i[7]), [i[7]],
        ct=TEXT)
    add("HTML entities with leading zeros", js({"n": "".join("&#00%d;" % ord(ch) for ch in m[9])}), [m[9]])
    add("the mobile in Chinese numerals", js({"note": "电话" + "".join(
        "〇一二三四五六七八九"[int(ch)] for ch in m[0])}), [m[0]])
    c.add(f, "IIS %u escapes in a query parameter", "POST",
          "/submit?q=" + "".join("%%u%04x" % ord(ch) for ch in i[8]), body='{"ok":1}',
          content_type=JSON, secrets=[i[8]])
    add("data: URI with base64 in a JSON string",
        js({"att": "data:text/plain;base64," + b64("id " + i[9])}), [i[9]])
    add("the mobile in an XML attribute", '<c tel="%s"/>' % m[1], [m[1]], ct="application/xml")


def fam_numbers(c):
    f = "numbers"
    m, i = MOB, ID

    def add(why, body, sec, ct=JSON):
        c.add(f, why, "POST", "/metrics", body=body, content_type=ct, secrets=sec)

    add("the mobile as a JSON integer", '{"n":%s}' % m[0], [m[0]])
    add("the mobile as a JSON float with .0", '{"n":%s.0}' % m[1], [m[1]])
    add("exponent form 1.3812345678e10", '{"n":%s.%se10}' % (m[2][0], m[2][1:]), [m[2]])
    add("exponent form with E+10", '{"n":%s.%sE+10}' % (m[3][0], m[3][1:]), [m[3]])
    add("integer with e0", '{"n":%se0}' % m[4], [m[4]])
    add("decimal point inside: 138123456.78e2", '{"n":%s.%se2}' % (m[5][:9], m[5][9:]), [m[5]])
    add("0.<mobile>e11", '{"n":0.%se11}' % m[6], [m[6]])
    add("negative integer", '{"n":-%s}' % m[7], [m[7]])
    add("number in an array", '{"v":[1,%s,3]}' % m[8], [m[8]])
    add("number nested four objects deep", '{"a":{"b":{"c":{"d":%s}}}}' % m[9], [m[9]])
    add("trailing zeros .000000", '{"n":%s.000000}' % m[0], [m[0]])
    add("1381234567.8e1", '{"n":%s.%se1}' % (m[1][:10], m[1][10:]), [m[1]])
    add("the ID number (numeric check digit) as a JSON integer", '{"n":%s}' % i[0], [i[0]])
    add("the ID number as a float with exponent", '{"n":%s.%se17}' % (i[1][0], i[1][1:]), [i[1]])
    add("mobile digits split into an array of groups", '{"p":[%s,%s,%s]}' % (m[2][:3], m[2][3:7], m[2][7:]),
        [m[2]])
    add("ID split into numeric groups", '{"p":[%s,%s,%s]}' % (i[2][:6], i[2][6:14], i[2][14:]), [i[2]])
    add("the mobile as a form number 13812345678.0", "n=%s.0" % m[3], [m[3]], ct=FORM)
    add("the mobile as a float in text/plain CSV", "ts,val\n1,%s.0\n" % m[4], [m[4]], ct="text/csv")
    add("the mobile as a JSON number under a neutral key with other numbers",
        '{"a":1.5,"b":%s,"c":-2}' % m[5], [m[5]])
    add("ID number as a number with a leading +? (invalid JSON)", '{"n":+%s}' % i[3], [i[3]])
    add("mobile with .0e0", '{"n":%s.0e0}' % m[6], [m[6]])
    add("ID number in a JSON array of numbers", "[%s]" % i[5], [i[5]])


def fam_glued(c):
    f = "glued"
    m, i = MOB, ID

    def add(why, v, sec, ct=JSON):
        c.add(f, why, "POST", "/notes", body=js({"note": v}) if ct == JSON else v, content_type=ct, secrets=sec)

    add("letters before and after: abc<mobile>xyz", "abc%sxyz" % m[0], [m[0]])
    add("ID<id>end", "ID%send" % i[0], [i[0]])
    add("tel glued in front", "tel%s" % m[1], [m[1]])
    add("letters after only", "%sabc" % m[2], [m[2]])
    add("one letter in front", "a%s" % m[3], [m[3]])
    add("the ID number as an e-mail local part", "user%s@example.com" % i[1], [i[1]])
    add("M<mobile>", "M%s" % m[4], [m[4]])
    add("file name glued", "file%s.csv" % i[2], [i[2]])
    add("the mobile twice, glued into 22 digits", m[5] + m[5], [m[5]])
    add("the ID number twice, glued into 36 characters", i[3] + i[3], [i[3]])
    add("the mobile glued after 86 (no plus)", "86%s" % m[6], [m[6]])
    add("the mobile glued after a leading zero", "0%s" % m[7], [m[7]])
    add("CJK text glued on both sides of the ID number", "姓名张三身份证%s号码" % i[4], [i[4]])
    add("CJK text glued on both sides of the mobile", "联系电话%s谢谢" % m[8], [m[8]])
    add("the ID number glued between digits of a timestamp", "1700000000%s" % i[5], [i[5]])
    add("the mobile inside a longer digit run", "2024%s99" % m[9], [m[9]])
    add("CN<id>X in a plain text body", "CN%sZZ" % i[6], [i[6]], ct=TEXT)
    add("uid_<id>_v2 in a form field", "ref=uid%sv2" % i[7], [i[7]], ct=FORM)
    add("hex-looking prefix 0x<mobile>", "0x%s" % m[0], [m[0]])
    add("the ID number after a letter and before digits", "k%s0001" % i[8], [i[8]])
    add("the mobile glued to a price", "CNY%s.00" % m[1], [m[1]])
    add("the HMT permit glued to letters", "HK%sHK" % HMT[0], [HMT[0]])


def fam_legacy_id(c):
    f = "legacy_id"
    L = LEGACY

    def add(why, sec, **kw):
        kw.setdefault("method", "POST")
        kw.setdefault("target", "/kyc")
        c.add(f, why, secrets=[sec], status=ST_ID, **kw)

    add("15-digit number under id_card", L[0], body=js({"id_card": L[0]}), content_type=JSON)
    add("15-digit number under 身份证号", L[1], body=js({"身份证号": L[1]}), content_type=JSON)
    add("15-digit number under a neutral key", L[2], body=js({"ref": L[2]}), content_type=JSON)
    add("15-digit number in free text", L[3], body=js({"note": "old card %s" % L[3]}), content_type=JSON)
    add("15-digit number in the path", L[4], method="GET", target="/users/%s" % L[4])
    add("15-digit number in the query", L[5], method="GET", target="/kyc?sfz=%s" % L[5])
    add("15-digit number in a header", L[6], method="GET", target="/kyc", headers=[["X-Id-Card", L[6]]])
    add("15-digit number in a form field", L[7], body="sfzh=%s" % L[7], content_type=FORM)
    add("15-digit number grouped 6-6-3", L[0], body=js({"id_card": "%s %s %s" % (L[0][:6], L[0][6:12], L[0][12:])}),
        content_type=JSON)
    add("15-digit number as a JSON integer", L[1], body='{"id_card":%s}' % L[1], content_type=JSON)
    add("15-digit number glued to letters", L[2], body=js({"note": "ID%send" % L[2]}), content_type=JSON)
    add("15-digit number in text/plain", L[3], body="身份证 %s" % L[3], content_type=TEXT)
    add("15-digit number in a CSV file part", L[4], body_bytes=multipart(
        "b15", [([("Content-Disposition", 'form-data; name="f"; filename="old.csv"'),
                  ("Content-Type", "text/csv")], "name,id\nZhang,%s\n" % L[4])]),
        content_type="multipart/form-data; boundary=b15")
    add("15-digit number with full-width digits", L[5], body=js({"id_card": script(L[5], 0xFF10)}),
        content_type=JSON)
    add("15-digit number in base64", L[6], body=js({"b": b64(L[6])}), content_type=JSON)
    add("15-digit number gzip-compressed as text/plain", L[7], body_bytes=gz(js({"id_card": L[7]}).encode()),
        content_type=TEXT)
    add("15-digit number under idNo in a nested object", L[0], body=js({"user": {"idNo": L[0]}}),
        content_type=JSON)
    add("15-digit number with a dash between every digit", L[1], body=js({"id_card": "-".join(L[1])}),
        content_type=JSON)
    add("15-digit number on the prefix route", L[2], target=PFX + "kyc", host=PHOST,
        body=js({"id_card": L[2]}), content_type=JSON)
    add("15-digit number percent-encoded in the query", L[3], method="GET", target="/kyc?x=%s" % pct_all(L[3]))
    add("15-digit number in UTF-16LE text", L[4], body_bytes=("身份证 %s" % L[4]).encode("utf-16-le"),
        content_type=TEXT)
    add("15-digit number with zero-width spaces", L[5], body=js({"id_card": "\u200b".join(L[5])}),
        content_type=JSON)


def fam_context_keys(c):
    f = "context_keys"
    m, i = MOB, ID
    keys = ["order_id", "order_no", "sku", "tracking_no", "trace_id", "version", "amount", "timestamp"]
    for n, k in enumerate(keys):
        c.add(f, "a fully valid ID number under the key %s" % k, "POST", "/orders",
              body=js({k: i[n % len(i)]}), content_type=JSON, secrets=[i[n % len(i)]])
        c.add(f, "an allocated mobile under the key %s" % k, "POST", "/orders",
              body=js({k: m[n % len(m)]}), content_type=JSON, secrets=[m[n % len(m)]])
    c.add(f, "the mobile in X-Request-Id", "GET", "/orders", headers=[["X-Request-Id", m[8]]], secrets=[m[8]])
    c.add(f, "the ID number in X-Trace-Id", "GET", "/orders", headers=[["X-Trace-Id", i[8]]], secrets=[i[8]])
    c.add(f, "the ID number as order_id in the query", "GET", "/orders?order_id=%s" % i[9], secrets=[i[9]])
    c.add(f, "the mobile as order_no in a form", "POST", "/orders", body="order_no=%s" % m[9], content_type=FORM,
          secrets=[m[9]])
    c.add(f, "camelCase orderId with the ID number", "POST", "/orders", body=js({"orderId": i[0]}),
          content_type=JSON, secrets=[i[0]])
    c.add(f, "txn_id with the ID number, nested", "POST", "/orders", body=js({"txn": {"txn_id": i[1]}}),
          content_type=JSON, secrets=[i[1]])
    c.add(f, "amount as a JSON number holding the mobile", "POST", "/orders", body='{"amount":%s}' % m[0],
          content_type=JSON, secrets=[m[0]])
    c.add(f, "timestamp as a JSON number holding the ID number", "POST", "/orders",
          body='{"timestamp":%s}' % i[2], content_type=JSON, secrets=[i[2]])


def fam_route_escape(c):
    f = "route_escape"
    m = MOB

    def add(why, target, host=PHOST, secrets=()):
        c.add(f, why, "GET", target, host=host, secrets=list(secrets), status=ST_400, nothing_arrives=True)

    P = PFX
    add("%2f-encoded slashes after ..", P + "..%2f..%2fadmin")
    add("%2e%2e segments", P + "%2e%2e/%2e%2e/admin")
    add("%2E%2E upper case", P + "%2E%2E/%2E%2E/admin")
    add("double-encoded dots %252e%252e", P + "%252e%252e/%252e%252e/admin")
    add("Tomcat ..;/", P + "..;/..;/admin")
    add("backslashes ..\\", P + "..\\..\\admin")
    add("encoded backslashes %5c", P + "%2e%2e%5c%2e%2e%5cadmin")
    add("the prefix's own slash encoded: /partner/v1%2f..", "/partner/v1%2f..%2f..%2fadmin")
    add("double-encoded slash ..%252f", P + "..%252f..%252fadmin")
    add("mixed .%2e", P + ".%2e/.%2e/admin")
    add("IIS %u002e", P + "%u002e%u002e/%u002e%u002e/admin")
    add("overlong UTF-8 slash %c0%af", P + "..%c0%af..%c0%afadmin")
    add("empty matrix segment then ..", P + ";/../../admin")
    add("doubled slashes around ..", P + "/..//..//admin")
    add("a deeper escape from a sub-directory", P + "x/..%2f..%2f..%2fadmin")
    add("NUL after ..", P + "..%00/..%00/admin")
    add("escape carrying a mobile to another upstream path", P + "..%2f..%2fusers%2f" + m[0], secrets=[m[0]])
    add("escape carrying an ID number", P + "%2e%2e/%2e%2e/id/" + ID[0], secrets=[ID[0]])
    add("Host port :0 on the host route", "/ping", host=HOST + ":0")
    add("Host port :99999 on the host route", "/ping", host=HOST + ":99999")
    add("Host port :65536", "/ping", host=HOST + ":65536")
    add("Host port past 2^32 (wraps to 80)", "/ping", host=HOST + ":4294967376")
    add("Host port with letters", "/ping", host=HOST + ":80abc")
    add("Host port negative", "/ping", host=HOST + ":-80")


def fam_disguise(c):
    """A third adversarial pass: shapes the first two families did not try."""
    f = "disguise"
    m, i = MOB, ID
    cjk = "〇一二三四五六七八九"
    fin = "零壹贰叁肆伍陆柒捌玖"

    def add(why, body, sec, ct=JSON, target="/v1/profile", **kw):
        c.add(f, why, "POST", target, body=body, content_type=ct, secrets=sec, **kw)

    add("the ID number split over two strings of a JSON array", js({"idn": [i[0][:10], i[0][10:]]}), [i[0]])
    add("the mobile as a JSON array of single digits", '{"d":[%s]}' % ",".join(m[0]), [m[0]])
    add("the mobile as an array of digit strings", js({"d": list(m[1])}), [m[1]])
    add("the ID number as a JSON array of single digits", js({"d": [int(ch) for ch in i[9]]}), [i[9]])
    add("the ID number's check character X as Cyrillic \u0425", js({"doc": i[6][:17] + "\u0425"}), [i[6]])
    add("the ID number's check character X as Greek \u03a7 in text",
        "holder " + i[6][:17] + "\u03a7 verified", [i[6]], ct=TEXT)
    add("HTML comments between the groups of a mobile", "<p>tel 138<!---->1234<!---->5678</p>".replace(
        "138", m[2][:3]).replace("1234", m[2][3:7]).replace("5678", m[2][7:]), [m[2]], ct="text/html")
    add("an SQL CONCAT of quoted groups", "UPDATE users SET phone = CONCAT('%s','%s','%s') WHERE id = 7;"
        % (m[3][:3], m[3][3:7], m[3][7:]), [m[3]], ct=TEXT)
    add("a JavaScript string concatenation", 'var t = "%s"+"%s"+"%s";' % (i[1][:6], i[1][6:14], i[1][14:]),
        [i[1]], ct="application/javascript")
    add("an SQL hex literal X'..' of the ID number", "INSERT INTO t VALUES (X'%s');" % i[2].encode().hex(),
        [i[2]], ct=TEXT)
    add("a callback URL in a JSON string, the mobile percent-encoded twice in its query",
        js({"next": "https://cb.example/return?tel=" + pct_twice(m[4])}), [m[4]])
    c.add(f, "a JWT whose payload holds the ID number, in a cookie", "GET", "/v1/profile",
          headers=[["Cookie", "theme=dark; sid=" + jwt({"uid": 7, "idn": i[3]})]], secrets=[i[3]])
    add("protobuf-like binary with the ID number's ASCII digits, as application/octet-stream",
        None, [i[4]], ct="application/octet-stream",
        body_bytes=b"\x08\x96\x01\x12\x12" + i[4].encode() + b"\x1a\x03abc\x20\x01")
    c.add(f, "base64url without padding of the ID number as a path segment", "GET",
          "/v1/people/" + b64(i[5], url=True, pad=False) + "/orders", secrets=[i[5]])
    c.add(f, "Chinese numerals percent-encoded in a query parameter", "GET",
          "/v1/lookup?q=" + pct_all_utf8("".join(cjk[int(ch)] for ch in m[5])), secrets=[m[5]])
    add("full-width digits then Chinese numerals",
        js({"note": "".join(chr(0xFF10 + int(ch)) for ch in m[6][:3]) + "".join(cjk[int(ch)] for ch in m[6][3:])}),
        [m[6]])
    add("the ID number in financial numerals in a form field",
        "memo=" + "".join(fin[int(ch)] if ch.isdigit() else ch for ch in i[7]), [i[7]], ct=FORM)
    add("the mobile as a JSON key", '{"%s": {"ok": true}}' % m[7], [m[7]])
    add("JSON \\/ escapes between the groups", '{"t":"%s\\/%s\\/%s"}' % (m[8][:3], m[8][3:7], m[8][7:]), [m[8]])
    add("exponent form inside a JSON string", js({"v": "%s.%sE10" % (m[9][0], m[9][1:])}), [m[9]])
    add("ideographic commas between the digits", js({"n": "\u3001".join(m[0])}), [m[0]])
    add("lower-case unpadded base32 of the mobile in a header", '{"ok":1}', [m[1]],
        headers=[["X-Sig", base64.b32encode(m[1].encode()).decode().lower().rstrip("=")]])
    c.add(f, "base32 of the ID number in a query parameter", "GET",
          "/v1/lookup?k=" + base64.b32encode(i[8].encode()).decode().rstrip("="), secrets=[i[8]])
    add("the mobile as a host label in a URL", js({"u": "http://%s.sms.example/hook" % m[2]}), [m[2]])
    add("spoken digits: yao for one, in groups", js({"note": "手机 " + " ".join(
        "".join("幺" if ch == "1" else cjk[int(ch)] for ch in g) for g in (m[3][:3], m[3][3:7], m[3][7:]))}),
        [m[3]])


def fam_split(c):
    """A fifth pass: the value cut into pieces, each piece a value of its
    own (fields of an object, objects of an array, form fields, query
    parameters), as legacy systems store an ID number's region, birth date
    and sequence, or a form splits a phone into three boxes."""
    f = "split"
    m, i = MOB, ID

    def add(why, body, sec, ct=JSON, target="/v1/profile", **kw):
        c.add(f, why, "POST", target, body=body, content_type=ct, secrets=sec, **kw)

    def cut(v, *at):
        at = (0,) + at + (len(v),)
        return [v[a:b] for a, b in zip(at, at[1:])]

    r, b, q = cut(i[0], 6, 14)
    add("the ID number as region, birth date and sequence fields", js({"id_region": r, "id_birth": b, "id_seq": q}),
        [i[0]])
    add("the ID number's pieces in an array of objects", js([{"v": p} for p in cut(i[1], 6, 14)]), [i[1]])
    add("the ID number's pieces in sibling objects", js({"a": {"x": cut(i[2], 6, 14)[0]}, "b": {"x": cut(
        i[2], 6, 14)[1]}, "c": {"x": cut(i[2], 6, 14)[2]}}), [i[2]])
    p = cut(i[3], 6, 14)
    add("the ID number's pieces with a name, a flag and null between them",
        '{"region":"%s","name":"Li","birth":"%s","ok":true,"note":null,"seq":"%s"}' % tuple(p), [i[3]])
    add("the ID number cut in two halves", js({"first": i[4][:9], "second": i[4][9:]}), [i[4]])
    p = cut(i[5], 6, 14)
    add("region and birth date as JSON integers, the sequence as a string",
        '{"r":%s,"b":%s,"s":"%s"}' % tuple(p), [i[5]])
    add("the ID number's pieces as form fields", "a=%s&b=%s&c=%s" % tuple(cut(i[6], 6, 14)), [i[6]], ct=FORM)
    c.add(f, "the ID number's pieces as query parameters", "GET",
          "/v1/lookup?r=%s&d=%s&s=%s" % tuple(cut(i[7], 6, 14)), secrets=[i[7]])
    add("the ID number as eighteen one-character members", js({"c%02d" % k: ch for k, ch in enumerate(i[8])}),
        [i[8]])
    add("the ID number cut after two digits", js({"p": i[9][:2], "q": i[9][2:]}), [i[9]])
    add("the ID number's pieces in an array of one-element arrays", js([[p] for p in cut(i[0], 6, 14)]), [i[0]])
    add("a Hong Kong residence permit as region, birth date and sequence", js(dict(zip(
        ("region", "birth", "seq"), cut(HMT[0], 6, 14)))), [HMT[0]])
    add("a first-generation ID number as region, birth date and sequence", js(dict(zip(
        ("region", "birth", "seq"), cut(LEGACY[0], 6, 12)))), [LEGACY[0]])
    add("the ID number's pieces inside JSON held in a string", js({"data": js(dict(zip(
        ("a", "b", "c"), cut(i[1], 6, 14))))}), [i[1]])
    add("the ID number's pieces across records of a batch", js({"rows": [
        {"k": "region", "v": cut(i[2], 6, 14)[0]}, {"k": "birth", "v": cut(i[2], 6, 14)[1]},
        {"k": "seq", "v": cut(i[2], 6, 14)[2]}]}), [i[2]])
    add("a mobile in three boxes named phone_*", js(dict(zip(
        ("phone_prefix", "phone_mid", "phone_suffix"), cut(m[0], 3, 7)))), [m[0]])
    add("a mobile as telHead (7 digits) and telTail (4)", js({"telHead": m[1][:7], "telTail": m[1][7:]}), [m[1]])
    add("a mobile in three boxes with Chinese names", js(dict(zip(
        ("手机前三位", "中间四位", "后四位"), cut(m[2], 3, 7)))), [m[2]])
    add("the country code, the prefix and the number as three values",
        js({"cc": "86", "area": m[3][:3], "num": m[3][3:]}), [m[3]])
    add("a mobile's boxes as form fields tel1..tel3", "tel1=%s&tel2=%s&tel3=%s" % tuple(cut(m[4], 3, 7)), [m[4]],
        ct=FORM)
    c.add(f, "a mobile's boxes as query parameters phone1..phone3", "GET",
          "/v1/lookup?phone1=%s&phone2=%s&phone3=%s" % tuple(cut(m[5], 3, 7)), secrets=[m[5]])
    add("a mobile's boxes named phone_* with other fields between them",
        '{"phone_a":"%s","note":"call after 6","phone_b":"%s","vip":false,"phone_c":"%s"}' % tuple(cut(m[6], 3, 7)),
        [m[6]])
    add("a mobile's boxes as JSON integers under mobile_*", '{"mobile_1":%s,"mobile_2":%s,"mobile_3":%s}'
        % tuple(cut(m[7], 3, 7)), [m[7]])
    add("the mobile cut between an XML internal entity and the text",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "%s">]><r><tel>&a;%s</tel></r>' % (m[0][:7], m[0][7:]),
        [m[0]], ct="application/xml")
    add("a mobile in three boxes under neutral keys", js(dict(zip(("a", "b", "c"), cut(m[8], 3, 7)))), [m[8]])
    add("a mobile's boxes as form fields under neutral names", "p1=%s&p2=%s&p3=%s" % tuple(cut(m[9], 3, 7)),
        [m[9]], ct=FORM)
    mp = multipart("bgsplit", [([("Content-Disposition", 'form-data; name="%s"' % k)], v) for k, v in zip(
        ("id_region", "id_birth", "id_seq"), cut(i[4], 6, 14))])
    add("the ID number's pieces as multipart form-data fields", None, [i[4]],
        ct="multipart/form-data; boundary=bgsplit", body_bytes=mp)
    mp = multipart("bgsplit", [([("Content-Disposition", 'form-data; name="%s"' % k)], v) for k, v in zip(
        ("tel1", "tel2", "tel3"), cut(m[1], 3, 7))])
    add("a mobile's boxes as multipart form-data fields tel1..tel3", None, [m[1]],
        ct="multipart/form-data; boundary=bgsplit", body_bytes=mp)
    r, b, q = cut(i[6], 6, 14)
    add("the birth date piece written as a date with dashes", js({"region": r, "birth": "%s-%s-%s" % (
        b[:4], b[4:6], b[6:]), "seq": q}), [i[6]])
    r, b, q = cut(i[7], 6, 14)
    add("the birth date piece with slashes, the check character in lower case", js({
        "region": r, "birth": "%s/%s/%s" % (b[:4], b[4:6], b[6:]), "seq": q.lower()}), [i[7]])
    add("the country code written +86 before the prefix and the number",
        js({"cc": "+86", "a": m[2][:3], "b": m[2][3:]}), [m[2]])
    add("the country code written 0086 before three boxes", js(dict(zip(("cc", "a", "b", "c"), ["0086"] + cut(
        m[3], 3, 7)))), [m[3]])
    r, b, q = cut(i[8], 6, 14)
    add("the ID number's pieces in three custom headers", '{"ok":1}', [i[8]],
        headers=[["X-Id-Region", r], ["X-Id-Birth", b], ["X-Id-Seq", q]])
    add("a mobile's boxes in three X-Phone-* headers", '{"ok":1}', [m[5]],
        headers=[["X-Phone-1", m[5][:3]], ["X-Phone-2", m[5][3:7]], ["X-Phone-3", m[5][7:]]])
    add("a mobile's boxes in full-width digits under phone_*", js(dict(zip(
        ("phone_a", "phone_b", "phone_c"), ["".join(chr(0xFF10 + int(ch)) for ch in p) for p in cut(m[4], 3, 7)]))),
        [m[4]])


def http_head(method, target, headers, version="HTTP/1.1", nl="\r\n"):
    """A request head written by hand: NL ends every line (bare LF when "\\n")."""
    return "%s %s %s%s" % (method, target, version, nl) + "".join("%s: %s%s" % (k, v, nl) for k, v in headers) + nl


def chunked(data, size=None):
    """DATA as chunks of SIZE bytes (one chunk when None), then the last chunk."""
    data = data.encode() if isinstance(data, str) else data
    size = size or max(len(data), 1)
    out = b""
    for k in range(0, len(data), size):
        out += b"%x\r\n" % len(data[k:k + size]) + data[k:k + size] + b"\r\n"
    return out + b"0\r\n\r\n"


# The framing family's helpers: a JSON POST to the host route, written by hand.
FR_H = ["Host", HOST]
FR_CT = ["Content-Type", JSON]


def fr_doc(k, v):
    return js({k: v})


def fr_post(headers, body, target="/ingest", version="HTTP/1.1"):
    """A POST to the host route with a JSON type, HEADERS after them, BODY as is."""
    body = body.encode() if isinstance(body, str) else body
    return http_head("POST", target, [FR_H, FR_CT] + headers, version).encode() + body


def fr_cl(b):
    return ["Content-Length", str(len(b))]


def gbk_fw(s):
    """S with its digits as full-width digits, in GBK (A3 B0-B9)."""
    return "".join(chr(0xFF10 + int(ch)) if ch.isdigit() else ch for ch in s).encode("gbk")


def pct_bytes(bs):
    return "".join("%%%02X" % b for b in bs)


# Smuggling: the framing headers disagree, or say something two parsers read differently.
def framing_smuggling(c, f, m, i):
    """Each framing_* writes one part of the family F (in order: entry ids
    follow it), with the mobiles M and ID numbers I."""
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    b = doc("id_no", i[0])
    c.raw(f, "Content-Length and Transfer-Encoding: chunked together (CL.TE desync)",
          [post([["Content-Length", "4"], ["Transfer-Encoding", "chunked"]], chunked(b))], [i[0]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[1])
    c.raw(f, "Transfer-Encoding: chunked then Content-Length (TE.CL desync)",
          [post([["Transfer-Encoding", "chunked"], cl(chunked(b))], chunked(b))], [i[1]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[2])
    c.raw(f, "two different Content-Length fields: a short one first, the real length second",
          [post([["Content-Length", "2"], cl(b)], b)], [i[2]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[3])
    c.raw(f, "two identical Content-Length fields (one length: forwarded as one, inspected)",
          [post([cl(b), cl(b)], b)], [i[3]])
    b = doc("id_no", i[4])
    c.raw(f, "Content-Length with a plus sign", [post([["Content-Length", "+%d" % len(b)]], b)], [i[4]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[5])
    c.raw(f, "Content-Length with leading zeros (1*DIGIT: the same length, inspected)",
          [post([["Content-Length", "000%d" % len(b)]], b)], [i[5]])
    b = doc("id_no", i[6])
    c.raw(f, "Content-Length written twice inside one field, space separated",
          [post([["Content-Length", "%d %d" % (len(b), len(b))]], b)], [i[6]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[7])
    c.raw(f, "Content-Length as a list \"N, N\"", [post([["Content-Length", "%d, %d" % (len(b), len(b))]], b)],
          [i[7]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[8])
    c.raw(f, "Content-Length of 2^64 + N (wraps to N in a 64-bit parser that does not check)",
          [post([["Content-Length", str(2 ** 64 + len(b))]], b)], [i[8]], [400, 413], nothing_arrives=True)
    b = doc("id_no", i[9])
    c.raw(f, "Content-Length in hexadecimal", [post([["Content-Length", hex(len(b))]], b)], [i[9]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[0])
    c.raw(f, "Transfer-Encoding: chunked, identity (chunked not the final coding)",
          [post([["Transfer-Encoding", "chunked, identity"]], chunked(b))], [i[0]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[1])
    c.raw(f, "Transfer-Encoding: xchunked (a parser that looks for the substring sees chunked)",
          [post([["Transfer-Encoding", "xchunked"]], chunked(b))], [i[1]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[2])
    c.raw(f, "Transfer-Encoding: identity alone (RFC 2616's, removed since): no framing a proxy can trust",
          [post([["Transfer-Encoding", "identity"]], b)], [i[2]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[3])
    c.raw(f, "two Transfer-Encoding: chunked fields (chunked applied twice)",
          [post([["Transfer-Encoding", "chunked"], ["Transfer-Encoding", "chunked"]], chunked(chunked(b)))],
          [i[3]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[4])
    c.raw(f, "Transfer-Encoding: deflate then a second field chunked (a coding the proxy cannot undo)",
          [post([["Transfer-Encoding", "deflate"], ["Transfer-Encoding", "chunked"]],
                chunked(zlib.compress(b.encode())))], [i[4]], [501], nothing_arrives=True)
    b = doc("id_no", i[5])
    c.raw(f, "Transfer-Encoding: chunked in an HTTP/1.0 request (1.0 has no chunked: faulty framing)",
          [post([["Transfer-Encoding", "chunked"]], chunked(b), version="HTTP/1.0")], [i[5]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[6])
    c.raw(f, "Transfer-Encoding: Chunked in another case with a trailing tab (valid: decoded and inspected)",
          [post([["Transfer-Encoding", "Chunked\t"]], chunked(b))], [i[6]])
    b = doc("id_no", i[7])
    c.raw(f, "Transfer-Encoding folded onto a continuation line (obs-fold)",
          [post([["Transfer-Encoding", "\r\n chunked"]], chunked(b))], [i[7]], ST_400, nothing_arrives=True)
    c.raw(f, "obs-fold continuation line carrying the ID number under a custom header",
          [post([["X-Note", "holder\r\n\t%s" % i[8]]], "{}")], [i[8]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[9])
    c.raw(f, "obs-fold hiding a Content-Length line inside the previous field",
          [post([["X-Note", "a\r\n Content-Length: 2"], cl(b)], b)], [i[9]], ST_400, nothing_arrives=True)
    b = doc("phone", m[0])
    c.raw(f, "the whole request with bare LF line endings",
          [http_head("POST", "/ingest", [H, CT, cl(b)], nl="\n") + b], [m[0]], ST_400, nothing_arrives=True)
    c.raw(f, "one header line ended by a bare LF, the ID number on the next line",
          ["POST /ingest HTTP/1.1\r\nHost: %s\r\nX-A: 1\nX-Doc: %s\r\nContent-Length: 2\r\n\r\n{}" % (HOST, i[0])],
          [i[0]], ST_400, nothing_arrives=True)
    c.raw(f, "a bare CR inside a header value splitting the ID number",
          ["GET /v1/x HTTP/1.1\r\nHost: %s\r\nX-Doc: %s\r%s\r\n\r\n" % (HOST, i[1][:9], i[1][9:])], [i[1]], ST_400,
          nothing_arrives=True)
    c.raw(f, "a NUL inside a header value before the ID number (C strings stop there)",
          ["GET /v1/x HTTP/1.1\r\nHost: %s\r\nX-Doc: a\x00%s\r\n\r\n" % (HOST, i[2])], [i[2]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[3])
    c.raw(f, "\"Transfer-Encoding : chunked\" (space before the colon) next to a Content-Length",
          [post([["Transfer-Encoding ", "chunked"], cl(b)], b)], [i[3]], ST_400, nothing_arrives=True)


# A second request where only one was read.
def framing_hidden_requests(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    inner = post([], doc("id_no", i[4]))
    inner = inner.replace(b"\r\n\r\n", b"\r\nContent-Length: %d\r\n\r\n" % len(doc("id_no", i[4])), 1)
    c.raw(f, "a short Content-Length: the rest of the body is a whole second request with the ID number",
          [post([["Content-Length", "2"]], b"{}" + inner)], [i[4]], [200, 451], responses=2)
    c.raw(f, "a short Content-Length: the rest of the body is not a request but holds the ID number",
          [post([["Content-Length", "2"]], b"{}" + doc("id_no", i[5]).encode())], [i[5]], [200, 400], responses=2,
          consumed=True)
    c.raw(f, "a request smuggled after the last chunk: the mobile in its path",
          [post([["Transfer-Encoding", "chunked"]], chunked("{}")) +
           http_head("GET", "/users/" + m[1], [H]).encode()], [m[1]], [200, 451], responses=2)
    c.raw(f, "pipelined: first to the path-only route, then one to the host route with the ID in a header",
          [http_head("GET", PFX + "ping", [["Host", PHOST]]) + http_head("GET", "/v1/x", [H, ["X-Doc", i[6]]])],
          [i[6]], [200, 451], responses=2)
    c.raw(f, "pipelined: first refused with 421 (no route, keep-alive), then the ID number in a query",
          [http_head("GET", "/x", [["Host", "nowhere.example"]]) + http_head("GET", "/v1/x?idno=" + i[7], [H])],
          [i[7]], [421, 451], responses=2)
    c.raw(f, "pipelined after Connection: close: the second request (ID number in a header) is never read",
          [http_head("GET", "/v1/a", [H, ["Connection", "close"]]) + http_head("GET", "/v1/b", [H, ["X-Doc", i[8]]])],
          [i[8]], [200], responses=2, consumed=True)
    c.raw(f, "GET with a body but neither Content-Length nor Transfer-Encoding: the body is the next 'request'",
          [http_head("GET", "/v1/x", [H, CT]) + doc("id_no", i[9])], [i[9]], [200, 400], responses=2,
          consumed=True)
    c.raw(f, "HTTP/1.0 keep-alive pipeline: the mobile in the second request's query",
          [http_head("GET", "/v1/a", [H, ["Connection", "keep-alive"]], "HTTP/1.0") +
           http_head("GET", "/v1/b?tel=" + m[2], [H, ["Connection", "keep-alive"]], "HTTP/1.0")],
          [m[2]], [200, 451], responses=2)
    b = doc("id_no", i[0])
    c.raw(f, "HEAD with a Content-Length body holding the ID number",
          [http_head("HEAD", "/v1/x", [H, CT, cl(b)]) + b], [i[0]])
    c.raw(f, "pipelined: a complete request, then a second whose body never comes (ID number in its head)",
          [http_head("GET", "/v1/a", [H]) + http_head("POST", "/v1/b", [H, CT, ["X-Doc", i[1]],
                                                                       ["Content-Length", "40"]]) + "{\"a\":"],
          [i[1]], [200], consumed=True)


# Interim responses, upgrades and tunnels.
def framing_tunnels(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    b = doc("id_no", i[2])
    c.raw(f, "Expect: 100-continue, the body with the ID number sent after the head in a second write",
          [http_head("POST", "/ingest", [H, CT, cl(b), ["Expect", "100-continue"]]), b], [i[2]])
    c.raw(f, "Expect: 100-continue with the ID number in a header, the body never sent (client half-closes)",
          [http_head("POST", "/ingest", [H, CT, ["X-Doc", i[3]], ["Content-Length", "30"],
                                          ["Expect", "100-continue"]])], [i[3]], [0, 400], nothing_arrives=True,
          half_close=True)
    b = doc("id_no", i[4])
    c.raw(f, "an Expect other than 100-continue", [post([cl(b), ["Expect", "100-continue, x-fast"]], b)], [i[4]],
          [417], nothing_arrives=True)
    ws = b"\x81" + bytes([len(doc("id_no", i[5]))]) + doc("id_no", i[5]).encode()
    c.raw(f, "Upgrade: websocket, then a WebSocket text frame with the ID number",
          [http_head("GET", "/v1/ws", [H, ["Connection", "Upgrade"], ["Upgrade", "websocket"],
                                       ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
                                       ["Sec-WebSocket-Version", "13"]]).encode() + ws],
          [i[5]], [501], nothing_arrives=True)
    h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x1a\x00\x01\x00\x00\x00\x01" + doc("id_no", i[6]).encode()
    c.raw(f, "Upgrade: h2c with HTTP2-Settings, then the HTTP/2 preface and a DATA frame with the ID number",
          [http_head("GET", "/v1/x", [H, ["Connection", "Upgrade, HTTP2-Settings"], ["Upgrade", "h2c"],
                                      ["HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"]]).encode() + h2],
          [i[6]], [501], nothing_arrives=True)
    c.raw(f, "Connection: Upgrade without an Upgrade field, then raw bytes with the ID number",
          [http_head("GET", "/v1/x", [H, ["Connection", "Upgrade"]]) + "id %s\r\n" % i[7]], [i[7]], [501],
          nothing_arrives=True)
    c.raw(f, "CONNECT to the foreign host's port 443, then raw bytes with the ID number",
          [http_head("CONNECT", HOST + ":443", [["Host", HOST + ":443"]]) + "id %s\r\n" % i[8]], [i[8]], [405],
          nothing_arrives=True)
    c.raw(f, "CONNECT with the ID number as the authority's host",
          [http_head("CONNECT", "%s.%s:443" % (i[9], HOST), [["Host", "%s.%s:443" % (i[9], HOST)]])], [i[9]],
          [400, 405], nothing_arrives=True)
    c.raw(f, "the upstream (an accomplice) answers 101 to a plain GET; the client then sends raw bytes",
          [http_head("GET", "/accomplice/switch", [H]), "\x81\x13" + doc("i", i[0])], [i[0]], [400, 502],
          responses=2, consumed=True)
    c.raw(f, "OPTIONS * with the ID number in a header", [http_head("OPTIONS", "*", [H, ["X-Doc", i[1]]])], [i[1]],
          ST_400, nothing_arrives=True)
    c.raw(f, "TRACE with the ID number in a header (the upstream echoes the request back)",
          [http_head("TRACE", "/v1/x", [H, ["X-Doc", i[2]]])], [i[2]])
    c.raw(f, "the HTTP/2 connection preface, then a frame with the ID number",
          [h2.replace(doc("id_no", i[6]).encode(), doc("id_no", i[3]).encode())], [i[3]], [400, 505],
          nothing_arrives=True)


# Version tokens and request targets.
def framing_versions_targets(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    c.raw(f, "an HTTP/0.9 simple request (no version) with the mobile in the query",
          ["GET /v1/lookup?tel=%s\r\n" % m[3]], [m[3]], ST_400, nothing_arrives=True)
    b = doc("id_no", i[4])
    c.raw(f, "HTTP/1.2 (a higher minor version: processed as 1.1 or refused)", [post([cl(b)], b, version="HTTP/1.2")],
          [i[4]], [451, 505])
    c.raw(f, "HTTP/2.0 in an HTTP/1 request line, the ID number in a header",
          [http_head("GET", "/v1/x", [H, ["X-Doc", i[5]]], "HTTP/2.0")], [i[5]], [505], nothing_arrives=True)
    c.raw(f, "the version in lower case", [http_head("GET", "/v1/x", [H, ["X-Doc", i[6]]], "http/1.1")], [i[6]],
          ST_400, nothing_arrives=True)
    c.raw(f, "a two-digit minor version HTTP/1.10", [http_head("GET", "/v1/x", [H, ["X-Doc", i[7]]], "HTTP/1.10")],
          [i[7]], ST_400, nothing_arrives=True)
    c.raw(f, "two spaces between method and target", ["GET  /v1/x HTTP/1.1\r\nHost: %s\r\nX-Doc: %s\r\n\r\n"
                                                      % (HOST, i[8])], [i[8]], ST_400, nothing_arrives=True)
    c.raw(f, "absolute-form target with the mobile as userinfo, on the path-only route",
          [http_head("GET", "http://%s@%s%sping" % (m[4], PHOST, PFX), [["Host", PHOST]])], [m[4]], ST_400,
          nothing_arrives=True)
    c.raw(f, "absolute-form target with user:ID-number@ on the host route",
          [http_head("GET", "http://u:%s@%s/v1/x" % (i[9], HOST), [H])], [i[9]], ST_400, nothing_arrives=True)
    c.raw(f, "Host with the mobile as userinfo on the path-only route",
          [http_head("GET", PFX + "ping", [["Host", "%s@%s" % (m[5], PHOST)]])], [m[5]], ST_400,
          nothing_arrives=True)
    c.raw(f, "a fragment carrying the ID number in the request target",
          [http_head("GET", "/v1/x#idno=" + i[0], [H])], [i[0]], ST_400, nothing_arrives=True)
    c.raw(f, "authority-form target (host:port) in a POST with the ID number in the body",
          [http_head("POST", HOST + ":80", [H, CT, cl(doc("id_no", i[1]))]) + doc("id_no", i[1])], [i[1]], ST_400,
          nothing_arrives=True)
    gbk = "".join(chr(0xFF10 + int(ch)) for ch in m[6]).encode("gbk")
    c.raw(f, "raw GBK bytes (full-width digits of the mobile) in the request target, not percent-encoded",
          [b"GET /v1/users/" + gbk + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"], [m[6]], [200, 400, 451])
    gbk = "".join(chr(0xFF10 + int(ch)) if ch.isdigit() else ch for ch in i[2]).encode("gbk")
    c.raw(f, "obs-text in a header value: the ID number in GBK full-width digits",
          [b"GET /v1/x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Doc: " + gbk + b"\r\n\r\n"], [i[2]],
          [400, 451])


# Sizes and cut bodies.
def framing_sizes(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    c.raw(f, "the ID number at the end of a 15 kB header value (the head stays under the 16 kB limit)",
          [http_head("GET", "/v1/x", [H, ["X-Pad", "a" * 15000 + " " + i[3]]])], [i[3]])
    c.raw(f, "the ID number at the end of a head over the 16 kB limit",
          [http_head("GET", "/v1/x", [H, ["X-Pad", "a" * 17000 + " " + i[4]]])], [i[4]], [431],
          nothing_arrives=True)
    c.raw(f, "101 header fields, the ID number in the last one",
          [http_head("GET", "/v1/x", [H] + [["X-F%d" % k, "v"] for k in range(99)] + [["X-Doc", i[5]]])], [i[5]],
          [431], nothing_arrives=True)
    b = doc("id_no", i[6])
    c.raw(f, "the JSON body in one-byte chunks", [post([["Transfer-Encoding", "chunked"]], chunked(b, 1))], [i[6]])
    b = doc("id_no", i[7]).encode()
    c.raw(f, "a chunk size with leading zeros", [post([["Transfer-Encoding", "chunked"]],
                                                      b"0000000%x\r\n" % len(b) + b + b"\r\n0\r\n\r\n")], [i[7]])
    b = doc("id_no", i[8]).encode()
    c.raw(f, "a chunk size written 0x.. (a parser using strtol base 0 reads it)",
          [post([["Transfer-Encoding", "chunked"]], b"0x%x\r\n" % len(b) + b + b"\r\n0\r\n\r\n")], [i[8]], ST_400,
          nothing_arrives=True)
    b = doc("id_no", i[9]).encode()
    c.raw(f, "a chunk size past 2^64 (wraps in a parser that does not check)",
          [post([["Transfer-Encoding", "chunked"]], b"1%016x\r\n" % len(b) + b + b"\r\n0\r\n\r\n")], [i[9]],
          ST_400, nothing_arrives=True)
    b = doc("id_no", i[0]).encode()
    c.raw(f, "a chunked body whose last chunk never comes: the client half-closes after the data",
          [post([["Transfer-Encoding", "chunked"]], b"%x\r\n" % len(b) + b + b"\r\n")], [i[0]], [0, 400],
          nothing_arrives=True, half_close=True)
    b = doc("id_no", i[1]).encode()
    c.raw(f, "a Content-Length body cut short: the client half-closes before the last bytes",
          [post([["Content-Length", str(len(b) + 10)]], b)], [i[1]], [0, 400], nothing_arrives=True,
          half_close=True)
    b = doc("id_no", i[2])
    c.raw(f, "a Content-Length over limits.max_body_bytes: the ID number in the bytes that do come",
          [post([["Content-Length", "20000000"]], b)], [i[2]], [413], nothing_arrives=True)
    pad = "@@PAD@@"
    b = ('{"pad":"%s","id_no":"%s"}' % (pad, i[3])).encode()
    c.raw(f, "a chunked body growing past limits.max_body_bytes (10 MiB), the ID number at its very end",
          [post([["Transfer-Encoding", "chunked"]], b"%x\r\n" % (len(b) - len(pad) + 11 * 2 ** 20) + b +
                b"\r\n0\r\n\r\n")], [i[3]], [0, 413], nothing_arrives=True, expand=(pad, "a", 11 * 2 ** 20))
    b = ('{"pad":"%s","id_no":"%s"}' % (pad, i[4])).encode()
    c.raw(f, "a 1 MiB JSON body, the ID number at its very end",
          [post([["Content-Length", str(len(b) - len(pad) + 2 ** 20)]], b)], [i[4]], expand=(pad, "a", 2 ** 20))
    b = doc("id_no", i[5])
    c.raw(f, "four empty lines before the request line (allowed), the ID number in the body",
          ["\r\n" * 4 + post([cl(b)], b).decode()], [i[5]])
    c.raw(f, "five empty lines before the request line", ["\r\n" * 5 + post([cl(b)], b).decode()], [i[5]], ST_400,
          nothing_arrives=True)


# The head's charset: RFC 3986 wants targets in ASCII, RFC 9110 calls a field's
# non-ASCII bytes obs-text. What is not UTF-8 there cannot be read.
def framing_head_charset(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    c.raw(f, "the mobile's GBK full-width digits percent-encoded in a query parameter",
          [http_head("GET", "/v1/lookup?tel=" + pct_bytes(gbk_fw(m[7])), [H])], [m[7]])
    c.raw(f, "the ID number's GBK full-width digits percent-encoded as a path segment",
          [http_head("GET", "/v1/people/" + pct_bytes(gbk_fw(i[7])), [H])], [i[7]])
    b = "idno=" + pct_bytes(gbk_fw(i[8]))
    c.raw(f, "the ID number's GBK full-width digits percent-encoded in a form body without a charset",
          [http_head("POST", "/ingest", [H, ["Content-Type", FORM], cl(b)]) + b], [i[8]])
    c.raw(f, "a Referer whose query holds GBK full-width digits percent-encoded",
          [http_head("GET", "/v1/x", [H, ["Referer", "https://shop.example/s?tel=" + pct_bytes(gbk_fw(m[8]))]])],
          [m[8]])
    c.raw(f, "GBK full-width digits of the mobile percent-encoded under a neutral query key",
          [http_head("GET", "/v1/search?q=" + pct_bytes(gbk_fw(m[1])) + "&page=2", [H])], [m[1]])
    b = "memo=" + pct_bytes(gbk_fw(i[7])) + "&ok=1"
    c.raw(f, "GBK full-width digits of the ID number percent-encoded under a neutral form key",
          [http_head("POST", "/ingest", [H, ["Content-Type", FORM], cl(b)]) + b], [i[7]])
    b = js({"note": "ref " + pct_bytes(gbk_fw(i[8]))})
    c.raw(f, "GBK full-width digits of the ID number percent-encoded inside a JSON string",
          [http_head("POST", "/ingest", [H, CT, cl(b)]) + b], [i[8]])
    cjk = "〇一二三四五六七八九"
    c.raw(f, "the mobile in Chinese numerals, GBK and percent-encoded, in a query parameter",
          [http_head("GET", "/v1/search?q=" + pct_bytes("".join(cjk[int(ch)] for ch in m[2]).encode("gbk")), [H])],
          [m[2]])
    c.raw(f, "a Latin-1 superscript one percent-encoded before the mobile's other ten digits",
          [http_head("GET", "/v1/search?q=%B9" + m[4][1:], [H])], [m[4]])
    c.raw(f, "base64 of Latin-1 text: the mobile with superscript digits for its 1s and 3s",
          [http_head("GET", "/v1/x", [H, ["X-Sig", base64.b64encode(
              m[5].replace("1", "\u00b9").replace("3", "\u00b3").encode("latin-1")).decode()]])], [m[5]])
    c.raw(f, "base64 of the ID number's GBK full-width digits in a header",
          [http_head("GET", "/v1/x", [H, ["X-Sig", base64.b64encode(gbk_fw(i[9])).decode()]])], [i[9]])
    c.raw(f, "raw GBK full-width digits of the mobile in a cookie value",
          [b"GET /v1/x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nCookie: theme=dark; t=" + gbk_fw(m[9]) +
           b"\r\n\r\n"], [m[9]], [400, 451])
    c.raw(f, "Big5 full-width digits of the ID number in a header value",
          [b"GET /v1/x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Doc: " +
           "".join(chr(0xFF10 + int(ch)) if ch.isdigit() else ch for ch in i[9]).encode("big5") + b"\r\n\r\n"],
          [i[9]], [400, 451])


# Field lines a recipient may combine (RFC 9110 5.3): one value over several lines.
def framing_repeated_fields(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    c.raw(f, "the ID number split over two field lines of one custom header (combined: a, b)",
          [http_head("GET", "/v1/x", [H, ["X-Doc", i[2][:12]], ["X-Doc", i[2][12:]]])], [i[2]])
    c.raw(f, "the ID number split over two If-None-Match lines (a list field, read for content only)",
          [http_head("GET", "/v1/x", [H, ["If-None-Match", '"%s"' % i[3][:9]], ["If-None-Match", '"%s"' % i[3][9:]]])],
          [i[3]])
    c.raw(f, "the mobile in three field lines of one header, a group each",
          [http_head("GET", "/v1/x", [H, ["X-P", m[3][:3]], ["X-P", m[3][3:7]], ["X-P", m[3][7:]]])], [m[3]])
    c.raw(f, "the ID number split over two Accept-Language lines with another field between them",
          [http_head("GET", "/v1/x", [H, ["Accept-Language", "zh-CN;q=0.9, " + i[4][:10]], ["User-Agent", "t/1"],
                                      ["Accept-Language", i[4][10:] + ";q=0.1"]])], [i[4]])


# Bytes split where a parser resumes.
def framing_split_writes(c, f, m, i):
    H, CT, doc, post, cl = FR_H, FR_CT, fr_doc, fr_post, fr_cl
    b = doc("id_no", i[0]).encode()
    whole = post([cl(b)], b)
    cut = [whole[:7], whole[7:30], whole[30:whole.index(b"Content-Le") + 9], whole[whole.index(b"Content-Le") + 9:-12],
           whole[-12:-5], whole[-5:]]
    c.raw(f, "the request in six writes, cut inside the request line, a field name and the ID number", cut, [i[0]])
    b = doc("note", "x\r\n0\r\n\r\nGET /v1/y?idno=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (i[1], HOST))
    c.raw(f, "chunk data that spells a last chunk and a second request (the size says it is data)",
          [post([["Transfer-Encoding", "chunked"]], chunked(b))], [i[1]])
    c.raw(f, "three pipelined requests, the ID number in the third's query",
          [http_head("GET", "/v1/a", [H]) + http_head("GET", PFX + "b", [["Host", PHOST]]) +
           http_head("GET", "/v1/c?idno=" + i[2], [H])], [i[2]], [200, 451], responses=3)
    b = doc("id_no", i[3])
    c.raw(f, "Expect: 100-continue, then the body and a pipelined request with the mobile in one later write",
          [http_head("POST", "/ingest", [H, CT, cl(b), ["Expect", "100-continue"]]),
           b + http_head("GET", "/v1/x?tel=" + m[0], [H])], [i[3], m[0]], [200, 451], responses=2)
    c.raw(f, "Content-Length: 0 on a POST followed by the JSON body (read as the next request)",
          [post([["Content-Length", "0"]], doc("id_no", i[4]))], [i[4]], [200, 400], responses=2,
          consumed=True)
    c.raw(f, "Content_Length with an underscore (not a framing field to the proxy; some servers map _ to -)",
          [post([["Content_Length", "2"], cl(doc("id_no", i[5]))], doc("id_no", i[5]))], [i[5]])
    c.raw(f, "Connection naming the field that holds the ID number (hop-by-hop: dropped, not a way around)",
          [http_head("GET", "/v1/x", [H, ["Connection", "keep-alive, X-Doc"], ["X-Doc", i[6]]])], [i[6]],
          [200, 451], consumed=True)


def fam_framing(c):
    """HTTP/1.1 message framing (RFC 9112), as a smuggler attacks a proxy:
    make the proxy and the upstream see different requests, hide a second
    request where only one was inspected, open a tunnel, or send what the
    proxy has not finished reading."""
    for part in (framing_smuggling, framing_hidden_requests, framing_tunnels, framing_versions_targets,
                 framing_sizes, framing_head_charset, framing_repeated_fields, framing_split_writes):
        part(c, "framing", MOB, ID)


FAMILIES = [fam_path, fam_query, fam_headers, fam_method_host, fam_multipart, fam_content_encoding,
            fam_charset, fam_json_shapes, fam_separators, fam_unicode, fam_string_encodings, fam_numbers,
            fam_glued, fam_legacy_id, fam_context_keys, fam_route_escape, fam_disguise, fam_framing,
            fam_split]


def build():
    c = Corpus()
    for fn in FAMILIES:
        fn(c)
    out = {}
    for fam, entries in c.families.items():
        assert len(entries) >= 20, (fam, len(entries))
        out[fam + ".jsonl"] = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
    return out


def main():
    check = "--check" in sys.argv[1:]
    bad = 0
    for name, text in sorted(build().items()):
        path = os.path.join(HERE, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except FileNotFoundError:
                same = False
            if not same:
                print("%s differs from gen.py's output" % name)
                bad = 1
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    return bad


if __name__ == "__main__":
    sys.exit(main())
