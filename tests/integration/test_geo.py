"""Geo: the destination region of the address bordergate really connects to.

Loopback addresses are given countries through the configuration's CIDR
overrides (and, in one test, through a real .mmdb fixture built at test time
with geo/make-test-mmdb); the answer travels back in the debug headers.
"""
import json
import os
import socket
import struct
import subprocess
import threading
import time
import unittest

import bgtest
from bgtest import route, t

GEO_RE = r"country=(\w+); region=([\w-]+); source=(\S+)"


def geo_of(resp):
    import re
    m = re.match(GEO_RE, resp.headers["X-Bordergate-Geo"])
    return m.groups()


class DnsServer:
    """A tiny authoritative DNS server on 127.0.0.1/UDP: NAME -> A ADDR with
    TTL; AAAA gets an empty NOERROR answer. Counts the queries it gets."""

    def __init__(self, tc, records, ttl):
        self.records = records
        self.ttl = ttl
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()
        tc.addCleanup(self.close)

    def close(self):
        self.stop = True
        self.sock.close()

    def _loop(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                return
            try:
                self._answer(data, peer)
            except Exception:  # a malformed query is just dropped
                pass

    def _answer(self, data, peer):
        qid, flags, qd = struct.unpack("!HHH", data[:6])
        i, labels = 12, []
        while data[i]:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode().lower())
            i += 1 + n
        qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        name = ".".join(labels)
        self.queries.append((name, qtype))
        answers = b""
        count = 0
        if qtype == 1 and name in self.records:
            addr = socket.inet_aton(self.records[name])
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, self.ttl, 4) + addr
            count = 1
        rcode = 0 if name in self.records else 3
        hdr = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, count, 0, 0)
        self.sock.sendto(hdr + question + answers, peer)


class GeoProxyTest(bgtest.TestCase):

    def countries_config(self, sinks, **extra):
        routes = [route(name, s.origin, host="%s.example" % name) for name, s in sinks.items()]
        cfg = bgtest.make_config(routes, debug_headers=True, **extra)
        return cfg

    def test_destination_country_region_and_source_travel_with_the_response(self):
        us = self.sink("us", host="127.0.0.2")
        cn = self.sink("cn", host="127.0.0.3")
        hk = self.sink("hk", host="127.0.0.4")
        unk = self.sink("unk", host="127.0.0.5")
        cfg = self.countries_config({"us": us, "cn": cn, "hk": hk, "unk": unk},
                                    geo={"overrides": {"cidrs": {
                                        "127.0.0.2/32": "US", "127.0.0.3/32": "CN",
                                        "127.0.0.4/32": "HK"}}})
        px = self.proxy(cfg)
        want = {
            "us": ("US", "cross-border", "override:cidr:127.0.0.2/32"),
            "cn": ("CN", "domestic", "override:cidr:127.0.0.3/32"),
            "hk": ("HK", "cross-border", "override:cidr:127.0.0.4/32"),
        }
        for name, (cc, region, source) in want.items():
            r = self.get(px, "/ping", host="%s.example" % name)
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(geo_of(r), (cc, region, source))
        # Loopback is in no country database: unknown, which counts as cross-border.
        r = self.get(px, "/ping", host="unk.example")
        cc, region, source = geo_of(r)
        self.assertEqual((cc, region), ("unknown", "unknown"))
        self.assertTrue(source.startswith("db:bordergate-Country@"), source)
        self.assertTrue(source.endswith(":not-found"), source)
        st = px.stats()["destinations_by_region"]
        self.assertEqual(st, {"unknown": 1, "domestic": 1, "cross-border": 2})

    def test_mixed_region_host_connects_to_the_domestic_address(self):
        port = bgtest.free_port("127.0.0.3")
        procs = {}
        for host, name in (("127.0.0.2", "abroad"), ("127.0.0.3", "home")):
            rec = os.path.join(self.tmpdir, name + ".jsonl")
            p = bgtest.Process([bgtest.BIN, "sink", "--listen", "%s:%d" % (host, port), "--name", name,
                                "--record", rec], os.path.join(self.tmpdir, name + ".log"))
            self.addCleanup(p.stop)
            procs[name] = rec
        def listening(host):
            try:
                socket.create_connection((host, port), timeout=1).close()
                return True
            except OSError:
                return False

        for host in ("127.0.0.2", "127.0.0.3"):
            bgtest.wait_for(lambda: listening(host), t(10), "sink on %s" % host)
        cfg = bgtest.make_config(
            [route("mixed", "http://api.mixed.example:%d" % port, host="api.mixed.example")],
            debug_headers=True,
            # the abroad address is listed first: bordergate must still pick the domestic one
            resolve={"api.mixed.example": ["127.0.0.2", "127.0.0.3"]},
            geo={"overrides": {"cidrs": {"127.0.0.2/32": "SG", "127.0.0.3/32": "CN"}}})
        px = self.proxy(cfg)
        for _ in range(3):
            r = self.get(px, "/x", host="api.mixed.example")
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.headers["X-Bordergate-Destination"], "127.0.0.3:%d" % port)
            self.assertEqual(geo_of(r)[:2], ("CN", "domestic"))
        with open(procs["home"]) as f:
            self.assertEqual(len(f.readlines()), 3)
        self.assertFalse(os.path.exists(procs["abroad"]) and os.path.getsize(procs["abroad"]) > 0,
                         "a request reached the cross-border address")

    def test_host_override_beats_cidr_and_is_taken_from_the_upstream_not_the_caller(self):
        up = self.sink("up", host="127.0.0.6")
        # The caller's Host is "cn-pinned.example", which has a CN host override;
        # the route's upstream host is "partner.example", pinned to US.
        port = up.port
        cfg = bgtest.make_config(
            [route("r", "http://partner.example:%d" % port, host="cn-pinned.example")],
            debug_headers=True,
            resolve={"partner.example": "127.0.0.6"},
            geo={"overrides": {"hosts": {"cn-pinned.example": "CN", ".example": "JP",
                                         "partner.example": "US"},
                               "cidrs": {"127.0.0.6/32": "CN"}}})
        px = self.proxy(cfg)
        r = self.get(px, "/", host="cn-pinned.example")
        self.assertEqual(geo_of(r), ("US", "cross-border", "override:host:partner.example"))

    def test_real_mmdb_fixture_answers_for_loopback(self):
        spec = os.path.join(self.tmpdir, "spec.txt")
        db = os.path.join(self.tmpdir, "fixture.mmdb")
        with open(spec, "w") as f:
            f.write("@type Test-Country\n127.0.0.0/29 TW\n127.0.0.8/29 CN\n")
        subprocess.run([os.path.join(bgtest.SOURCE_DIR, "geo", "make-test-mmdb"), "--out", db, spec],
                       check=True)
        tw = self.sink("tw", host="127.0.0.7")
        cn = self.sink("cn", host="127.0.0.9")
        cfg = self.countries_config({"tw": tw, "cn": cn}, geo={"database": db})
        px = self.proxy(cfg)
        r = self.get(px, "/", host="tw.example")
        self.assertEqual(geo_of(r), ("TW", "cross-border", "db:Test-Country@2026-01-01"))
        r = self.get(px, "/", host="cn.example")
        self.assertEqual(geo_of(r), ("CN", "domestic", "db:Test-Country@2026-01-01"))
        h = px.healthz()
        self.assertEqual(h["geo"]["database"], db)
        self.assertEqual(h["geo"]["build_date"], "2026-01-01")

    def test_dns_answers_are_cached_for_their_ttl_and_no_longer(self):
        up = self.sink("up", host="127.0.0.10")
        dns = DnsServer(self, {"api.dns.example": "127.0.0.10"}, ttl=2)
        cfg = bgtest.make_config(
            [route("r", "http://api.dns.example:%d" % up.port, host="api.dns.example")],
            debug_headers=True, dns={"nameservers": ["127.0.0.1:%d" % dns.port]},
            geo={"overrides": {"cidrs": {"127.0.0.10/32": "DE"}}})
        px = self.proxy(cfg)
        r = self.get(px, "/1", host="api.dns.example")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["X-Bordergate-Destination"], "127.0.0.10:%d" % up.port)
        self.assertEqual(geo_of(r)[:2], ("DE", "cross-border"))
        first = len([q for q in dns.queries if q == ("api.dns.example", 1)])
        self.assertEqual(first, 1)
        self.get(px, "/2", host="api.dns.example")
        self.assertEqual(len([q for q in dns.queries if q == ("api.dns.example", 1)]), 1,
                         "answer within its TTL must come from the cache")
        time.sleep(2.5)
        self.get(px, "/3", host="api.dns.example")
        self.assertEqual(len([q for q in dns.queries if q == ("api.dns.example", 1)]), 2,
                         "an expired answer must be asked again")
        self.assertEqual(len(up.wait_records(3)), 3)

    def test_unknown_dns_name_is_502_and_nothing_forwarded(self):
        dns = DnsServer(self, {}, ttl=60)
        cfg = bgtest.make_config([route("r", "http://nowhere.example:9", host="nowhere.example")],
                                 dns={"nameservers": ["127.0.0.1:%d" % dns.port]})
        px = self.proxy(cfg)
        r = self.get(px, "/", host="nowhere.example")
        self.assertRefusal(r, 502)

    def test_missing_or_corrupt_database_refuses_to_start_with_one_clear_line(self):
        bad = os.path.join(self.tmpdir, "corrupt.mmdb")
        with open(bad, "wb") as f:
            f.write(os.urandom(4096))
        for path, what in ((os.path.join(self.tmpdir, "missing.mmdb"), "No such file"),
                           (bad, "")):
            cfgp = os.path.join(self.tmpdir, "c.json")
            with open(cfgp, "w") as f:
                json.dump(bgtest.make_config([route("r", "http://127.0.0.1:9", host="a")],
                                             listen="127.0.0.1:%d" % bgtest.free_port(),
                                             geo={"database": path}), f)
            for cmd in ("check", "run"):
                p = subprocess.run([bgtest.BIN, cmd, "--config", cfgp], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=t(30))
                out = p.stdout.decode()
                self.assertEqual(p.returncode, 1, out)
                lines = [l for l in out.splitlines() if "error" in l and path in l]
                self.assertEqual(len(lines), 1, out)
                self.assertIn(what, lines[0])
                self.assertRegex(lines[0], r"^%s:\d+:\d+: error: \$\.geo\.database: " % cfgp)

    def test_reload_with_a_corrupt_database_keeps_the_old_one(self):
        us = self.sink("us", host="127.0.0.2")
        cfg = self.countries_config({"us": us}, geo={"overrides": {"cidrs": {"127.0.0.2/32": "US"}}})
        px = self.proxy(cfg)
        bad = os.path.join(self.tmpdir, "corrupt.mmdb")
        with open(bad, "wb") as f:
            f.write(b"not a maxmind database" * 100)
        new = json.loads(json.dumps(cfg))
        new["geo"]["database"] = bad
        new["listen"], new["admin"] = px.config["listen"], px.config["admin"]
        h = px.reload(new, expect_ok=False)
        self.assertNotEqual(h["geo"]["database"], bad)
        self.assertIn(bad, px.log())
        r = self.get(px, "/", host="us.example")
        self.assertEqual(geo_of(r)[:2], ("US", "cross-border"))


class GeoCliTest(bgtest.TestCase):

    def run_cli(self, *args):
        p = subprocess.run([bgtest.BIN, "geo", "lookup"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=t(30))
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_embedded_database_knows_mainland_and_us_resolvers(self):
        rc, out, err = self.run_cli("--json", "114.114.114.114", "223.5.5.5", "8.8.8.8",
                                    "2400:3200::1", "2001:4860:4860::8888", "203.80.96.10")
        self.assertEqual(rc, 0, err)
        doc = {d["query"]: d["addresses"][0] for d in json.loads(out)}
        self.assertEqual(doc["114.114.114.114"]["country"], "CN")
        self.assertEqual(doc["223.5.5.5"]["region"], "domestic")
        self.assertEqual(doc["8.8.8.8"]["country"], "US")
        self.assertEqual(doc["2400:3200::1"]["country"], "CN")
        self.assertEqual(doc["2001:4860:4860::8888"]["region"], "cross-border")
        self.assertEqual((doc["203.80.96.10"]["country"], doc["203.80.96.10"]["region"]),
                         ("HK", "cross-border"))

    def test_host_with_config_shows_overrides_and_chosen_address(self):
        cfgp = os.path.join(self.tmpdir, "c.json")
        with open(cfgp, "w") as f:
            json.dump(bgtest.make_config([route("r", "http://127.0.0.1:9", host="a")],
                                         resolve={"api.partner.example": ["127.0.0.2", "127.0.0.3"]},
                                         geo={"overrides": {"cidrs": {"127.0.0.2/32": "US",
                                                                      "127.0.0.3/32": "CN"}}}), f)
        rc, out, err = self.run_cli("api.partner.example", "--config", cfgp)
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "api.partner.example")
        self.assertRegex(lines[1], r"^\s+127\.0\.0\.2\s+US\s+cross-border\s+override:cidr:127\.0\.0\.2/32$")
        self.assertRegex(lines[2], r"^\s+\* 127\.0\.0\.3\s+CN\s+domestic\s+override:cidr:127\.0\.0\.3/32$")
        rc, out, err = self.run_cli("api.partner.example", "--config", cfgp, "--json")
        doc = json.loads(out)
        self.assertEqual([a["chosen"] for a in doc["addresses"]], [False, True])

    def test_bad_database_argument(self):
        rc, out, err = self.run_cli("1.2.3.4", "--db", "/nonexistent.mmdb")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent.mmdb", err)
        self.assertEqual(len(err.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
