#!/usr/bin/python3
"""
Every refusal: the exact status, a JSON body {"error", "request_id"} whose id
is the X-Bordergate-Id header, nothing forwarded to the upstream, and no
crash. Malformed shapes are sent as exact bytes over a raw socket.
"""
import os
import json
import random
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import make_config, route, t  # noqa: E402

# (name, bytes, status, error regex, connection must close)
MALFORMED = [
    ("content_length_and_transfer_encoding",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n", 400, None),
    ("transfer_encoding_and_content_length",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
     "0\r\n\r\n", 400, None),
    ("two_different_content_lengths",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
     400, None),
    ("content_length_list",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3, 4\r\n\r\nabcd", 400, None),
    ("content_length_signed",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: +3\r\n\r\nabc", 400, None),
    ("bad_chunk_size",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, None),
    ("negative_chunk_size",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
     400, None),
    ("chunk_size_overflow",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
     "10000000000000005\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk_missing_crlf_after_data",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
     400, None),
    ("obs_fold",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Long: part one\r\n  part two\r\n\r\n", 400, None),
    ("obs_fold_tab",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Long: part one\r\n\tpart two\r\n\r\n", 400, None),
    ("bare_lf_in_headers",
     "GET /x HTTP/1.1\r\nHost: a.example\nX-A: b\r\n\r\n", 400, None),
    ("bare_lf_end_of_head",
     "GET /x HTTP/1.1\r\nHost: a.example\r\n\n", 400, None),
    ("bare_cr_in_header_value",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A: b\rX-B: c\r\n\r\n", 400, None),
    ("bare_lf_request_line",
     "GET /x HTTP/1.1\nHost: a.example\r\n\r\n", 400, None),
    ("space_before_colon",
     "GET /x HTTP/1.1\r\nHost : a.example\r\n\r\n", 400, None),
    ("nul_in_header_value",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A: b\x00c\r\n\r\n", 400, None),
    ("no_host_http11",
     "GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, None),
    ("two_hosts",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400, None),
    ("double_space_request_line",
     "GET  /x HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, None),
    ("asterisk_target",
     "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, None),
    ("transfer_encoding_in_http10",
     "POST /x HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, None),
    ("transfer_encoding_gzip_chunked",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, None),
    ("http2_request_line",
     "GET /x HTTP/2.0\r\nHost: a.example\r\n\r\n", 505, None),
    ("http09_like_version",
     "GET /x HTTP/0.9\r\nHost: a.example\r\n\r\n", 505, None),
    ("expect_other",
     "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nExpect: 200-ok\r\n\r\nabc", 417, None),
    ("connect",
     "CONNECT api.partner.example:443 HTTP/1.1\r\nHost: api.partner.example:443\r\n\r\n", 405, "CONNECT"),
    ("upgrade_websocket",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 501, None),
    ("unknown_host",
     "GET /x HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, "no route"),
    ("absolute_form_unknown_host",
     "GET http://evil.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n", 421, "no route"),
]


class Refusals(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.sink()
        self.px = self.proxy(routes=[route("a", self.up.origin, host="a.example")],
                             limits={"max_header_bytes": 1024, "max_body_bytes": 1000})

    def refused(self, data, status, error_re=None, closes=True):
        c = self.raw(self.px)
        c.send(data)
        r = c.read_response()
        doc = self.assertRefusal(r, status, error_re)
        if closes:
            self.assertEqual(r.header("connection"), "close")
            self.assertTrue(c.closed_within(t(10)), "connection left open after %d" % status)
        self.assertNothingForwarded(self.up)
        return r, doc

    def test_each_malformed_shape(self):
        for name, data, status, error_re in MALFORMED:
            with self.subTest(name):
                # unknown routes without a body keep the connection
                self.refused(data, status, error_re, closes=status != 421)
        st = self.px.stats()
        self.assertEqual(st["requests"], len(MALFORMED))
        self.assertEqual(st["responses"]["4xx"] + st["responses"]["5xx"], len(MALFORMED))
        self.assertEqual(st["upstream_connects"], 0)

    def test_content_length_and_transfer_encoding_400(self):
        self.refused("POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)

    def test_header_block_over_limit_431(self):
        big = "X-Fill: " + "f" * 1500 + "\r\n"
        self.refused("GET /x HTTP/1.1\r\nHost: a.example\r\n" + big + "\r\n", 431)

    def test_header_block_just_under_limit_is_fine(self):
        head = "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Fill: %s\r\n\r\n"
        pad = 1024 - len(head % "")
        c = self.raw(self.px)
        c.send(head % ("f" * pad))
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.up.records()[0].header("x-fill"), "f" * pad)
        # one byte more is over the limit
        c = self.raw(self.px)
        c.send(head % ("f" * (pad + 1)))
        self.assertRefusal(c.read_response(), 431)
        self.assertEqual(len(self.up.records()), 1)

    def test_too_many_header_fields_431(self):
        px = self.proxy(routes=[route("a", self.up.origin, host="a.example")], name="p2")
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n" + "".join("X-%d: v\r\n" % i for i in range(120))
               + "\r\n")
        self.assertRefusal(c.read_response(), 431)
        self.assertNothingForwarded(self.up)

    def test_body_over_limit_content_length_413(self):
        # Refused from the head alone: no 100 Continue, nothing read or sent.
        r, _ = self.refused("POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1001\r\n"
                            "Expect: 100-continue\r\n\r\n", 413)
        self.assertNotIn(b"100 Continue", r.raw_head)

    def test_body_at_limit_is_fine(self):
        c = self.raw(self.px)
        c.send(b"POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1000\r\n\r\n" + b"y" * 1000)
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(len(self.up.records()[0].body), 1000)

    def test_body_over_limit_chunked_413(self):
        self.refused("POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "258\r\n" + "a" * 600 + "\r\n258\r\n" + "b" * 600 + "\r\n0\r\n\r\n", 413)

    def test_body_over_limit_chunked_many_small_chunks_413(self):
        chunks = "".join("a\r\n0123456789\r\n" for _ in range(101))
        self.refused("POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunks + "0\r\n\r\n", 413)

    def test_unknown_host_421(self):
        r = self.get(self.px, "/x", host="evil.example")
        self.assertRefusal(r, 421, "no route")
        self.assertEqual(self.px.stats()["refused_no_route"], 1)
        self.assertNothingForwarded(self.up)

    def test_unknown_host_with_body_421_and_close(self):
        self.refused("POST /x HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 3\r\n\r\nabc", 421)

    def test_unknown_host_head_421_no_body(self):
        c = self.raw(self.px)
        c.send("HEAD /x HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        r = c.read_response(head_request=True)
        self.assertRefusal(r, 421, head=True)
        self.assertGreater(int(r.header("content-length")), 0)
        # nothing else on the wire: the next response follows directly
        c.send("GET /ok HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_connect_405(self):
        self.refused("CONNECT api.partner.example:443 HTTP/1.1\r\nHost: api.partner.example:443\r\n\r\n",
                     405)

    def test_http2_request_line_505(self):
        self.refused("GET /x HTTP/2.0\r\nHost: a.example\r\n\r\n", 505)

    def test_http2_preface_refused(self):
        c = self.raw(self.px)
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        self.assertRefusal(c.read_response(), 505)
        self.assertNothingForwarded(self.up)

    def test_expect_something_else_417(self):
        self.refused("POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n"
                     "Expect: 100-continue-please\r\n\r\nabc", 417)

    def test_no_host_http11_400(self):
        self.refused("GET /x HTTP/1.1\r\nUser-Agent: t\r\n\r\n", 400, "Host")

    def test_no_host_http10_is_unknown_route(self):
        self.refused("GET /x HTTP/1.0\r\n\r\n", 421)


class Timeouts(bgtest.TestCase):
    def test_header_timeout_408(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], timeouts={"header_ms": 700})
        c = self.raw(px)
        t0 = time.monotonic()
        c.send("GET /x HTTP/1.1\r\nHost: a.exa")
        r = c.read_response()
        took = time.monotonic() - t0
        self.assertRefusal(r, 408)
        self.assertGreaterEqual(took, 0.65)
        self.assertLess(took, t(10))
        self.assertTrue(c.closed_within(t(10)))
        self.assertNothingForwarded(up)

    def test_header_timeout_not_reset_by_trickling(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], timeouts={"header_ms": 1000})
        c = self.raw(px)
        t0 = time.monotonic()
        got = None
        for ch in "GET /slowloris HTTP/1.1\r\nHost: a.example\r\nX-Slow: " + "z" * 40:
            try:
                c.send(ch)
            except OSError:
                break
            if not c.silent_for(0.1):
                break
        got = c.read_response()
        self.assertRefusal(got, 408)
        self.assertLess(time.monotonic() - t0, t(3.5))
        self.assertNothingForwarded(up)

    def test_body_timeout_408(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], timeouts={"body_ms": 700})
        c = self.raw(px)
        c.send("POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100\r\n\r\nonly-part")
        self.assertRefusal(c.read_response(), 408)
        self.assertNothingForwarded(up)

    def test_idle_keep_alive_closed(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], timeouts={"idle_ms": 500})
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        t0 = time.monotonic()
        self.assertTrue(c.closed_within(t(10)))
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)


class PrivateAddresses(bgtest.TestCase):
    def test_private_upstream_without_allow_403(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example", allow_private=False)])
        r = self.get(px, "/x", host="a.example")
        self.assertRefusal(r, 403, "private")
        self.assertNothingForwarded(up)

    def test_private_via_static_resolve_403(self):
        up = self.sink()
        px = self.proxy(make_config(
            [route("a", "http://api.partner.example:%d" % up.port, host="a.example", allow_private=False)],
            resolve={"api.partner.example": "127.0.0.1"}))
        r = self.post(px, "/x", b"secret", host="a.example")
        self.assertRefusal(r, 403, "private")
        self.assertNothingForwarded(up)

    def test_private_allowed_by_route(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example", allow_private=True)])
        self.assertEqual(self.get(px, "/x", host="a.example").status_code, 200)


class ConnectionLimit(bgtest.TestCase):
    def test_sixth_connection_waits_until_one_closes(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        limits={"max_connections": 5})
        conns = []
        for i in range(5):
            c = self.raw(px)
            c.send("GET /c%d HTTP/1.1\r\nHost: a.example\r\n\r\n" % i)
            self.assertEqual(c.read_response().status, 200)
            conns.append(c)
        sixth = self.raw(px)  # the kernel completes the handshake (backlog)
        sixth.send("GET /sixth HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertTrue(sixth.silent_for(t(1.0)), "6th connection served while 5 are open")
        self.assertEqual([r.target for r in up.records()], ["/c%d" % i for i in range(5)])
        st = px.stats()
        self.assertEqual((st["connections_open"], st["connection_limit_hits"]), (5, 1))
        conns[0].close()
        r = sixth.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(up.records()[-1].target, "/sixth")
        # the others are still served
        conns[1].send("GET /again HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(conns[1].read_response().status, 200)


class NoCrash(bgtest.TestCase):
    def test_malformed_input_never_crashes(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        limits={"max_header_bytes": 1024, "max_body_bytes": 1000},
                        timeouts={"header_ms": 1500, "body_ms": 1500, "idle_ms": 1000})
        rnd = random.Random(20240611)
        shapes = [m[1].encode("latin-1") for m in MALFORMED]
        shapes += [b"", b"\r\n\r\n\r\n\r\n\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                   b"GET / HTTP/1.1\r\nHost: a.example\r\n" + b"X: y\r\n" * 300 + b"\r\n",
                   b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a.example\r\n\r\n",
                   b"POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + b"f" * 5000 + b"\r\n",
                   b"POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 99999999999999999999\r\n\r\n",
                   b"GET /x HTTP/1.1\r\nHost: [::1\r\n\r\n",
                   b"GET /x HTTP/1.1\r\nHost: " + b"h" * 600 + b"\r\n\r\n",
                   b"GET http:// HTTP/1.1\r\nHost: a.example\r\n\r\n",
                   b"GET https://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n"]
        for base in list(shapes[:20]):
            for _ in range(8):
                b = bytearray(base)
                for _ in range(rnd.randint(1, 4)):
                    if b:
                        b[rnd.randrange(len(b))] = rnd.choice(b"\r\n\x00 :\t\x7f\xff0aZ;,")
                shapes.append(bytes(b))
        shapes += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))) for _ in range(30)]
        for data in shapes:
            try:
                with socket.create_connection(("127.0.0.1", px.port), timeout=t(10)) as s:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):
                        pass
            except OSError:  # reset, timeout: whatever the proxy chose
                pass
            self.assertTrue(px.alive(), "daemon died after %r" % data[:120])
        # Again without the half-close, all at once: incomplete shapes sit
        # in the proxy until its header/body timeouts answer them.
        socks = []
        for data in shapes:
            s = socket.create_connection(("127.0.0.1", px.port), timeout=t(10))
            self.addCleanup(s.close)
            try:
                s.sendall(data)
            except OSError:
                pass
            socks.append(s)
        answered = 0
        for s in socks:
            try:
                first = s.recv(65536)
                answered += first.startswith(b"HTTP/1.1 ")
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()
        self.assertTrue(px.alive())
        self.assertGreater(answered, len(shapes) // 2)
        h = px.healthz()
        self.assertEqual((h["_status"], h["status"]), (200, "ok"))
        self.assertEqual(self.get(px, "/fine", host="a.example").status_code, 200)
        recs = up.records()
        self.assertEqual(recs[-1].target, "/fine")
        for rec in recs:
            # Random mutations may still form a valid request to a.example;
            # whatever reached the upstream is framed by Content-Length only.
            self.assertEqual(rec.header_values("transfer-encoding"), [])
            self.assertEqual(rec.header("host"), "127.0.0.1:%d" % up.port)


class MemoryBounds(bgtest.TestCase):
    @unittest.skipIf(bgtest.VALGRIND, "a memory-bound test, far too slow under valgrind")
    def test_pipelining_client_that_never_reads_is_bounded(self):
        up = self.sink()
        env = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")}
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], env=env)
        before = px.rss_kb()
        s = socket.create_connection(("127.0.0.1", px.port), timeout=t(30))
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        blob = b"GET /x HTTP/1.1\r\nHost: unknown.example\r\n\r\n" * 10000  # 421s, ~6x the bytes back
        s.settimeout(t(2))
        sent = 0
        try:
            while sent < 24 * 1024 * 1024:
                s.sendall(blob)
                sent += len(blob)
        except socket.timeout:
            pass  # the proxy stopped reading: what a bounded proxy does
        time.sleep(t(1))
        growth_kb = px.rss_kb("VmHWM") - before
        self.assertLess(growth_kb, 64 * 1024, "RSS grew by %d kB after %d bytes of pipelined requests"
                        % (growth_kb, sent))


class RouteScope(bgtest.TestCase):
    """A path-prefix route only ever forwards paths under its prefix."""

    def setUp(self):
        super().setUp()
        self.public = self.sink("public")
        self.px = self.proxy(routes=[
            route("public", self.public.origin + "/v2", prefix="/partner/public"),
        ])

    def test_paths_under_the_prefix_are_forwarded(self):
        for path, want in (("/partner/public", "/v2"), ("/partner/public/x/y?z=1", "/v2/x/y?z=1"),
                           ("/partner/public?q", "/v2?q")):
            r = self.get(self.px, path, host="any.example")
            self.assertEqual(r.status_code, 200, path)
            self.assertEqual(self.public.records()[-1].target, want)

    def test_dot_segments_cannot_escape_the_prefix(self):
        for path in ("/partner/public/../private/upload", "/partner/public/%2e%2e/private/upload",
                     "/partner/public/./../../admin", "/partner/public/..", "/partner/public/%2E%2e"):
            with self.subTest(path):
                c = self.raw(self.px)
                c.send("POST %s HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nhi" % path)
                r = c.read_response()
                self.assertIn(r.status, (400, 421), path)
                self.assertRefusal(r, r.status)
        self.assertNothingForwarded(self.public)

    def test_fragment_in_target_400(self):
        c = self.raw(self.px)
        c.send("GET /partner/public/x#frag HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertRefusal(c.read_response(), 400)
        self.assertNothingForwarded(self.public)


# Targets that could mean another path to an upstream that decodes once or
# twice, treats '\\' as '/', or drops ";params" before resolving dot
# segments (each tried under the public prefix, aiming at /partner/private).
ESCAPES = [
    "/partner/public/..%2fprivate/upload",
    "/partner/public%2f..%2fprivate/upload",
    "/partner/public/%2e%2e%2fprivate/upload",
    "/partner/public/%252e%252e/private/upload",
    "/partner/public/%252E%252E%252Fprivate/upload",
    "/partner/public/%25%32%65%25%32%65/private/upload",
    "/partner/public/..;/private/upload",
    "/partner/public/.;/../private/upload",
    "/partner/public/..;jsessionid=1/private/upload",
    "/partner/public/..\\private/upload",
    "/partner/public\\..\\private/upload",
    "/partner/public/%5c..%5cprivate/upload",
    "/partner/public/%255c..%255cprivate/upload",
    "/partner/public/..%00/private/upload",
    "/partner/public/x%00.json",
    "/partner/public/%c0%ae%c0%ae/private/upload",
    "/partner/public/%c0%ae%c0%ae%c0%afprivate/upload",
    "/partner/public/%e0%80%ae%e0%80%ae/private/upload",
    "/partner/public/%u002e%u002e/private/upload",
    "/partner/public/.../private/upload",
    "http://any.example/partner/public/..;/private/upload",
    # spellings of the private prefix that only decode to it
    "/partner/%70rivate/upload",
    "/partner/%2570rivate/upload",
    "/%70artner/private/upload",
]

# Names that only look like dots, escapes or non-ASCII: forwarded unchanged.
LEGITIMATE = [
    "/partner/public/a.b/c",
    "/partner/public/v1.2/x",
    "/partner/public/files/...txt",
    "/partner/public/.well-known/x",
    "/partner/public/a%20b",
    "/partner/public/%E4%B8%AD%E6%96%87",
    "/partner/public/50%25off",
    "/partner/public/x;v=1/y",
    "/partner/public/x?next=../../private&u=%2F",
]


class RouteBoundaries(bgtest.TestCase):
    """Nothing reaches a path-prefix route's upstream, nor a neighbour's,
    through a spelling of a path outside its prefix."""

    def setUp(self):
        super().setUp()
        self.public = self.sink("public")
        self.private = self.sink("private")
        self.rest = self.sink("rest")
        self.px = self.proxy(routes=[
            route("public", self.public.origin + "/v2", prefix="/partner/public"),
            route("private", self.private.origin, prefix="/partner/private"),
            route("rest", self.rest.origin, prefix="/"),
        ])

    def test_escapes_are_refused_400_and_nothing_arrives(self):
        for path in ESCAPES:
            with self.subTest(path):
                c = self.raw(self.px)
                c.send("POST %s HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nhi" % path)
                r = c.read_response()
                doc = self.assertRefusal(r, 400)
                self.assertEqual(r.header("connection"), "close")
                # the refusal never echoes the target
                self.assertNotIn("private", doc["error"])
        self.assertNothingForwarded(self.public, self.private, self.rest)
        st = self.px.stats()
        self.assertEqual(st["refused_malformed"], len(ESCAPES))
        self.assertEqual(st["upstream_connects"], 0)
        m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.px.admin_port,
                                   timeout=t(10)).read().decode()
        self.assertIn('bordergate_refusals_total{status="400"} %d' % len(ESCAPES), m)

    def test_legitimate_names_are_forwarded_unchanged(self):
        for path in LEGITIMATE:
            with self.subTest(path):
                c = self.raw(self.px)
                c.send("GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n" % path)
                self.assertEqual(c.read_response().status, 200)
                self.assertEqual(self.public.records()[-1].target,
                                 "/v2" + path[len("/partner/public"):])
        self.assertNothingForwarded(self.private, self.rest)

    def test_prefix_in_canonical_spelling_still_routes(self):
        # "/partner/private" written with an escaped unreserved character is
        # refused above; the same path plainly spelt goes to its own route.
        r = self.post(self.px, "/partner/private/upload", b"{}", host="a.example")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.private.records()[-1].target, "/partner/private/upload")
        self.assertNothingForwarded(self.public, self.rest)

    def test_replay_refuses_the_same_targets(self):
        sep = "\n\U0001F435\U0001F648\U0001F649\n".encode()
        payloads = []
        for i, path in enumerate(ESCAPES + LEGITIMATE[:2]):
            payloads.append(("1 %040x 1700000000%09d 0\n" % (i, i)).encode() +
                            ("GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n" % path).encode("latin-1"))
        p = os.path.join(self.tmpdir, "t.gor")
        with open(p, "wb") as f:
            f.write(sep.join(payloads) + sep)
        r = subprocess.run([bgtest.BIN, "replay", "--config", self.px.config_path, "--gor", p],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=t(60))
        out = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        self.assertEqual(len(out), len(ESCAPES) + 2, r.stderr)
        for o, path in zip(out, ESCAPES):
            with self.subTest(path):
                self.assertEqual((o["decision"], o["status"]), ("refused", 400))
        self.assertEqual([o["route"] for o in out[len(ESCAPES):]], ["public", "public"])


class RepeatedFields(bgtest.TestCase):
    """Only the first Content-Type / Content-Encoding would be inspected
    while every copy is forwarded: such requests are refused."""

    def test_repeated_content_type_or_encoding_400(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")])
        body = '{"phone": "13812345678"}'
        for name, extra in (
                ("two content types", "Content-Type: text/plain\r\nContent-Type: application/json\r\n"),
                ("same content type twice",
                 "Content-Type: application/json\r\ncontent-type: application/json\r\n"),
                ("two content encodings",
                 "Content-Encoding: identity\r\nContent-Encoding: identity\r\n")):
            with self.subTest(name):
                c = self.raw(px)
                c.send("POST /x HTTP/1.1\r\nHost: a.example\r\n%sContent-Length: %d\r\n\r\n%s"
                       % (extra, len(body), body))
                doc = self.assertRefusal(c.read_response(), 400, "more than one Content-")
                self.assertNotIn("13812345678", json.dumps(doc))
        self.assertNothingForwarded(up)
        # one of each is fine
        c = self.raw(px)
        c.send("POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/json\r\n"
               "Content-Encoding: identity\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(len(up.records()), 1)


class HostSyntax(bgtest.TestCase):
    def test_invalid_host_port_400(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")])
        for host in ("a.example:abc", "a.example:80:80", "a.example:-1", "a.example:0",
                     "a.example:00000", "a.example:65536", "a.example:99999", "a.example:+80",
                     "a.example:", "[::1]:0"):
            with self.subTest(host):
                c = self.raw(px)
                c.send("GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
                self.assertRefusal(c.read_response(), 400, "invalid port")
        c = self.raw(px)
        c.send("GET http://a.example:65536/x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertRefusal(c.read_response(), 400, "invalid port")
        self.assertNothingForwarded(up)
        for host in ("a.example:1", "a.example:65535"):
            with self.subTest(host):
                c = self.raw(px)
                c.send("GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
                self.assertEqual(c.read_response().status, 200)
        self.assertEqual(len(up.records()), 2)

    def test_host_with_userinfo_or_path_or_list_is_not_routed(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")])
        for host in ("a.example@evil.example", "a.example/evil", "a.example, b.example", ""):
            with self.subTest(host):
                c = self.raw(px)
                c.send("GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
                r = c.read_response()
                self.assertIn(r.status, (400, 421))
                self.assertRefusal(r, r.status)
        c = self.raw(px)
        c.send("GET http://a.example@evil.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, (400, 421))
        self.assertNothingForwarded(up)


if __name__ == "__main__":
    bgtest.main()
