#!/usr/bin/env python3
"""Generate bordergate's recorded-traffic corpus (tests/traffic/corpus/*.har).

Deterministic: the same script always writes the same bytes (a fixed random
seed, fixed timestamps, sorted nothing that was not sorted before). Run it
from anywhere:

    python3 tests/traffic/corpus/make_corpus.py          # rewrite the HARs
    python3 tests/traffic/corpus/make_corpus.py --check  # fail if they differ

One HAR 1.2 file per service family, shaped like a Chromium / Playwright
export (pages, pageref, timings, serverIPAddress, connection, request
headers with User-Agent, postData with mimeType and text, or params for
forms). The requests go to the hosts the policies under test route
(config/quickstart.json, config/packs/{wadesk,wking,weidijia}.json): each
policy routes its own hosts and refuses (421) the others', so every file is
replayed under every policy. serverIPAddress is the loopback address the
policy pins the host to (the corpus was recorded against `bordergate sink`s).

All personal data is fictitious: names and addresses are invented, and
numbers are generated to be VALID where a validator applies (GB 11643 check
digit and a real birth date for resident ID numbers, Luhn for IMEIs and bank
cards, mod-11 for Hong Kong ID numbers) so that a detector which validates
must find them; they belong to nobody. Negatives (order ids, timestamps,
prices, tracking numbers, UUIDs under non-device keys) sit next to them and
must NOT be found.

consents.json lists, per policy, the consents the expectations assume
(granted with `bordergate consent grant` before replaying).
"""
import base64
import gzip
import json
import os
import random
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = random.Random(20261123)

# ---------------------------------------------------------------------------
# Valid fictitious identifiers


def luhn_digit(body):
    s = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return str((10 - s % 10) % 10)


def luhn(body):
    return body + luhn_digit(body)


def luhn_ok(number):
    return luhn_digit(number[:-1]) == number[-1]


def resident_id(region, birth):
    """GB 11643-1999: 6-digit region, YYYYMMDD, 3-digit sequence, check."""
    body = "%s%s%03d" % (region, birth, RNG.randrange(10, 999))
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * k for c, k in zip(body, w)) % 11]


def hk_id():
    """Hong Kong identity card: letter, 6 digits, check digit (mod 11)."""
    letter = RNG.choice("ACDEGHKPRVZ")
    digits = "".join(RNG.choice("0123456789") for _ in range(6))
    s = 36 * 9 + (ord(letter) - 55) * 8 + sum(int(d) * (7 - i) for i, d in enumerate(digits))
    c = (11 - s % 11) % 11
    return "%s%s(%s)" % (letter, digits, "A" if c == 10 else str(c))


def imei(tac="86012304"):
    return luhn(tac + "".join(RNG.choice("0123456789") for _ in range(6)))


def unionpay(n=16):
    return luhn("62" + RNG.choice(["2202", "2848", "1700", "1226", "2588"])
                + "".join(RNG.choice("0123456789") for _ in range(n - 7)))


def visa():
    return luhn("4" + "".join(RNG.choice("0123456789") for _ in range(14)))


def mobile():
    return RNG.choice(["139", "138", "186", "150", "177", "135", "158", "199"]) + \
        "".join(RNG.choice("0123456789") for _ in range(8))


def imsi():
    return "46000" + "".join(RNG.choice("0123456789") for _ in range(10))


def mac():
    return ":".join("%02x" % RNG.randrange(256) for _ in range(6))


def hexs(n):
    return "".join(RNG.choice("0123456789abcdef") for _ in range(n))


def uuid():
    h = hexs(32)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], RNG.choice("89ab"), h[17:20], h[20:32])


def public_ip():
    return "%d.%d.%d.%d" % (RNG.choice([36, 58, 111, 117, 183, 223]), RNG.randrange(1, 255),
                            RNG.randrange(1, 255), RNG.randrange(1, 255))


def gps(lat, lng):
    return round(lat + RNG.uniform(-0.05, 0.05), 6), round(lng + RNG.uniform(-0.05, 0.05), 6)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ["思远", "雨桐", "子涵", "浩然", "梓萱", "一诺", "俊杰", "欣怡", "宇轩", "佳怡", "明辉", "晓峰",
         "丽娟", "建国", "秀英", "志强", "婷婷", "嘉豪", "诗琪", "文博"]
PINYIN = ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun"]
CITIES = [("湖北省武汉市洪山区", "420111", 30.50, 114.34), ("北京市朝阳区", "110105", 39.92, 116.44),
          ("广东省深圳市南山区", "440305", 22.53, 113.93), ("上海市浦东新区", "310115", 31.22, 121.54),
          ("浙江省杭州市西湖区", "330106", 30.26, 120.13), ("四川省成都市武侯区", "510107", 30.64, 104.04),
          ("天津市南开区", "120104", 39.12, 117.15), ("江苏省南京市鼓楼区", "320106", 32.07, 118.77)]
ROADS = ["示例路", "样板街", "测试大道", "虚构巷", "范例路"]


def person(n):
    """A fictitious person: name, mobile, e-mail, address, resident ID."""
    city, region, lat, lng = CITIES[n % len(CITIES)]
    birth = "%04d%02d%02d" % (RNG.randrange(1965, 2004), RNG.randrange(1, 13), RNG.randrange(1, 29))
    py = PINYIN[n % len(PINYIN)]
    return {
        "name": SURNAMES[n % len(SURNAMES)] + GIVEN[n % len(GIVEN)],
        "mobile": mobile(),
        "email": "%s.%s%d@example.com" % (py, RNG.choice(["min", "jie", "hao", "lin", "yu"]), n),
        "address": "%s%s%d号%d栋%d室" % (city, RNG.choice(ROADS), RNG.randrange(1, 300),
                                       RNG.randrange(1, 20), RNG.randrange(101, 2999)),
        "postcode": region[:4] + "00",
        "id_no": resident_id(region, birth),
        "birth": "%s-%s-%s" % (birth[:4], birth[4:6], birth[6:]),
        "gps": gps(lat, lng),
    }


PEOPLE = [person(i) for i in range(60)]

# ---------------------------------------------------------------------------
# HAR building

UA = {
    "java": "Apache-HttpClient/5.2.1 (Java/17.0.9)",
    "go": "Go-http-client/1.1",
    "okhttp": "okhttp/4.12.0",
    "python": "python-requests/2.31.0",
    "node": "axios/1.6.7",
    "chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "android": "Dalvik/2.1.0 (Linux; U; Android 14; HONOR X50 Build/HONORALI-AN00)",
    "ios": "WKingApp/4.6.2 (iPhone15,3; iOS 17.5.1) CFNetwork/1496.0.7 Darwin/23.5.0",
    "curl": "curl/7.88.1",
}

# Where each policy pins its hosts (the `resolve` maps; quick start: 127.0.0.1).
SERVER_IP = {
    "api.payments-partner.example": "127.0.0.1", "sms.domestic-gateway.example": "127.0.0.1",
    "api.globalparcel.example": "127.0.0.22", "swift-gw.harbourtrust.example": "127.0.0.22",
    "api.paybridge.example": "127.0.0.24", "hr-api.meridian-trading.example": "127.0.0.24",
    "collect.insightly.example": "127.0.0.21", "api.helpdeskly.example": "127.0.0.21",
    "wadesk-backup.oss-cn-wuhan.example": "127.0.0.23", "sms.hubei-xinda.example": "127.0.0.23",
    "api.adreach.example": "127.0.0.31", "sdk.trackall-data.example": "127.0.0.31",
    "service.weiking-hk.example": "127.0.0.32", "obs.cn-south-1.myhuaweicloud.example": "127.0.0.33",
    "ingest.apppulse.example": "127.0.0.34", "api.connectsphere.example": "127.0.0.35",
    "api.cloudscribe.example": "127.0.0.41", "api.globalpay.example": "127.0.0.41",
    "support.kaitak-care.example": "127.0.0.42", "recordings.cos.ap-tianjin.example": "127.0.0.43",
    "sms.xunda-telecom.example": "127.0.0.43", "relay-sg.videopro.example": "127.0.0.44",
    "relay-eu.videopro.example": "127.0.0.45",
}


class Har:
    def __init__(self, name, title, comment):
        self.name = name
        self.title = title
        self.comment = comment
        self.entries = []
        # 2026-11-20 09:00 China time plus a minute per family.
        self.t0 = 9 * 3600 + 60 * len(FILES) * 7

    def add(self, host, path, method="POST", json_body=None, text=None, mime=None, headers=(),
            form=None, multipart=None, gzip_body=False, b64=False, ua="java", comment="",
            content_encoding=None, status=200, port=None):
        """One exchange. JSON_BODY (a dict, pretty or compact as recorded),
        TEXT (raw), FORM (list of pairs, x-www-form-urlencoded) or MULTIPART
        (list of (name, value) or (name, filename, type, value))."""
        n = len(self.entries)
        hdrs = [("Host", host), ("User-Agent", UA.get(ua, ua)), ("Accept", "application/json")]
        post = None
        body = None
        params = None
        if json_body is not None:
            text = json.dumps(json_body, ensure_ascii=False,
                              indent=2 if n % 3 == 0 else None,
                              separators=None if n % 3 == 0 else (",", ":"))
            mime = mime or "application/json"
        if form is not None:
            text = urllib.parse.urlencode(form)
            mime = mime or "application/x-www-form-urlencoded"
            params = [{"name": k, "value": v} for k, v in form]
        if multipart is not None:
            boundary = "----WebKitFormBoundary%s" % hexs(16)
            parts = []
            for p in multipart:
                if len(p) == 2:
                    parts.append('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                                 % (boundary, p[0], p[1]))
                else:
                    parts.append('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                                 'Content-Type: %s\r\n\r\n%s\r\n' % (boundary, p[0], p[1], p[2], p[3]))
            text = "".join(parts) + "--%s--\r\n" % boundary
            mime = "multipart/form-data; boundary=%s" % boundary
        if text is not None:
            body = text.encode("utf-8")
            if gzip_body:
                body = gzip.compress(body, mtime=0)
                content_encoding = "gzip"
            hdrs.append(("Content-Type", mime))
            if content_encoding:
                hdrs.append(("Content-Encoding", content_encoding))
        hdrs.extend(headers)
        if body is not None:
            hdrs.append(("Content-Length", str(len(body))))
            if gzip_body or b64:
                post = {"mimeType": mime, "text": base64.b64encode(body).decode("ascii"),
                        "encoding": "base64"}
            else:
                post = {"mimeType": mime, "text": text}
                if params is not None:
                    post["params"] = params
        u = urllib.parse.urlsplit("https://%s%s" % (host, path))
        qs = [{"name": k, "value": v} for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)]
        t = self.t0 + n * 3
        started = "2026-11-20T%02d:%02d:%02d.%03d+08:00" % (t // 3600 % 24, t // 60 % 60, t % 60,
                                                            (n * 137) % 1000)
        wait = 20 + (n * 37) % 180
        req = {"method": method, "url": u.geturl(), "httpVersion": "HTTP/1.1", "cookies": [],
               "headers": [{"name": k, "value": v} for k, v in hdrs], "queryString": qs,
               "headersSize": -1, "bodySize": len(body) if body is not None else 0}
        for k, v in hdrs:
            if k.lower() == "cookie":
                req["cookies"] = [{"name": c.split("=", 1)[0].strip(), "value": c.split("=", 1)[1]}
                                  for c in v.split(";") if "=" in c]
        if post is not None:
            req["postData"] = post
        rtext = '{"ok":true}'
        self.entries.append({
            "pageref": "page_1",
            "startedDateTime": started,
            "time": wait + 5,
            "request": req,
            "response": {"status": status, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [],
                         "headers": [{"name": "Content-Type", "value": "application/json"},
                                     {"name": "Content-Length", "value": str(len(rtext))}],
                         "content": {"size": len(rtext), "mimeType": "application/json", "text": rtext},
                         "redirectURL": "", "headersSize": -1, "bodySize": len(rtext)},
            "cache": {},
            "timings": {"blocked": 1, "dns": -1, "connect": -1, "ssl": -1, "send": 1, "wait": wait,
                        "receive": 3},
            "serverIPAddress": SERVER_IP.get(host, "198.51.100.%d" % (10 + len(host) % 200)),
            "connection": str(40000 + len(FILES) * 100 + n // 8),
            "comment": comment,
        })

    def doc(self):
        first = self.entries[0]["startedDateTime"] if self.entries else "2026-11-20T09:00:00.000+08:00"
        return {"log": {
            "version": "1.2",
            "creator": {"name": "bordergate corpus (make_corpus.py)", "version": "1",
                        "comment": "shaped like a Chromium/Playwright export; fictitious data"},
            "pages": [{"startedDateTime": first, "id": "page_1", "title": self.title,
                       "pageTimings": {"onContentLoad": -1, "onLoad": -1}}],
            "entries": self.entries,
            "comment": self.comment,
        }}


FILES = []


def family(name, title, comment):
    h = Har(name, title, comment)
    FILES.append(h)
    return h


def auth(prefix):
    return ("Authorization", "Bearer %s_%s" % (prefix, hexs(24)))


def reqid():
    return ("X-Request-Id", uuid())


# ---------------------------------------------------------------------------
# Families

def payments():
    h = family("payments", "Payment providers: charges, refunds, payouts, wires",
               "Card and wallet payments through providers abroad (quick-start payments-partner, "
               "WADesk paybridge and harbourtrust wires, Weidijia globalpay).")
    qs = "api.payments-partner.example"
    for i in range(6):
        p = PEOPLE[i]
        card = unionpay(19 if i % 2 else 16)
        h.add(qs, "/v1/charges", json_body={
            "order_id": "ORD-2026-11-%06d" % (31000 + i), "amount": 12900 + i * 350, "currency": "CNY",
            "captured_at": 1763601000000 + i * 4111,
            "customer": {"id": "qs-c-%04d" % (1001 + i), "name": p["name"]},
            "card": {"number": card, "exp_month": 3 + i, "exp_year": 2029}},
            headers=[auth("sk_live"), ("Idempotency-Key", uuid())], ua="java",
            comment="charge: UnionPay card and holder name with the order reference (contract)")
    for i in range(6, 10):
        p = PEOPLE[i]
        h.add(qs, "/v1/charges", json_body={
            "order_id": "ORD-2026-11-%06d" % (31000 + i), "amount": 5800, "currency": "CNY",
            "customer": {"id": "qs-c-%04d" % (1001 + i), "name": p["name"], "email": p["email"],
                         "phone": p["mobile"]},
            "billing_address": {"line1": p["address"], "postal_code": p["postcode"], "country": "CN"},
            "card": {"number": unionpay(), "exp_month": 11, "exp_year": 2030}},
            headers=[auth("sk_live")], ua="java",
            comment="charge with billing contact details: card/name on the contract, contact details "
                    "need consent (qs-c-1008 has it) else masked/redacted")
    for i in range(10, 13):
        p = PEOPLE[i]
        h.add(qs, "/v1/charges", json_body={
            "amount": 9900, "currency": "CNY", "description": "subscription renewal",
            "customer": {"id": "qs-c-%04d" % (1001 + i), "name": p["name"]},
            "card": {"number": unionpay(), "exp_month": 6, "exp_year": 2028}},
            headers=[auth("sk_live")], ua="java",
            comment="charge WITHOUT the order reference: no contract basis, no consent -> blocked")
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031020", "amount": 4500, "currency": "CNY",
        "customer": {"id": "qs-c-1021", "name": PEOPLE[13]["name"]},
        "card": {"number": visa(), "cvc": "%03d" % RNG.randrange(100, 999), "exp_month": 8, "exp_year": 2027}},
        headers=[auth("sk_live")], comment="card security code (credentials): never exported, removed")
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031021", "amount": 880000, "currency": "CNY",
        "customer": {"id": "qs-c-1022", "name": PEOPLE[14]["name"], "id_card_no": PEOPLE[14]["id_no"]},
        "card": {"source": "tok_%s" % hexs(24)}},
        headers=[auth("sk_live")], comment="large-amount KYC: resident ID number without consent -> blocked")
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031022", "amount": 1200, "currency": "HKD",
        "customer": {"id": "qs-c-1023", "name": PEOPLE[15]["name"], "passport_no": "E%08d" % RNG.randrange(10**7, 10**8)},
        "card": {"source": "tok_%s" % hexs(24)}},
        headers=[auth("sk_live")], comment="passport number (identity document) -> blocked")
    for i in range(3):
        h.add(qs, "/v1/refunds", json_body={
            "order_id": "ORD-2026-11-%06d" % (31000 + i), "refund_id": "rf_%s" % hexs(14),
            "charge": "ch_%s" % hexs(24), "amount": 12900 + i * 350, "reason": "requested_by_customer",
            "created": 1763650000 + i * 97},
            headers=[auth("sk_live")], comment="refund: ids, amounts, timestamps only (negatives) -> allow")
    h.add(qs, "/v1/charges/ch_%s" % hexs(24), method="GET", headers=[auth("sk_live")],
          comment="charge status poll, no body -> allow")
    h.add(qs, "/v1/charges?created_gte=1763596800&limit=50&starting_after=ch_%s" % hexs(24), method="GET",
          headers=[auth("sk_live")], comment="list charges: timestamps and cursors in the query (negatives)")

    pb = "api.paybridge.example"
    for i in range(20, 25):
        p = PEOPLE[i]
        h.add(pb, "/v1/charges", json_body={
            "order_id": "WD2026112%06d" % (40000 + i), "amount": {"value": "299.00", "currency": "USD"},
            "payer": {"name": p["name"], "email": p["email"]},
            "payment_method": {"type": "card_token", "source": "pbt_%s" % hexs(20)},
            "metadata": {"wadesk_user_id": "wd-u-%06d" % (200100 + i), "plan": "team-annual"}},
            headers=[auth("pb_live"), reqid()], comment="WADesk office payment: payer name and e-mail on the contract; the user id in metadata "
                    "is not necessary -> pseudonymized (wadesk-other-pi)")
    for i in range(25, 28):
        p = PEOPLE[i]
        h.add(pb, "/v1/charges", json_body={
            "order_id": "WD2026112%06d" % (40000 + i), "amount": {"value": "49.90", "currency": "USD"},
            "payer": {"name": p["name"], "email": p["email"], "mobile": p["mobile"]},
            "payment_method": {"type": "card_token", "source": "pbt_%s" % hexs(20)},
            "metadata": {"wadesk_user_id": "wd-u-%06d" % (200100 + i)}},
            headers=[auth("pb_live")], comment="payer mobile is not necessary for the payment: masked (wadesk-other-pi)")
    for i in range(28, 31):
        p = PEOPLE[i]
        h.add(pb, "/v1/charges", json_body={
            "order_id": "WD2026112%06d" % (40000 + i), "amount": {"value": "120.00", "currency": "USD"},
            "payer": {"name": p["name"], "email": p["email"]},
            "payment_method": {"type": "card", "card_number": unionpay(), "expiry": "09/29"},
            "metadata": {"wadesk_user_id": "wd-u-%06d" % (200100 + i)}},
            headers=[auth("pb_live")], comment="raw card number (financial account, sensitive) without separate consent -> blocked")
    h.add(pb, "/v1/refunds", json_body={"charge_id": "pbc_%s" % hexs(16), "amount": {"value": "49.90", "currency": "USD"}},
          headers=[auth("pb_live")], comment="refund endpoint not routed by WADesk -> refused")

    gp = "api.globalpay.example"
    for i in range(31, 35):
        p = PEOPLE[i]
        h.add(gp, "/v1/payments", json_body={
            "invoice_id": "VP-INV-2026-%05d" % (7700 + i), "amount": 19900, "currency": "CNY",
            "customer": {"user_id": "wdj-u-%04d" % (8100 + i), "email": p["email"]},
            "card": {"number": unionpay(), "holder": p["name"], "exp": "12/29"}},
            headers=[auth("gp"), reqid()], ua="go", comment="subscription paid by card with the invoice reference: card, holder, e-mail on the contract; "
                    "the account id is not necessary -> removed (wdj-payment-nothing-else)")
    for i in range(35, 37):
        p = PEOPLE[i]
        h.add(gp, "/v1/payments", json_body={
            "invoice_id": "VP-INV-2026-%05d" % (7700 + i), "amount": 19900, "currency": "CNY",
            "method": "alipay",
            "customer": {"user_id": "wdj-u-%04d" % (8100 + i), "email": p["email"]},
            "wallet": {"alipay_account": p["mobile"]}},
            headers=[auth("gp")], ua="go", comment="Alipay account (financial account field rule) on the contract; account id removed")
    for i in range(37, 39):
        p = PEOPLE[i]
        h.add(gp, "/v1/payments", json_body={
            "amount": 19900, "currency": "CNY",
            "customer": {"user_id": "wdj-u-%04d" % (8100 + i), "email": p["email"]},
            "card": {"number": unionpay(), "holder": p["name"], "exp": "02/30"}},
            headers=[auth("gp")], ua="go", comment="card payment without the invoice reference -> blocked")
    for i in range(39, 41):
        p = PEOPLE[i]
        h.add(gp, "/v1/payments", json_body={
            "invoice_id": "VP-INV-2026-%05d" % (7700 + i), "amount": 39900, "currency": "CNY",
            "customer": {"user_id": "wdj-u-%04d" % (8100 + i), "email": p["email"], "phone": p["mobile"],
                         "birthday": p["birth"]},
            "card": {"number": unionpay(), "holder": p["name"], "cvv": "%03d" % RNG.randrange(100, 999)}},
            headers=[auth("gp")], ua="go",
            comment="phone and birthday not necessary -> removed; CVV (credentials) removed; card on contract")
    h.add(gp, "/v1/payments/VP-INV-2026-07731", method="GET", headers=[auth("gp")], ua="go",
          comment="payment status, invoice id in the path (negative) -> allow")

    hb = "swift-gw.harbourtrust.example"
    for i in range(41, 45):
        p = PEOPLE[i]
        h.add(hb, "/api/wires", json_body={
            "message_type": "pacs.008", "uetr": uuid(), "amount": "%d.00" % (5000 + i * 100), "currency": "USD",
            "originator": {"name": p["name"], "address": p["address"]},
            "originator_account": unionpay(19),
            "beneficiary": {"name": "Harbour Textiles Ltd", "account": "HK%016d" % RNG.randrange(10**15, 10**16),
                            "bic": "HTBKHKHHXXX"},
            "value_date": "2026-11-21"},
            headers=[auth("ht"), ("X-Idempotency-Key", uuid())],
            comment="wire transfer: originator information travels by legal obligation (AML) -> allow")
    p = PEOPLE[45]
    h.add(hb, "/api/wires", json_body={
        "message_type": "pacs.008", "uetr": uuid(), "amount": "9800.00", "currency": "USD",
        "originator": {"name": p["name"], "address": p["address"], "id_number": p["id_no"]},
        "originator_account": unionpay(19), "value_date": "2026-11-21"},
        headers=[auth("ht")], comment="wire with the originator's resident ID number: legal obligation covers it -> allow")
    p = PEOPLE[46]
    h.add(hb, "/api/wires", json_body={
        "message_type": "pacs.008", "uetr": uuid(), "amount": "1500.00", "currency": "USD",
        "originator": {"name": p["name"], "address": p["address"]},
        "originator_account": unionpay(19), "notify_mobile": p["mobile"], "value_date": "2026-11-22"},
        headers=[auth("ht")], comment="notification mobile is not originator information: masked (wadesk-other-pi)")


def logistics():
    h = family("logistics", "Cross-border logistics: shipments, labels, customs, returns",
               "Shipment creation at the WADesk logistics partner (HK), returns to the W-KING affiliate "
               "(HK), duties charged through the quick-start payment provider.")
    gp = "api.globalparcel.example"
    for i in range(12):
        p = PEOPLE[i]
        h.add(gp, "/v2/shipments", json_body={
            "order_id": "WD20261120%05d" % (17 + i * 13), "merchant": "wadesk-shop-%d" % (2291 + i),
            "service": RNG.choice(["HK-CN-EXPRESS", "HK-CN-ECONOMY"]),
            "buyer": {"user_id": "wd-u-%06d" % (100700 + i)},
            "consignee": {"name": p["name"], "phone": ["+86 ", "", "0086-"][i % 3] + p["mobile"],
                          "address": p["address"], "postcode": p["postcode"]},
            "parcel": {"weight_kg": round(0.4 + i * 0.3, 1), "declared_value": {"currency": "USD", "value": 20 + i * 7.5},
                       "items": [{"sku": "SKU-%05d" % (10000 + i * 37), "desc": "phone case", "qty": 1 + i % 3}]},
            "created_at": "2026-11-20T09:%02d:00+08:00" % (10 + i)},
            headers=[auth("gp_live"), reqid()],
            comment="shipment: consignee name, mobile and address with the order reference (contract necessity) allowed; "
                    "the buyer's account id is not necessary: pseudonymized (wadesk-other-pi)")
    for i in range(12, 16):
        p = PEOPLE[i]
        h.add(gp, "/v2/shipments", json_body={
            "order_id": "WD20261120%05d" % (17 + i * 13), "service": "HK-CN-EXPRESS",
            "buyer": {"user_id": "wd-u-%06d" % (100700 + i)},
            "consignee": {"name": p["name"], "phone": p["mobile"], "address": p["address"]},
            "customs": {"declarant_id_no": p["id_no"], "purpose": "personal use"},
            "parcel": {"weight_kg": 2.5, "declared_value": {"currency": "USD", "value": 180}}},
            headers=[auth("gp_live")],
            comment="customs clearance: the buyer's resident ID number is sensitive PI and needs separate consent -> blocked")
    for i in range(16, 19):
        p = PEOPLE[i]
        h.add(gp, "/v2/shipments", json_body={
            "merchant": "wadesk-shop-3001", "service": "HK-CN-ECONOMY",
            "buyer": {"user_id": "wd-u-%06d" % (100700 + i)},
            "consignee": {"name": p["name"], "phone": p["mobile"], "address": p["address"]}},
            headers=[auth("gp_live")], comment="shipment without the order reference: no contract basis -> blocked")
    for i in range(3):
        h.add(gp, "/v2/shipments/GP%012d/label?format=pdf&size=A6" % RNG.randrange(10**11, 10**12), method="GET",
              headers=[auth("gp_live")], comment="label download: tracking number in the path and query (negative) -> allow")
    h.add(gp, "/v2/shipments/cancel", json_body={
        "order_id": "WD2026112000212", "tracking_no": "GP%012d" % RNG.randrange(10**11, 10**12),
        "reason": "buyer_cancelled", "requested_at": 1763612345678},
        headers=[auth("gp_live")], comment="cancellation: order id, tracking number, timestamp (negatives) -> allow")
    h.add(gp, "/v2/tracking/events", json_body={
        "tracking_no": "GP%012d" % RNG.randrange(10**11, 10**12), "since": "2026-11-19T00:00:00Z"},
        headers=[auth("gp_live")], comment="tracking API is not routed -> refused")

    hk = "service.weiking-hk.example"
    for i in range(20, 26):
        p = PEOPLE[i]
        h.add(hk, "/rma/v1/orders", json_body={
            "rma_no": "RMA-HK-2026-11-%04d" % (400 + i), "product": RNG.choice(["W-KING D10", "W-KING T9", "W-KING D320"]),
            "fault": RNG.choice(["no sound", "battery does not charge", "bluetooth drops"]),
            "customer": {"account_id": "wk-u-%04d" % (3300 + i), "name": p["name"], "phone": p["mobile"]},
            "return_address": p["address"], "courier": "SF", "waybill": "SF%013d" % RNG.randrange(10**12, 10**13)},
            headers=[auth("whk"), reqid()], ua="go",
            comment="return shipment: customer name, phone and return address are the necessary fields -> name/phone/address allowed; the account id is removed")
    for i in range(26, 29):
        p = PEOPLE[i]
        h.add(hk, "/rma/v1/orders", json_body={
            "rma_no": "RMA-HK-2026-11-%04d" % (400 + i), "product": "W-KING T9",
            "customer": {"name": p["name"], "phone": p["mobile"], "email": p["email"]},
            "return_address": p["address"]},
            headers=[auth("whk")], ua="go",
            comment="the e-mail is not a necessary field for the affiliate -> removed")
    p = PEOPLE[29]
    h.add(hk, "/rma/v1/orders", json_body={
        "product": "W-KING D10", "customer": {"name": p["name"], "phone": p["mobile"]},
        "return_address": p["address"]},
        headers=[auth("whk")], ua="go", comment="no RMA number: nothing personal may go (contract reference missing) -> removed")
    qs = "api.payments-partner.example"
    for i in range(30, 33):
        p = PEOPLE[i]
        h.add(qs, "/v1/charges", json_body={
            "order_id": "DUTY-2026-%06d" % (500 + i), "amount": 2350, "currency": "CNY",
            "description": "import duty and VAT", "customer": {"id": "qs-c-%04d" % (2000 + i), "name": p["name"]},
            "card": {"source": "tok_%s" % hexs(24)}},
            headers=[auth("sk_live")], comment="duties charged through the payment provider: holder name on the contract, card as a token -> allow")


def analytics():
    h = family("analytics", "Analytics and telemetry SDK batches",
               "Device and usage telemetry: WADesk's analytics SDK (US, per-event batches, pixels), "
               "W-KING's app analytics processor (SG, volume exemption) and a denylisted legacy tracker.")
    ins = "collect.insightly.example"
    devices = []
    for i in range(8):
        devices.append({"imei": imei(RNG.choice(["86012304", "35467211", "86769504"])), "android_id": hexs(16),
                        "oaid": uuid(), "mac": mac(), "model": RNG.choice(["HONOR X50", "Redmi K70", "vivo Y78", "OPPO Reno11"])})
    for b in range(10):
        evs = []
        for k in range(3 + b % 3):
            d = devices[(b + k) % len(devices)]
            p = PEOPLE[(b * 3 + k) % 40]
            ev = {"uid": "wd-u-%06d" % (300100 + (b + k) % 12), "event": RNG.choice(["app_start", "chat_open", "crash", "seat_login"]),
                  "ts": 1763600000000 + b * 60000 + k * 1371, "visit_id": uuid(),
                  "device": {"imei": d["imei"], "android_id": d["android_id"], "model": d["model"], "os": "Android 14"}}
            if k % 2 == 0:
                ev["net"] = {"ip": public_ip(), "carrier": "46001"}
            if b % 3 == 1:
                ev["location"] = {"lat": p["gps"][0], "lng": p["gps"][1], "accuracy_m": 12}
            if b % 4 == 2:
                ev["device"]["wifi_bssid"] = mac()
                ev["device"]["base_station"] = "460-00-%d-%d" % (RNG.randrange(10000, 40000), RNG.randrange(1000, 90000))
            evs.append(ev)
        body = {"sdk": "insightly-android/5.2.0", "app": "com.wadesk.client", "sent_at": 1763600000000 + b * 60000,
                "batch_id": uuid(), "events": evs}
        h.add(ins, "/v3/batch", json_body=body, gzip_body=(b % 3 == 2), ua="okhttp",
              headers=[("X-Insightly-Key", "ik_%s" % hexs(20))],
              comment="event batch: IMEI, Android ID, IP%s%s per event -> de-identified per event unless the user consented%s"
                      % (", GPS" if b % 3 == 1 else "", ", Wi-Fi BSSID and base station" if b % 4 == 2 else "",
                         " (gzip body)" if b % 3 == 2 else ""))
    for b in range(4):
        d = devices[b]
        inner = json.dumps({"imei": d["imei"], "mac": d["mac"], "oaid": d["oaid"], "screen": "1080x2400"})
        h.add(ins, "/v3/batch", json_body={
            "sdk": "insightly-unity/2.8.1", "app": "com.wadesk.client", "sent_at": 1763601000000 + b * 1000,
            "events": [{"uid": "wd-u-%06d" % (300200 + b), "event": "device_info", "ts": 1763601000000 + b * 1000,
                        "payload": inner}]},
            ua="okhttp", comment="stringified JSON inside JSON (Unity SDK): identifiers in events[0].payload -> found and de-identified")
    for b in range(6):
        d = devices[b]
        p = PEOPLE[b]
        q = [("uid", "wd-u-%06d" % (300300 + b)), ("ev", "page_view"), ("t", str(1763602000000 + b * 500)),
             ("sid", uuid())]
        if b % 2 == 0:
            q.append(("imei", d["imei"]))
        else:
            q += [("ip", public_ip()), ("ll", "%.6f,%.6f" % p["gps"])]
        h.add(ins, "/v3/track?" + urllib.parse.urlencode(q), method="GET", ua="chrome",
              comment="GET beacon with identifiers in the query string -> query rewritten")
    h.add(ins, "/v3/batch", json_body={
        "sdk": "insightly-android/5.2.0", "app": "com.wadesk.client", "sent_at": 1763603000000,
        "events": [{"uid": "wd-u-300400", "event": "app_start", "ts": 1763603000000, "visit_id": uuid(),
                    "trace_id": uuid(), "build": "3.8.0-1209", "duration_ms": 812}]},
        ua="okhttp", comment="event whose only personal data is the uid (account id, pseudonymized without consent); "
                  "UUIDs under non-device keys, build and timestamps are negatives")
    h.add(ins, "/v3/config?app=com.wadesk.client&sdk=5.2.0", method="GET", ua="okhttp",
          comment="SDK configuration fetch: not a routed path -> refused")

    ap = "ingest.apppulse.example"
    for i in range(10):
        d = devices[i % len(devices)]
        p = PEOPLE[20 + i]
        body = {"sdk": "apppulse-android/3.9.0", "app": "com.weiking.app", "uid": "wk-u-%04d" % (5100 + i),
                "device": {"android_id": d["android_id"], "oaid": d["oaid"], "model": d["model"], "os": "Android 14"},
                "net": {"ip": public_ip(), "type": RNG.choice(["wifi", "5g"])},
                "events": [{"name": "app_start", "ts": 1763704800000 + i * 1000},
                           {"name": "speaker_connect", "ts": 1763704860000 + i * 1000, "props": {"model": "W-KING D10"}}]}
        if i % 3 == 0:
            body["device"]["imei"] = d["imei"]
        if i % 4 == 1:
            body["events"].append({"name": "find_my_speaker", "ts": 1763704900000, "props": {"gps": "%.6f,%.6f" % p["gps"]}})
        if i % 5 == 2:
            body["device"]["installed_apps"] = ["com.tencent.mm", "com.eg.android.AlipayGphone", "com.ss.android.ugc.aweme"]
        h.add(ap, "/collect/v2", json_body=body, ua="android", gzip_body=(i % 4 == 3),
              headers=[("Authorization", "AP-Key ak_%s" % hexs(16))],
              comment="app analytics upload: device identifiers%s%s -> consented user allowed (wk-u-5100), others anonymized"
                      % (", GPS" if i % 4 == 1 else "", ", installed apps" if i % 5 == 2 else ""))
    h.add(ap, "/collect/v2", json_body={"sdk": "apppulse-android/3.9.0", "app": "com.weiking.app",
                                        "events": [{"name": "heartbeat", "ts": 1763705000000}]},
          ua="android", comment="heartbeat without personal data -> allow")
    trk = "sdk.trackall-data.example"
    d = devices[2]
    h.add(trk, "/t/v3/report", json_body={"appid": "wk-legacy", "uid": "wk-u-5201", "imei": d["imei"], "mac": d["mac"], "ip": public_ip()},
          ua="android", comment="legacy tracker on a PIPL Art. 42 list -> blocked")
    h.add(trk, "/t/v3/config?appid=wk-legacy&sdk=2.4.0", method="GET", ua="android",
          comment="denylisted recipient: blocked even without personal data")
    h.add(trk, "/t/v3/report", json_body={"appid": "wk-legacy", "ev": "launch", "ts": 1763705100000},
          ua="android", comment="denylisted recipient, no personal data -> blocked")


def crm_support():
    h = family("crm_support", "CRM and support-ticket sync",
               "Tickets and contacts synchronised to WADesk's hosted help desk (US, per ticket) and "
               "Weidijia's outsourced support desk (HK, participant's region decides).")
    hd = "api.helpdeskly.example"
    for b in range(8):
        tickets = []
        for k in range(2 + b % 3):
            p = PEOPLE[(b * 4 + k) % 50]
            t = {"external_id": "T-2026-%05d" % (b * 10 + k + 800), "subject": RNG.choice(["refund not received", "seat login fails", "invoice question"]),
                 "requester": {"external_id": "wd-u-%06d" % (400100 + b * 4 + k), "name": p["name"],
                               "email": p["email"]},
                 "created_at": "2026-11-19T1%d:%02d:00+08:00" % (k, b * 5), "priority": "normal",
                 "description": "Order WD20261119%05d, paid 86.50 USD on 2026-11-18; please check." % (b * 100 + k)}
            if k == 1:
                t["requester"]["phone"] = p["mobile"]
            if b % 4 == 3 and k == 0:
                t["description"] = "客户提供身份证号 %s 用于核实身份" % p["id_no"]
            if b == 5 and k == 1:
                t["custom_fields"] = {"portal_password": "Wd!%s" % hexs(8)}
            tickets.append(t)
        h.add(hd, "/api/v2/tickets/create_many", json_body={"tickets": tickets}, ua="python",
              headers=[("Authorization", "Basic %s" % base64.b64encode(b"svc-sync/token:x").decode())],
              comment="ticket batch: names, e-mails, phones -> consented requester allowed, others masked%s%s"
                      % ("; the ticket whose text holds an ID number is removed" if b % 4 == 3 else "",
                         "; a password in a custom field -> the whole request blocked (never_export)" if b == 5 else ""))
    for i in range(4):
        p = PEOPLE[50 + i]
        h.add(hd, "/api/v2/tickets", json_body={"tickets": [{
            "external_id": "T-2026-%05d" % (900 + i), "subject": "dispute: item not as described",
            "requester": {"external_id": "wd-u-%06d" % (400300 + i), "name": p["name"]},
            "description": "Dispute for order WD20261118%05d, amount 42.00 USD." % (300 + i)}]},
            ua="python", comment="single ticket, requester name only -> replaced unless consented")
    h.add(hd, "/api/v2/uploads?filename=receipt.pdf", text="%PDF-1.7\n% fictitious receipt scan\n", mime="application/pdf",
          ua="python", comment="attachment upload (PDF, opaque) -> blocked (opaque_bodies: block)")
    h.add(hd, "/api/v2/uploads?filename=screenshot.png", b64=True, text="\x89PNG\r\n\x1a\n fictitious", mime="image/png",
          ua="python", comment="screenshot upload (PNG, base64 in the HAR) -> blocked (opaque)")
    for i in range(3):
        p = PEOPLE[54 + i]
        h.add(hd, "/api/v2/users/create_or_update", json_body={"user": {"external_id": "wd-u-%06d" % (400400 + i),
                                                                       "name": p["name"], "email": p["email"]}},
              ua="python", comment="CRM contact sync: endpoint not routed by WADesk -> refused")
    kt = "support.kaitak-care.example"
    regions = ["HK", "CN", "SG", "CN", "us", "CN", "JP", "CN", "DE", "CN"]
    for i, reg in enumerate(regions):
        p = PEOPLE[30 + i]
        # No name: the Weidijia pack has no field rule for $.user.name and a
        # bare "name" key is not a finding, so a name here would leave
        # unchanged for users in China (reported, not encoded).
        u = {"user_id": "wdj-u-%04d" % (9100 + i), "region": reg, "email": p["email"]}
        if i % 3 == 0:
            u["phone"] = p["mobile"]
        h.add(kt, "/api/tickets", json_body={
            "ticket_no": "KT-%06d" % (52000 + i), "category": RNG.choice(["audio", "billing", "login"]),
            "user": u, "meeting_id": "%03d-%03d-%03d" % (RNG.randrange(1000), RNG.randrange(1000), RNG.randrange(1000)),
            "message": "Meeting dropped at 10:42, duration 58 minutes."},
            ua="node", headers=[auth("kt")],
            comment="support ticket of a user in %s -> %s" % (reg, "subject abroad: allow" if reg.upper() != "CN"
                                                             else "user in China, no consent: de-identified"))
    h.add(kt, "/api/tickets", json_body={"ticket_no": "KT-052099", "category": "billing",
                                         "user": {"user_id": "wdj-u-9199", "email": PEOPLE[41]["email"]},
                                         "message": "Please resend invoice VP-INV-2026-07741."},
          ua="node", headers=[auth("kt")], comment="ticket without the user's region: subject_abroad cannot hold -> de-identified")
    h.add(kt, "/api/tickets/KT-052001/status", method="GET", ua="node", headers=[auth("kt")],
          comment="ticket status, no body -> allow")
    qs = "api.payments-partner.example"
    for i in range(4):
        p = PEOPLE[44 + i]
        cust = {"id": "qs-c-%04d" % (4100 + i), "name": p["name"]}
        if i % 2:
            cust["email"] = p["email"]
        h.add(qs, "/v1/refunds", json_body={"order_id": "ORD-2026-11-%06d" % (52000 + i), "refund_id": "rf_%s" % hexs(14),
                                            "amount": 4200 + i * 100, "reason": "support ticket KT-%06d" % (52010 + i),
                                            "customer": cust},
              ua="python", headers=[auth("sk_live")],
              comment="refund granted by support: holder name on the payment contract%s"
                      % ("; the e-mail needs consent -> masked" if i % 2 else " -> allow"))


def advertising():
    h = family("advertising", "Advertising attribution with DNT and Sec-GPC",
               "Install and in-app events and click beacons to W-KING's attribution partner (US); "
               "honour_dnt_for advertising: DNT: 1 / Sec-GPC: 1 mean no consent counts.")
    ad = "api.adreach.example"
    for i in range(18):
        p = PEOPLE[i]
        uid = "wk-u-%04d" % (5000 + i % 6)
        hdr = [auth("adr")]
        note = ""
        if i % 6 == 1:
            hdr.append(("DNT", "1"))
            note = " DNT: 1"
        elif i % 6 == 2:
            hdr.append(("Sec-GPC", "1"))
            note = " Sec-GPC: 1"
        elif i % 6 == 3:
            hdr.append(("DNT", "0"))
            note = " DNT: 0"
        body = {"event": RNG.choice(["install", "open", "purchase", "sign_up"]), "event_time": "2026-11-21T14:%02d:11+08:00" % i,
                "app": "com.weiking.app", "app_version": "4.6.2", "campaign": "cmp-2026-q4-spk", "user_id": uid,
                "device": {"oaid": uuid(), "android_id": hexs(16), "model": "HONOR X50", "os": "Android 14"},
                "client_ip": public_ip(), "revenue": {"amount": 129.0, "currency": "CNY"}}
        if i % 5 == 4:
            body["device"]["idfa"] = uuid().upper()
            body["device"]["os"] = "iOS 17.5"
        h.add(ad, "/v1/events", json_body=body, headers=hdr, ua="okhttp",
              comment="attribution event of %s%s -> %s" % (uid, note,
                      "allowed on the user's advertising consent" if uid in ("wk-u-5000", "wk-u-5003") and i % 6 in (0, 3)
                      else "identifiers anonymized"))
    for i in range(8):
        uid = "wk-u-%04d" % (5000 + i % 4)
        q = [("cmp", "cmp-2026-q4-spk"), ("ad", "ad-%d" % (5521 + i)), ("uid", uid), ("oaid", uuid()),
             ("ts", str(1763710000 + i * 13))]
        hdr = [("DNT", "1")] if i % 2 else []
        h.add(ad, "/v1/click?" + urllib.parse.urlencode(q), method="GET", headers=hdr, ua="chrome",
              comment="click beacon, OAID in the query%s" % (" with DNT: 1" if i % 2 else ""))
    for i in range(3):
        h.add(ad, "/v1/events", json_body={"event": "heartbeat", "event_time": "2026-11-21T15:0%d:00+08:00" % i,
                                           "app": "com.weiking.app", "campaign": "cmp-2026-q4-spk", "request_id": uuid()},
              headers=[auth("adr"), ("Sec-GPC", "1")], ua="okhttp", comment="no personal data (request_id is a UUID, not a device id) -> allow")
    h.add(ad, "/v2/audiences/upload", json_body={"audience": "lookalike-q4", "hashed_mobiles": [hexs(64) for _ in range(3)]},
          headers=[auth("adr")], ua="python", comment="audience upload endpoint is not routed -> refused")


def cloud_storage():
    h = family("cloud_storage", "Cloud storage: objects, metadata, multipart uploads",
               "Backups, network logs, user data and recordings in domestic object storage (WADesk "
               "oss-cn-wuhan, W-KING Huawei Cloud OBS, Weidijia COS), recording chunks to a European "
               "relay, and an unrouted bucket abroad.")
    oss = "wadesk-backup.oss-cn-wuhan.example"
    for i in range(4):
        p = PEOPLE[i]
        h.add(oss, "/backups/crm/2026-11-20/customers-%02d.json" % i, method="PUT",
              json_body={"customers": [{"name": p["name"], "mobile": p["mobile"], "id_no": p["id_no"], "address": p["address"]}]},
              headers=[("x-oss-meta-uploader", "backup-bot@wadesk.example"), ("x-oss-storage-class", "Standard"),
                       ("Date", "Fri, 20 Nov 2026 01:%02d:00 GMT" % i)], ua="go",
              comment="customer backup to domestic storage (CN): allowed and recorded, not inspected")
    up = "0004B9894A22E5B1888A1E29F823%s" % hexs(8).upper()
    h.add(oss, "/backups/chat/2026-11-20.tar.gz?uploads", method="POST", ua="go",
          headers=[("x-oss-meta-uploader", PEOPLE[5]["email"])], comment="multipart upload: initiate (uploader e-mail in metadata, domestic)")
    for part in range(1, 4):
        h.add(oss, "/backups/chat/2026-11-20.tar.gz?partNumber=%d&uploadId=%s" % (part, up), method="PUT",
              text="chunk-%d %s" % (part, hexs(40)), mime="application/octet-stream", ua="go",
              comment="multipart upload: part %d (opaque, domestic) -> allow" % part)
    h.add(oss, "/backups/chat/2026-11-20.tar.gz?uploadId=%s" % up, method="POST", mime="application/xml",
          text="<CompleteMultipartUpload>" + "".join("<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>" % (k, hexs(32).upper()) for k in range(1, 4)) + "</CompleteMultipartUpload>",
          ua="go", comment="multipart upload: complete")
    for i in range(3):
        lines = "\n".join(json.dumps({"ts": "2026-11-20T0%d:%02d:00+08:00" % (i, k), "src_ip": public_ip(), "user": "wd-u-%06d" % (500100 + k),
                                      "path": "/api/seat/login", "status": 200}) for k in range(4))
        h.add(oss, "/network-logs/2026/11/20/edge-%d.jsonl" % i, method="PUT", text=lines + "\n", mime="application/x-ndjson",
              ua="go", comment="network logs kept in the PRC (4.2.2) -> allow")
    obs = "obs.cn-south-1.myhuaweicloud.example"
    for i in range(5):
        p = PEOPLE[10 + i]
        h.add(obs, "/wking-userdata/profiles/wk-u-%04d.json" % (6000 + i), method="PUT",
              json_body={"uid": "wk-u-%04d" % (6000 + i), "nickname": p["name"][1:], "email": p["email"], "phone": p["mobile"],
                         "devices": [{"model": "W-KING D10", "bt_mac": mac()}]},
              headers=[("x-obs-storage-class", "STANDARD"), ("x-obs-meta-uploader", p["email"])], ua="java",
              comment="user profile to Huawei Cloud (CN) -> allow")
    h.add(obs, "/wking-userdata/locations/2026-11-21/wk-u-6001.jsonl", method="PUT",
          text="".join(json.dumps({"uid": "wk-u-6001", "ts": 1763704900000 + k, "gps": "%.6f,%.6f" % PEOPLE[11]["gps"]}) + "\n" for k in range(3)),
          mime="application/x-ndjson", ua="java", comment="location history to domestic cloud -> allow")
    h.add(obs, "/wking-userdata?prefix=profiles/&max-keys=100", method="GET", ua="java", comment="bucket listing -> allow")
    cos = "recordings.cos.ap-tianjin.example"
    for i in range(4):
        p = PEOPLE[20 + i]
        h.add(cos, "/meetings/2026/11/%s/meta.json" % uuid(), method="PUT",
              json_body={"meeting_id": "%03d-%03d-%03d" % (i, i + 1, i + 2), "host": {"name": p["name"], "phone": p["mobile"]},
                         "participants": [PEOPLE[24 + i]["name"], PEOPLE[28 + i]["name"]], "duration_s": 3510 + i},
              headers=[("x-cos-meta-uploader", p["email"])], ua="go", comment="recording metadata to domestic COS -> allow")
    h.add(cos, "/meetings/2026/11/rec-0001.mp4", method="PUT", b64=True, text="\x00\x00\x00\x18ftypmp42 fictitious",
          mime="video/mp4", ua="go", comment="recording to domestic COS (opaque, domestic) -> allow")
    eu = "relay-eu.videopro.example"
    for i in range(3):
        h.add(eu, "/v1/recordings/%s/chunks/%d" % (uuid(), i), method="PUT", b64=True,
              text="\x00\x00\x00\x18ftypmp42 chunk %d" % i, mime="application/octet-stream", ua="go",
              comment="recording chunk to the European node: opaque body abroad -> blocked")
    for i in range(3):
        h.add("company-exports.s3.us-west-2.amazonaws.example", "/exports/crm/2026-11-20/part-%d.csv" % i, method="PUT",
              text="name,email\n%s,%s\n" % (PEOPLE[40 + i]["name"], PEOPLE[40 + i]["email"]), mime="text/csv", ua="python",
              comment="CRM export to a bucket abroad that no policy routes -> refused (421)")


def hr():
    h = family("hr", "HR system: agent roster, payroll",
               "Agent rosters synchronised to the WADesk enterprise user's HR system (SG, HR management "
               "basis) and payroll attempts that carry sensitive data.")
    hr_host = "hr-api.meridian-trading.example"
    for b in range(10):
        agents = []
        for k in range(3):
            p = PEOPLE[(b * 3 + k) % 60]
            a = {"employee_no": "MT-%05d" % (10200 + b * 3 + k), "name": p["name"], "email": "agent%d@meridian-trading.example" % (b * 3 + k),
                 "mobile": p["mobile"], "seat": "seat-%03d" % (b * 3 + k), "team": RNG.choice(["pre-sales", "after-sales"]),
                 "shift_start": "09:00", "hired": "2024-0%d-15" % (1 + k)}
            if b % 4 == 1 and k == 2:
                a["salary"] = {"monthly": 16500 + b * 100, "currency": "CNY", "bank_card": unionpay(19)}
            if b % 4 == 3 and k == 0:
                a["id_card"] = p["id_no"]
            agents.append(a)
        h.add(hr_host, "/wadesk/v1/agents/sync", json_body={"company": "meridian", "sync_id": uuid(), "agents": agents},
              ua="java", headers=[auth("mt"), reqid()],
              comment="agent roster: names, work e-mails, mobiles on the HR-management basis%s"
                      % ("; the agent with a salary card (financial account, sensitive) is removed" if b % 4 == 1 else
                         "; the agent with an ID number (sensitive) is removed" if b % 4 == 3 else " -> allow"))
    for i in range(4):
        h.add(hr_host, "/wadesk/v1/agents/MT-%05d/attendance?month=2026-11" % (10200 + i), method="GET",
              headers=[auth("mt")], ua="java", comment="attendance query: employee number in the path (negative) -> allow")
    for i in range(3):
        h.add(hr_host, "/wadesk/v1/seats", json_body={"agents": [{"employee_no": "MT-%05d" % (10300 + i), "seat": "seat-%03d" % (80 + i),
                                                                   "license": "LIC-%s" % hexs(10), "valid_until": "2027-11-30"}]},
              headers=[auth("mt")], ua="java", comment="seat licences, no personal data besides the employee number -> allow")
    qs = "api.payments-partner.example"
    for i in range(3):
        p = PEOPLE[47 + i]
        body = {"order_id": "EXP-2026-11-%05d" % (300 + i), "amount": 68000 + i * 1000, "currency": "CNY",
                "purpose": "travel expense reimbursement",
                "customer": {"id": "qs-c-%04d" % (4200 + i), "name": p["name"]},
                "card": {"number": unionpay(19)}}
        if i == 2:
            del body["order_id"]
        h.add(qs, "/v1/payouts", json_body=body, ua="java", headers=[auth("sk_live")],
              comment="expense payout to an employee's UnionPay card %s"
                      % ("without the reference -> blocked" if i == 2 else "with the expense reference (contract) -> allow"))
    for i in range(3):
        p = PEOPLE[50 + i]
        h.add("sms.domestic-gateway.example", "/v1/sms/send", json_body={"to": p["mobile"], "template": "SMS_SHIFT_CHANGE",
                                                                          "params": {"name": p["name"], "shift": "09:00-18:00"}},
              ua="java", headers=[auth("sms")], comment="shift notice to an agent by SMS (domestic) -> allow")
    for i in range(3):
        p = PEOPLE[40 + i]
        h.add(hr_host, "/payroll/v1/runs", json_body={"employee_no": "MT-%05d" % (10400 + i), "name": p["name"],
                                                     "bank_card": unionpay(19), "net_pay": "15230.55"},
              headers=[auth("mt")], ua="java", comment="payroll endpoint is not routed -> refused")


def sms():
    h = family("sms_domestic", "Domestic SMS gateways",
               "Verification codes and notices through SMS gateways in mainland China (quick-start, "
               "WADesk Xinda, Weidijia Xunda): domestic transfers are allowed and recorded.")
    for i in range(10):
        p = PEOPLE[i]
        h.add("sms.domestic-gateway.example", "/v1/sms/send", json_body={
            "to": ["+86" + p["mobile"], p["mobile"], "+86 " + p["mobile"][:3] + " " + p["mobile"][3:7] + " " + p["mobile"][7:]][i % 3],
            "template": "SMS_2231%02d" % i, "params": {"code": "%06d" % RNG.randrange(10**6)}, "sign": "示例科技"},
            ua="java", headers=[auth("sms")], comment="verification SMS (domestic) -> allow")
    for i in range(10, 20):
        p = PEOPLE[i]
        form = [("account", "wadesk"), ("mobile", p["mobile"]), ("content", "【WADesk】您的验证码为%06d，5分钟内有效。" % RNG.randrange(10**6)),
                ("extno", "106%d" % (9000 + i)), ("timestamp", "202611200930%02d" % i)]
        h.add("sms.hubei-xinda.example", "/sms/send", form=form, ua="java",
              comment="form-encoded SMS submit (domestic) -> allow")
    for i in range(20, 28):
        p = PEOPLE[i]
        if i % 2:
            h.add("sms.xunda-telecom.example", "/api/v2/send?" + urllib.parse.urlencode(
                [("phone", p["mobile"]), ("tpl", "MEET_INVITE"), ("meeting", "%03d-%03d" % (i, i * 3))]),
                method="GET", ua="go", comment="invitation by GET with the mobile in the query (domestic) -> allow")
        else:
            h.add("sms.xunda-telecom.example", "/api/v2/send", json_body={
                "phones": [p["mobile"], PEOPLE[i + 1]["mobile"]], "tpl": "MEET_INVITE", "vars": {"name": p["name"], "time": "14:00"}},
                ua="go", comment="meeting invitation to two phones (domestic) -> allow")
    h.add("sms.domestic-gateway.example", "/v1/sms/status?batch=%s" % hexs(12), method="GET", ua="java",
          comment="delivery report poll -> allow")
    h.add("sms.hubei-xinda.example", "/sms/balance", method="GET", ua="java", comment="balance query -> allow")


def meetings_devices():
    h = family("meetings_devices", "Meeting relays, transcription and device connectivity",
               "Weidijia's relay nodes (SG, DE affiliates; the participant's region and age decide), its "
               "transcription processor (US), and W-KING's Bluetooth partner (DE, contract necessity).")
    sg = "relay-sg.videopro.example"
    regions = ["JP", "CN", "SG", "CN", "US", "cn", "MY", "CN", "KR", "CN"]
    for i, reg in enumerate(regions):
        p = PEOPLE[i]
        part = {"user_id": "wdj-u-%04d" % (7100 + i), "display_name": p["name"], "region": reg, "email": p["email"],
                "client_ip": public_ip(), "birth_date": p["birth"]}
        h.add(sg, "/v1/meetings/%03d%03d%03d/join" % (i, i * 7 % 1000, i * 13 % 1000), json_body={
            "participant": part, "client": {"version": "5.8.2", "os": "Windows 11"}, "ts": 1763620000000 + i * 999},
            ua="chrome", headers=[auth("vp")],
            comment="join from %s -> %s" % (reg, "subject abroad: allow" if reg.upper() != "CN" else
                                           ("separate consent (wdj-u-7101): allow" if i == 1 else "user in China without consent: blocked")))
    for i in range(3):
        p = PEOPLE[10 + i]
        h.add(sg, "/v1/meetings/9%02d000111/join" % i, json_body={"participant": {
            "user_id": "wdj-u-%04d" % (7200 + i), "display_name": p["name"][0] + "小" + p["name"][-1], "region": "SG",
            "birth_date": "201%d-0%d-1%d" % (6 + i, 3 + i, i)}},
            ua="chrome", headers=[auth("vp")], comment="child under 14 abroad without a guardian's consent -> blocked (minors never on subject_abroad)")
    parts = []
    for k in range(6):
        p = PEOPLE[20 + k]
        parts.append({"user_id": "wdj-u-%04d" % (7300 + k), "display_name": p["name"], "region": ["SG", "CN", "JP", "CN", "SG", "TH"][k],
                      "birth_date": p["birth"]})
    h.add(sg, "/v1/classes/cls-2026-ai-101/roster", json_body={"class_id": "cls-2026-ai-101", "participants": parts},
          ua="node", headers=[auth("vp")], comment="class roster: participants in China without consent are removed, the others stay")
    eu = "relay-eu.videopro.example"
    for i, reg in enumerate(["DE", "FR", "CN", "GB", "CN"]):
        p = PEOPLE[30 + i]
        h.add(eu, "/v1/meetings/%09d/join" % (400000000 + i), json_body={"participant": {
            "user_id": "wdj-u-%04d" % (7400 + i), "display_name": p["name"], "region": reg, "email": p["email"]}},
            ua="chrome", headers=[auth("vp")], comment="join on the European node from %s" % reg)
    cs = "api.cloudscribe.example"
    for b in range(5):
        speakers = []
        for k in range(3):
            p = PEOPLE[40 + b * 3 + k] if 40 + b * 3 + k < 60 else PEOPLE[b * 3 + k]
            speakers.append({"user_id": "wdj-u-%04d" % (7500 + b * 3 + k), "display_name": p["name"],
                             "region": ["CN", "SG", "CN", "US", "CN"][(b + k) % 5], "email": p["email"]})
        h.add(cs, "/v1/jobs", json_body={"recording_url": "https://recordings.cos.ap-tianjin.example/meetings/2026/11/rec-%04d.mp4" % b,
                                         "language": "zh-CN", "speakers": speakers, "callback": "https://hooks.videopro.example/transcripts"},
              ua="python", headers=[auth("cs")],
              comment="transcription job: speakers abroad kept, speakers in China de-identified (consented one kept)")
    cn = "api.connectsphere.example"
    for i in range(5):
        p = PEOPLE[50 + i]
        h.add(cn, "/v2/devices/bind", json_body={"device": {"model": "W-KING D10", "bt_mac": mac(), "firmware": "2.1.%d" % i},
                                                 "account": {"uid": "wk-u-%04d" % (6100 + i), "phone": p["mobile"]},
                                                 "phone_model": "HONOR X50"},
              ua="okhttp", headers=[auth("cs")], comment="device binding: the Bluetooth MAC is necessary (kept); account id and phone removed")
    for i in range(3):
        h.add(cn, "/v2/logs/bluetooth", json_body={"bt_mac": mac(), "firmware": "2.1.7",
                                                   "log": [{"t": 0, "ev": "pair_start"}, {"t": 812 + i, "ev": "pair_ok"}]},
              ua="okhttp", headers=[auth("cs")], comment="Bluetooth log with the MAC only (necessary) -> allow")
    h.add(cn, "/v2/firmware/latest?model=W-KING%20D10&current=2.1.7", method="GET", ua="okhttp",
          comment="firmware check, no personal data -> allow")


FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def uescape(s):
    return "".join("\\u%04x" % ord(c) for c in s)


def bypass():
    h = family("bypass", "Bypass attempts",
               "What a careful engineer tries to get PI past inspection: full-width digits, separators, "
               "unicode escapes, mixed-case and Chinese keys, PI in the query string, headers and cookies, "
               "form and multipart bodies, base64 and gzip bodies, JSON inside JSON, undecodable bodies.")
    qs = "api.payments-partner.example"
    n = [0]

    def cust(i):
        return "qs-c-%04d" % (3000 + i)

    def order():
        n[0] += 1
        return "ORD-2026-11-%06d" % (90000 + n[0])

    P = PEOPLE
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(0), "phone": P[0]["mobile"].translate(FULLWIDTH)}},
          comment="full-width digits in a mobile number -> found (cn_mobile), masked")
    m = P[1]["mobile"]
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(1), "contact": "%s-%s-%s" % (m[:3], m[3:7], m[7:])}},
          comment="dashes inside a mobile number under a neutral key -> found, masked")
    i2 = P[2]["id_no"]
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(2), "doc": "%s %s %s" % (i2[:6], i2[6:14], i2[14:])}},
          comment="resident ID number with spaces -> found, blocked")
    h.add(qs, "/v1/charges", mime="application/json",
          text='{"order_id":"%s","customer":{"id":"%s","note":"%s"}}' % (order(), cust(3), uescape(P[3]["id_no"])),
          comment="resident ID number written as JSON unicode escapes -> decoded, found, blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "Customer": {"ID": cust(4), "Mobile_PHONE": P[4]["mobile"], "IdCardNO": P[4]["id_no"]}},
          comment="mixed-case keys -> the ID number is still found, blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(5), "手机号": P[5]["mobile"], "身份证号": P[5]["id_no"]}},
          comment="Chinese key names -> blocked on the ID number")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(6), "联系电话": "(+86) " + P[6]["mobile"]}},
          comment="mobile with (+86) under a Chinese key -> masked")
    h.add(qs, "/v1/charges?order_id=%s&mobile=%s&email=%s" % (order(), P[7]["mobile"], urllib.parse.quote(P[7]["email"])), method="GET",
          comment="mobile and e-mail in the query string -> query rewritten (masked)")
    h.add(qs, "/v1/customers/lookup?id_no=%s" % P[8]["id_no"], method="GET",
          comment="resident ID number in the query string -> blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "amount": 100, "customer": {"id": cust(9)}},
          headers=[("X-Customer-Mobile", P[9]["mobile"])], comment="mobile in an X- header -> header masked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "amount": 100, "customer": {"id": cust(10)}},
          headers=[("X-Forwarded-Id-Card", P[10]["id_no"])], comment="ID number in an X- header -> blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "amount": 100, "customer": {"id": cust(11)}},
          headers=[("Cookie", "sid=%s; user_email=%s" % (hexs(16), P[11]["email"]))], comment="e-mail in a cookie -> masked")
    h.add(qs, "/v1/charges", form=[("order_id", order()), ("mobile", P[12]["mobile"]), ("amount", "3900")],
          comment="form body with a mobile -> masked")
    h.add(qs, "/v1/charges", form=[("order_id", order()), ("customer_id", cust(13)), ("id_card", P[13]["id_no"])],
          comment="form body with an ID number (and customer_id, an account id no quick-start rule covers) -> blocked")
    h.add(qs, "/v1/charges", multipart=[("order_id", order()), ("email", P[14]["email"]),
                                        ("note", "call me on %s" % P[14]["mobile"])],
          comment="multipart fields: e-mail and a mobile inside free text -> masked")
    h.add(qs, "/v1/kyc/documents", multipart=[("customer_id", cust(15)), ("id_number", P[15]["id_no"]),
                                              ("scan", "id-front.jpg", "image/jpeg", "JFIF fictitious")],
          comment="multipart with an ID number field (and customer_id, an account id) and an image part -> blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(16), "email": P[16]["email"].upper()}}, b64=True,
          comment="postData recorded base64-encoded (HAR encoding) with an upper-case e-mail -> decoded, masked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(17), "identity": P[17]["id_no"]}}, gzip_body=True,
          comment="gzip request body with an ID number -> decompressed, blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(18)},
                                        "metadata": json.dumps({"kyc": {"id": P[18]["id_no"]}})},
          comment="ID number in JSON inside a JSON string -> blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(19)},
                                        "metadata": json.dumps(json.dumps({"phone": P[19]["mobile"]}))},
          comment="mobile in JSON doubly encoded as a string -> masked")
    h.add(qs, "/v1/charges", mime="text/plain", text='{"order_id":"%s","customer":{"id":"%s","phone":"%s"}}' % (order(), cust(20), P[20]["mobile"]),
          comment="JSON sent as text/plain -> still inspected (text), masked")
    h.add(qs, "/v1/charges", mime="application/json",
          text='{"order_id":"%s","customer":{"id":"%s","phone":"13800000000","phone":"%s"}}' % (order(), cust(21), P[21]["mobile"]),
          comment="duplicate JSON keys (parser differential) -> undecodable, blocked")
    h.add(qs, "/v1/charges", mime="application/json", text='{"order_id":"%s","customer":{"id":"%s","phone":"%s"' % (order(), cust(22), P[22]["mobile"]),
          comment="truncated JSON -> undecodable, blocked")
    h.add(qs, "/v1/charges", mime="application/json", content_encoding="br", b64=True,
          text='{"order_id":"%s","customer":{"id":"%s"}}' % (order(), cust(23)),
          comment="Content-Encoding br (not supported) -> undecodable, blocked")
    h.add(qs, "/v1/charges", mime="application/octet-stream", text='{"order_id":"%s","customer":{"id":"%s","id_no":"%s"}}' % (order(), cust(24), P[24]["id_no"]),
          comment="JSON labelled application/octet-stream: the bytes are read as JSON whatever the label; the ID number is blocked abroad")
    card = unionpay(19)
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(25), "name": P[25]["name"]},
                                        "card": {"pan": " ".join(card[k:k + 4] for k in range(0, 19, 4))}},
          comment="card number with spaces under a neutral key, with the order reference -> found, allowed on the contract")
    card = unionpay()
    h.add(qs, "/v1/charges", json_body={"customer": {"id": cust(26)}, "memo": "pay with %s" % "-".join(card[k:k + 4] for k in range(0, 16, 4))},
          comment="card number with dashes in free text, no order reference -> blocked")
    i27 = P[27]["id_no"][:-1] + P[27]["id_no"][-1].lower()
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(27), "remark": "证件:" + i27}},
          comment="ID number glued to Chinese text (lower-case x check digit if any) -> blocked")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(28)}, "device": {"imei": imei()}},
          comment="IMEI to the payment provider: no rule covers it, default_fallback block")
    h.add(qs, "/v1/charges", json_body={"order_id": order(), "customer": {"id": cust(29)},
                                        "risk": {"client_ip": public_ip(), "hk_id": hk_id()}},
          comment="Hong Kong ID number (identity document) and IP -> blocked")
    h.add(qs, "/v1/charges", json_body={"order_no": "20261120%09d" % RNG.randrange(10**8, 10**9), "order_id": order(),
                                        "amount": "13900.00", "created": 1763612345678, "customer": {"id": cust(30)},
                                        "trace_id": uuid(), "tracking_no": "SF%013d" % RNG.randrange(10**12, 10**13),
                                        "sku": "SKU-139-0712-4581"},
          comment="negatives only (17-digit order number, price, timestamp, UUID trace id, tracking number, SKU) -> allow")
    ins = "collect.insightly.example"
    d = imei()
    h.add(ins, "/v3/batch", json_body={"sdk": "insightly-android/5.2.0", "events": [{"uid": "wd-u-300900", "event": "app_start",
                                                                                    "DeviceInfo": {"IMEI": d, "AndroidID": hexs(16)}}]},
          headers=[("X-Device-Imei", imei())], ua="okhttp", comment="mixed-case device keys and an IMEI header -> pseudonymized")
    h.add(ins, "/v3/batch", json_body={"sdk": "insightly-android/5.2.0", "events": [{"uid": "wd-u-300901", "event": "app_start",
                                                                                    "device": {"imei": " ".join([d[:2], d[2:8], d[8:14], d[14:]]),
                                                                                               "mac": mac().upper().replace(":", "-")}}]},
          ua="okhttp", comment="IMEI with spaces, MAC with dashes in upper case -> pseudonymized")
    h.add(ins, "/v3/track?uid=wd-u-300902&ev=open&DEVICE_IMEI=%s&Ip=%s" % (imei(), public_ip()), method="GET", ua="chrome",
          comment="mixed-case query parameters -> query rewritten")
    ap = "ingest.apppulse.example"
    h.add(ap, "/collect/v2", form=[("uid", "wk-u-5300"), ("android_id", hexs(16)), ("ip", public_ip()), ("ev", "open")], ua="android",
          comment="SDK upload as a form -> anonymized (fields removed, IP generalized)")
    gp = "api.globalparcel.example"
    p = P[33]
    h.add(gp, "/v2/shipments", json_body={"order_id": "WD2026112099001", "buyer": {"user_id": "wd-u-100990"},
                                          "consignee": {"name": p["name"], "phone": p["mobile"], "address": p["address"]},
                                          "remarks": "收件人证件号%s" % p["id_no"]},
          comment="ID number smuggled into a free-text remark of a shipment -> blocked")



def truthful():
    """Issue 14's defects, each an exchange whose expected decision was
    written from the quick-start policy's words and the law before any run
    (truthful.*.expect.json; each policy refuses the others' hosts, 421)."""
    h = family("truthful", "Truthful decisions: forwarding headers, consent per person, blocks",
               "Requests on which a decision record once said something that did not happen "
               "(issue 14): PI in X-Forwarded-For and Forwarded, another person nested next to a "
               "consented subject, a blocked request that must leave nothing; missed and "
               "misclassified PI (a UnionPay card failing Luhn, a name under recipient in a form, "
               "customer records under contacts) and a minor of 16 abroad.")
    qs = "api.payments-partner.example"
    p = PEOPLE[50]
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031900", "amount": 6600, "currency": "CNY",
        "customer": {"id": "qs-c-1901", "name": p["name"]},
        "card": {"number": unionpay(), "exp_month": 4, "exp_year": 2029}},
        headers=[auth("sk_live"), ("X-Forwarded-For", p["mobile"])], ua="java",
        comment="a gateway put the caller's mobile into X-Forwarded-For: contact-details has no consent "
                "for qs-c-1901, so the header leaves masked (and the record says so); card and name on "
                "the contract -> deidentify")
    p = PEOPLE[51]
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031901", "amount": 7700, "currency": "CNY",
        "customer": {"id": "qs-c-1902", "name": p["name"]},
        "card": {"number": unionpay(), "exp_month": 5, "exp_year": 2029}},
        headers=[auth("sk_live"), ("Forwarded", "for=_gw7;proto=https;x-caller=%s" % p["mobile"])],
        ua="java",
        comment="a mobile inside a Forwarded: header (RFC 7239 extension pair): inspected like any "
                "header, masked (contact-details fallback) -> deidentify")
    own, other = PEOPLE[7], PEOPLE[52]
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031902", "amount": 8800, "currency": "CNY",
        "customer": {"id": "qs-c-1008", "name": own["name"], "email": own["email"], "phone": own["mobile"],
                     "emergency_contact": {"phone": other["mobile"]}},
        "card": {"number": unionpay(), "exp_month": 6, "exp_year": 2029}},
        headers=[auth("sk_live")], ua="java",
        comment="qs-c-1008 consented to contact details going to the provider: their e-mail and mobile "
                "leave on consent; the emergency contact is another person whose mobile does not ride "
                "on that consent -> masked; card and name on the contract -> deidentify")
    other = PEOPLE[53]
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031903", "amount": 9900, "currency": "CNY",
        "customer": {"id": "qs-c-1008", "name": own["name"], "phone": own["mobile"],
                     "emergency_contact": {"id_card_no": other["id_no"]}},
        "card": {"number": unionpay(), "exp_month": 7, "exp_year": 2029}},
        headers=[auth("sk_live")], ua="java",
        comment="the consented customer with another person's resident ID number nested: identity "
                "documents leave only on that person's own separate consent (PIPL Arts. 29, 39) -> "
                "blocked, nothing forwarded (bytes.forwarded 0)")
    p = PEOPLE[54]
    h.add(qs, "/v1/charges", json_body={
        "amount": 15800, "currency": "CNY", "description": "no order reference",
        "customer": {"id": "qs-c-1905", "name": p["name"], "phone": p["mobile"]},
        "card": {"number": unionpay(), "exp_month": 8, "exp_year": 2029}},
        headers=[auth("sk_live"), ("X-Forwarded-For", p["mobile"])], ua="java",
        comment="no order reference: card and name have no basis (payment-contract falls back to "
                "block) -> blocked; the mobiles in the body and X-Forwarded-For leave nowhere")
    # Misclassified and missed PI (issue 14), and the guardian-consent age band.
    p = PEOPLE[55]
    card = unionpay()
    card = card[:-1] + str((int(card[-1]) + 1) % 10)  # a UnionPay 62 number that fails Luhn
    assert not luhn_ok(card)
    h.add(qs, "/v1/charges", json_body={
        "order_id": "ORD-2026-11-031906", "amount": 4300, "currency": "CNY",
        "customer": {"id": "qs-c-1906", "name": p["name"]}, "card": card},
        headers=[auth("sk_live")], ua="java",
        comment="a UnionPay debit card (IIN 62, 16 digits) that fails Luhn, under the key card: still a "
                "bank card (some domestic UnionPay cards do not pass Luhn); card and name on the "
                "contract -> allow, and the record lists the card")
    p = PEOPLE[56]
    h.add(qs, "/v1/payouts", form=[("payout_id", "PO-2026-11-0042"), ("amount", "1250.00"), ("currency", "CNY"),
                                   ("recipient", p["name"]), ("memo", "refund")],
          headers=[auth("sk_live")], ua="python",
          comment="a consignee's name under recipient in a form: a person's name; a form body has no "
                  "$.order_id, so the payment contract is no basis and payment-contract falls back to "
                  "block -> blocked, nothing forwarded")
    a, b = PEOPLE[57], PEOPLE[58]
    h.add(qs, "/v1/customers/batch", json_body={
        "order_id": "ORD-2026-11-031908",
        "contacts": [{"name": a["name"], "phone": a["mobile"], "company": "Example Trading Co."},
                     {"name": b["name"], "phone": b["mobile"], "company": "Example Logistics Ltd."}]},
        headers=[auth("sk_live")], ua="node",
        comment="customer records under the key contacts (not a user's address book; the quick start "
                "declares no address-book route): names on the contract, mobiles masked (contact-details, "
                "no consent) -> deidentify, not a block for the sensitive contacts category")
    sg = "relay-sg.videopro.example"
    h.add(sg, "/v1/meetings/977000111/join", json_body={"participant": {
        "user_id": "wdj-u-7290", "display_name": "林小雨", "region": "SG", "birth_date": "2010-06-15"}},
        ua="chrome", headers=[auth("vp")],
        comment="a 16-year-old abroad: Weidijia's guardian_consent_age is 18, so the 14-17 band needs a "
                "guardian's consent too and subject_abroad is no basis for a minor -> blocked (holds until "
                "2028-06-15, the 18th birthday)")

# ---------------------------------------------------------------------------

# The consent registry the expectations assume, per policy: the test grants
# each with `bordergate consent grant` into an empty registry.
CONSENTS = {
    "quickstart": [
        {"subject": "qs-c-1008", "recipient": "payments-partner", "purpose": "payment", "region": "US",
         "evidence": "checkout-consent-1008", "comment": "contact details may go to the payment provider"},
    ],
    "wadesk": [
        {"subject": "wd-u-300101", "recipient": "insightly", "purpose": "analytics", "region": "US",
         "evidence": "sdk-consent-0101", "comment": "analytics consent, not covering sensitive PI"},
        {"subject": "wd-u-400101", "recipient": "helpdeskly", "purpose": "customer_support", "region": "US",
         "evidence": "ticket-consent-0101"},
        {"subject": "wd-u-400300", "recipient": "helpdeskly", "purpose": "customer_support", "region": "US",
         "evidence": "ticket-consent-0300"},
    ],
    "wking": [
        {"subject": "wk-u-5000", "recipient": "adreach", "purpose": "advertising", "region": "US",
         "evidence": "wk-ad-consent-5000"},
        {"subject": "wk-u-5001", "recipient": "adreach", "purpose": "advertising", "region": "US",
         "evidence": "wk-ad-consent-5001", "comment": "consented, but sends DNT: 1 (honour_dnt_for advertising)"},
        {"subject": "wk-u-5002", "recipient": "adreach", "purpose": "advertising", "region": "US",
         "evidence": "wk-ad-consent-5002", "comment": "consented, but sends Sec-GPC: 1"},
        {"subject": "wk-u-5003", "recipient": "adreach", "purpose": "advertising", "region": "US",
         "evidence": "wk-ad-consent-5003", "comment": "consented, sends DNT: 0"},
        {"subject": "wk-u-5100", "recipient": "apppulse", "purpose": "analytics", "region": "SG",
         "evidence": "wk-ap-consent-5100"},
    ],
    "weidijia": [
        {"subject": "wdj-u-7101", "recipient": "videopro-sg", "purpose": "meeting_service", "region": "SG",
         "evidence": "vp-consent-7101", "comment": "separate consent for the Asia-Pacific node"},
        {"subject": "wdj-u-7301", "recipient": "videopro-sg", "purpose": "meeting_service", "region": "SG",
         "evidence": "vp-consent-7301"},
        {"subject": "wdj-u-7500", "recipient": "cloudscribe", "purpose": "transcription", "region": "US",
         "evidence": "vp-consent-7500"},
    ],
}


def build():
    del FILES[:]
    RNG.seed(20261123)
    for f in (payments, logistics, analytics, crm_support, advertising, cloud_storage, hr, sms,
              meetings_devices, bypass, truthful):
        f()
    out = {}
    for h in FILES:
        out[h.name + ".har"] = json.dumps(h.doc(), ensure_ascii=False, indent=1) + "\n"
    out["consents.json"] = json.dumps(CONSENTS, ensure_ascii=False, indent=1) + "\n"
    return out


def _normalized(text):
    """A HAR text with gzip bodies decompressed and their sizes dropped:
    compressed bytes depend on the zlib build, the content does not."""
    doc = json.loads(text)
    for e in doc.get("log", {}).get("entries", []):
        req = e["request"]
        if not any(h["name"].lower() == "content-encoding" and h["value"] == "gzip" for h in req["headers"]):
            continue
        req["postData"]["text"] = gzip.decompress(base64.b64decode(req["postData"]["text"])).decode("utf-8")
        req["headers"] = [h for h in req["headers"] if h["name"].lower() != "content-length"]
        req["bodySize"] = None
    return doc


def main():
    check = "--check" in sys.argv[1:]
    out = build()
    bad = []
    for name, text in out.items():
        path = os.path.join(HERE, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    old = f.read()
                if old != text and (not name.endswith(".har") or _normalized(old) != _normalized(text)):
                    bad.append(name)
            except FileNotFoundError:
                bad.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    hars = {k: v for k, v in out.items() if k.endswith(".har")}
    total = sum(len(json.loads(t)["log"]["entries"]) for t in hars.values())
    if check:
        if bad:
            sys.stderr.write("make_corpus.py --check: differs: %s\n" % ", ".join(bad))
            return 1
        print("corpus up to date: %d files, %d entries" % (len(hars), total))
        return 0
    for name, text in sorted(hars.items()):
        print("%-24s %4d entries" % (name, len(json.loads(text)["log"]["entries"])))
    print("%-24s %4d entries" % ("total", total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
