#!/usr/bin/python3
"""
What a user relies on when traffic goes through bordergate: routing, what
reaches the upstream (exactly), request ids, bodies both ways, 100-continue,
HEAD, streaming large responses in bounded memory, keep-alive and
pipelining, TLS to a real local upstream, upstream failures, reload, and a
graceful stop.
"""
import hashlib
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import make_config, route, sink_bytes, sink_bytes_md5, t  # noqa: E402

MB = 1024 * 1024


class Routing(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.a = self.sink("a")
        self.b = self.sink("b", host="127.0.0.2")
        self.px = self.proxy(routes=[
            route("by-host", self.a.origin, host="a.example"),
            route("by-prefix", self.b.origin + "/v2", prefix="/partner"),
        ])

    def test_get_by_host_keeps_method_target_and_query(self):
        r = self.get(self.px, "/orders/17?expand=items&x=%20y", host="a.example")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["sink"], "a")
        recs = self.a.records()
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0].method, "GET")
        self.assertEqual(recs[0].target, "/orders/17?expand=items&x=%20y")
        self.assertEqual(recs[0].header("host"), "127.0.0.1:%d" % self.a.port)
        self.assertEqual(recs[0].body, b"")
        self.assertNothingForwarded(self.b)

    def test_host_match_ignores_case_and_port(self):
        r = self.get(self.px, "/x", host="A.Example:8443")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["sink"], "a")

    def test_post_by_prefix_rewrites_path_and_keeps_body_exact(self):
        body = bytes(range(256)) * 1200 + b"\r\n\r\n0\r\n\r\n"  # binary, NULs, fake framing
        r = self.post(self.px, "/partner/orders?id=7", body, host="anything.example",
                      headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json(), {"ok": True, "sink": "b", "seq": 0, "received_bytes": len(body)})
        rec = self.b.records()[0]
        self.assertEqual(rec.method, "POST")
        self.assertEqual(rec.target, "/v2/orders?id=7")
        self.assertEqual(rec.header("host"), "127.0.0.2:%d" % self.b.port)
        self.assertEqual(rec.header("content-length"), str(len(body)))
        self.assertEqual(rec.header("content-type"), "application/octet-stream")
        self.assertEqual(hashlib.sha256(rec.body).hexdigest(), hashlib.sha256(body).hexdigest())
        self.assertNothingForwarded(self.a)

    def test_caller_host_not_echoed_on_a_route_matched_by_path(self):
        # On a route matched by path alone the caller's Host is text nobody
        # matched or inspected: it must not leave in X-Forwarded-Host or
        # Forwarded: host= (a mobile number in it would reach the partner).
        r = self.get(self.px, "/partner/x", host="13812345678.example")
        self.assertEqual(r.status_code, 200)
        rec = self.b.records()[0]
        self.assertIsNone(rec.header("x-forwarded-host"))
        self.assertEqual(rec.header("forwarded"), "for=127.0.0.1;proto=http")
        self.assertNotIn("13812345678", repr(rec.headers))

    def test_prefix_exact_and_with_query(self):
        self.assertEqual(self.get(self.px, "/partner", host="x").status_code, 200)
        self.assertEqual(self.get(self.px, "/partner?q=1", host="x").status_code, 200)
        self.assertEqual([r.target for r in self.b.records()], ["/v2", "/v2?q=1"])

    def test_prefix_is_a_path_segment_match(self):
        r = self.get(self.px, "/partnerX/1", host="x")
        self.assertRefusal(r, 421)
        self.assertNothingForwarded(self.a, self.b)

    def test_other_methods_are_forwarded(self):
        for m in ("PUT", "PATCH", "DELETE", "OPTIONS"):
            r = self.request(self.px, m, "/partner/r", host="x", data=b"{}" if m != "DELETE" else None)
            self.assertEqual(r.status_code, 200, m)
        self.assertEqual([r.method for r in self.b.records()], ["PUT", "PATCH", "DELETE", "OPTIONS"])

    def test_upstream_status_and_headers_relayed(self):
        r = self.get(self.px, "/__sink/status/404", host="a.example")
        self.assertEqual(r.status_code, 404)
        self.assertRequestId(r)
        r = self.get(self.px, "/__sink/status/503", host="a.example")
        self.assertEqual(r.status_code, 503)
        self.assertEqual(r.headers["Content-Type"], "application/json")


class Headers(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.sink()
        self.px = self.proxy(routes=[route("a", self.up.origin, host="a.example")])

    def send(self, extra_headers, target="/h"):
        c = self.raw(self.px)
        c.send("GET %s HTTP/1.1\r\nHost: a.example\r\n%s\r\n" % (target, extra_headers))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        return r, self.up.records()[-1]

    def test_hop_by_hop_headers_removed(self):
        r, rec = self.send(
            "Connection: keep-alive, X-Private-Hop\r\n"
            "Keep-Alive: timeout=5\r\n"
            "TE: trailers\r\n"
            "Trailer: X-Checksum\r\n"
            "Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n"
            "Proxy-Connection: keep-alive\r\n"
            "X-Private-Hop: must-not-leave\r\n"
            "X-End-To-End: kept\r\n"
            "Authorization: Bearer abc\r\n")
        names = rec.header_names()
        for h in ("connection", "keep-alive", "te", "trailer", "proxy-authorization",
                  "proxy-connection", "x-private-hop", "transfer-encoding", "upgrade"):
            self.assertNotIn(h, names)
        self.assertEqual(rec.header("x-end-to-end"), "kept")
        self.assertEqual(rec.header("authorization"), "Bearer abc")
        self.assertEqual(rec.header("host"), "127.0.0.1:%d" % self.up.port)

    def test_forwarding_headers_added(self):
        _, rec = self.send("")
        self.assertEqual(rec.header("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(rec.header("forwarded"), 'for=127.0.0.1;proto=http;host="a.example"')
        self.assertEqual(rec.header("x-forwarded-proto"), "http")
        self.assertEqual(rec.header("x-forwarded-host"), "a.example")

    def test_forwarding_headers_appended_to_existing(self):
        _, rec = self.send("X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n"
                           "Forwarded: for=192.0.2.60;proto=https\r\n"
                           "X-Forwarded-Proto: https\r\n"
                           "X-Forwarded-Host: spoofed.example\r\n")
        self.assertEqual(rec.header("x-forwarded-for"), "203.0.113.7, 198.51.100.2, 127.0.0.1")
        self.assertEqual(rec.header("forwarded"),
                         'for=192.0.2.60;proto=https, for=127.0.0.1;proto=http;host="a.example"')
        # What bordergate itself saw replaces what the client claimed.
        self.assertEqual(rec.header("x-forwarded-proto"), "http")
        self.assertEqual(rec.header("x-forwarded-host"), "a.example")

    def test_client_from_other_loopback_address(self):
        import socket
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.9", 0))
        s.settimeout(t(30))
        s.connect(("127.0.0.1", self.px.port))
        s.sendall(b"GET /from9 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        rec = self.up.records()[-1]
        self.assertEqual(rec.header("x-forwarded-for"), "127.0.0.9")
        self.assertEqual(rec.header("forwarded"), 'for=127.0.0.9;proto=http;host="a.example"')

    def test_request_id_on_every_response_and_unique(self):
        s = self.session()
        ids = []
        for i in range(10):
            r = self.get(self.px, "/i%d" % i, host="a.example", session=s)
            self.assertEqual(r.status_code, 200)
            ids.append(self.assertRequestId(r))
        r = self.get(self.px, "/", host="unknown.example", session=s)
        self.assertRefusal(r, 421)
        ids.append(self.assertRequestId(r))
        r = self.get(self.px, "/__sink/status/500", host="a.example", session=s)
        self.assertEqual(r.status_code, 500)
        ids.append(self.assertRequestId(r))
        self.assertEqual(len(set(ids)), len(ids), ids)

    def test_request_id_not_taken_from_client_or_upstream(self):
        r = self.get(self.px, "/x", host="a.example", headers={"X-Bordergate-Id": "0" * 32})
        self.assertNotEqual(self.assertRequestId(r), "0" * 32)
        self.assertEqual(len(r.raw.headers.getlist("X-Bordergate-Id")), 1)


class Bodies(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.sink()
        self.px = self.proxy(routes=[route("a", self.up.origin, host="a.example")])

    def test_chunked_upload_arrives_dechunked_with_content_length(self):
        c = self.raw(self.px)
        c.send("POST /up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n"
               "Content-Type: text/plain\r\n\r\n"
               "5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["received_bytes"], 21)
        rec = self.up.records()[0]
        self.assertEqual(rec.body, b"hello world0123456789")
        self.assertEqual(rec.header("content-length"), "21")
        self.assertIsNone(rec.header("transfer-encoding"))
        self.assertEqual(rec.header("content-type"), "text/plain")

    def test_chunked_upload_with_requests_generator(self):
        # (no empty part: requests would send it as the last chunk)
        parts = [os.urandom(1000), os.urandom(70000), os.urandom(3)]
        r = self.post(self.px, "/gen", (p for p in parts), host="a.example")
        self.assertEqual(r.status_code, 200)
        rec = self.up.records()[0]
        self.assertEqual(rec.body, b"".join(parts))
        self.assertEqual(rec.header("content-length"), str(71003))

    def test_chunked_upload_split_into_single_bytes(self):
        c = self.raw(self.px)
        c.send("POST /up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n")
        for b in b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n":
            c.send(bytes([b]))
            time.sleep(0.002)
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.up.records()[0].body, b"abcde")

    def test_empty_chunked_upload(self):
        c = self.raw(self.px)
        c.send("POST /e HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        rec = self.up.records()[0]
        self.assertEqual(rec.body, b"")
        self.assertEqual(rec.header("content-length"), "0")

    def test_post_content_length_zero(self):
        r = self.post(self.px, "/z", b"", host="a.example")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.up.records()[0].header("content-length"), "0")

    def curl_upload(self, body, *how):
        path = os.path.join(self.tmpdir, "body.bin")
        with open(path, "wb") as f:
            f.write(body)
        r = self.curl("-v", "--expect100-timeout", "30", "-H", "Host: a.example",
                      "-H", "Content-Type: application/json", *[a.replace("@FILE", path) for a in how],
                      self.px.url("/upload"))
        err = r.stderr.decode("latin-1")
        self.assertIn("> Expect: 100-continue", err)
        self.assertIn("< HTTP/1.1 100 Continue", err)
        self.assertIn("< HTTP/1.1 200 OK", err)
        rec = self.up.records()[-1]
        self.assertEqual(rec.method, "POST")
        self.assertEqual(hashlib.sha256(rec.body).hexdigest(), hashlib.sha256(body).hexdigest())
        self.assertIsNone(rec.header("expect"))
        self.assertEqual(rec.header("content-length"), str(len(body)))

    def test_expect_100_continue_with_curl_upload(self):
        # curl 7.88 sends Expect for -T uploads over 1 KiB ...
        body = b'{"items": [' + b",".join(b'{"n": %d}' % i for i in range(400)) + b"]}"
        self.assertGreater(len(body), 1024)
        self.curl_upload(body, "-X", "POST", "-T", "@FILE")

    def test_expect_100_continue_with_curl_post(self):
        # ... and for --data-binary POSTs over 1 MiB.
        body = os.urandom(MB + 4321)
        self.curl_upload(body, "--data-binary", "@@FILE")

    def test_expect_100_continue_interim_on_raw_socket(self):
        c = self.raw(self.px)
        body = b"x" * 2000
        c.send("POST /ec HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2000\r\n"
               "Expect: 100-continue\r\n\r\n")
        interim = c.read_response(interim=True)
        self.assertEqual((interim.status, interim.headers), (100, []))
        self.assertEqual(self.up.records(), [])  # nothing forwarded before the body
        c.send(body)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(self.up.records()[0].body, body)

    def test_expect_100_continue_chunked(self):
        c = self.raw(self.px)
        c.send("POST /ec HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n"
               "Expect: 100-Continue\r\n\r\n")
        self.assertEqual(c.read_response(interim=True).status, 100)
        c.send("3\r\nabc\r\n0\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.up.records()[0].body, b"abc")

    def test_head_relays_headers_but_no_body(self):
        r = self.request(self.px, "HEAD", "/__sink/bytes/1000", host="a.example")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers["Content-Length"], "1000")
        self.assertEqual(r.content, b"")
        # On one connection: nothing of a body leaks into the next response.
        c = self.raw(self.px)
        c.send("HEAD /__sink/bytes/1000 HTTP/1.1\r\nHost: a.example\r\n\r\n"
               "GET /__sink/bytes/10 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        h = c.read_response(head_request=True)
        self.assertEqual((h.status, h.header("content-length")), (200, "1000"))
        g = c.read_response()
        self.assertEqual((g.status, g.body), (200, sink_bytes(10)))
        self.assertEqual([r.method for r in self.up.records()], ["HEAD", "HEAD", "GET"])

    def test_small_response_bodies_exact(self):
        for n in (0, 1, 4095, 4096, 4097, 100000):
            r = self.get(self.px, "/__sink/bytes/%d" % n, host="a.example")
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.content, sink_bytes(n), n)
            r = self.get(self.px, "/__sink/bytes/%d?chunked=1" % n, host="a.example")
            self.assertEqual(r.content, sink_bytes(n), n)
            if n:
                self.assertEqual(r.headers.get("Transfer-Encoding"), "chunked")

    def test_http10_client_gets_dechunked_response_and_close(self):
        c = self.raw(self.px)
        c.send("GET /__sink/bytes/10000?chunked=1 HTTP/1.0\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("transfer-encoding"))
        self.assertEqual(r.header("connection"), "close")
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(r.body, sink_bytes(10000))
        self.assertTrue(c.eof)  # the body was delimited by the close

    def test_http10_client_content_length_response(self):
        c = self.raw(self.px)
        c.send("GET /__sink/bytes/300 HTTP/1.0\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.header("content-length"), r.body), (200, "300", sink_bytes(300)))
        self.assertTrue(c.closed_within(t(10)))


class LargeResponses(bgtest.TestCase):
    SIZE = 50 * MB

    def stream(self, chunked):
        up = self.sink()
        # ASan's quarantine would keep freed buffers resident and measure the
        # sanitizer, not the proxy.
        env = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")}
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], env=env)
        s = self.session()
        self.assertEqual(self.get(px, "/__sink/bytes/1000000", host="a.example", session=s).status_code, 200)
        before = px.rss_kb()
        path = "/__sink/bytes/%d%s" % (self.SIZE, "?chunked=1" if chunked else "")
        r = self.get(px, path, host="a.example", session=s, stream=True)
        self.assertEqual(r.status_code, 200)
        if chunked:
            self.assertEqual(r.headers.get("Transfer-Encoding"), "chunked")
            self.assertNotIn("Content-Length", r.headers)
        else:
            self.assertEqual(r.headers.get("Content-Length"), str(self.SIZE))
        h = hashlib.md5()
        n = 0
        it = r.iter_content(65536)
        first = next(it)
        h.update(first)
        n += len(first)
        # A slow reader: the upstream is much faster; without back-pressure
        # the proxy would buffer the whole response now.
        time.sleep(t(1.5))
        for chunk in it:
            h.update(chunk)
            n += len(chunk)
        self.assertEqual(n, self.SIZE)
        self.assertEqual(h.hexdigest(), sink_bytes_md5(self.SIZE))
        growth_kb = px.rss_kb("VmHWM") - before
        self.assertLess(growth_kb, 40 * 1024, "proxy RSS grew by %d kB for a %d MB response"
                        % (growth_kb, self.SIZE // MB))
        # The connection is still usable afterwards.
        self.assertEqual(self.get(px, "/after", host="a.example", session=s).status_code, 200)
        return growth_kb

    def test_50mb_content_length_streamed(self):
        self.stream(chunked=False)

    def test_50mb_chunked_streamed(self):
        self.stream(chunked=True)


class KeepAliveAndPipelining(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.sink()
        self.px = self.proxy(routes=[route("a", self.up.origin, host="a.example")])

    def test_keep_alive_reuse_on_both_sides(self):
        s = self.session()
        for i in range(10):
            r = self.get(self.px, "/k%d" % i, host="a.example", session=s)
            self.assertEqual(r.status_code, 200)
            self.assertNotIn("close", r.headers.get("Connection", ""))
        st = self.px.stats()
        self.assertEqual(st["connections_accepted"], 1)
        self.assertEqual(st["requests"], 10)
        self.assertEqual(st["upstream_connects"], 1)
        self.assertEqual(st["upstream_reused"], 9)
        self.assertEqual(st["upstream_idle"], 1)
        self.assertEqual([r.target for r in self.up.records()], ["/k%d" % i for i in range(10)])

    def test_keep_alive_on_raw_connection_with_bodies(self):
        c = self.raw(self.px)
        for i in range(5):
            body = b"b" * (i * 1000)
            c.send(b"POST /r%d HTTP/1.1\r\nHost: a.example\r\nContent-Length: %d\r\n\r\n%s"
                   % (i, len(body), body))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["received_bytes"], len(body))
        self.assertEqual([len(r.body) for r in self.up.records()], [0, 1000, 2000, 3000, 4000])
        self.assertEqual(self.px.stats()["upstream_connects"], 1)

    def test_pipelined_requests_answered_in_order(self):
        c = self.raw(self.px)
        c.send("GET /__sink/status/201 HTTP/1.1\r\nHost: a.example\r\n\r\n"
               "POST /p2 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\nabc"
               "GET /__sink/status/203 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        rs = [c.read_response() for _ in range(3)]
        self.assertEqual([r.status for r in rs], [201, 200, 203])
        self.assertEqual(rs[1].json()["received_bytes"], 3)
        ids = [r.header("x-bordergate-id") for r in rs]
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual([(r.method, r.target, r.body) for r in self.up.records()],
                         [("GET", "/__sink/status/201", b""), ("POST", "/p2", b"abc"),
                          ("GET", "/__sink/status/203", b"")])
        # Still open for more.
        c.send("GET /4 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_pipelined_after_refusal_that_keeps_connection(self):
        # An unknown route without a body is answered and the connection
        # carries on with the next pipelined request.
        c = self.raw(self.px)
        c.send("GET /1 HTTP/1.1\r\nHost: nowhere.example\r\n\r\n"
               "GET /2 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertRefusal(c.read_response(), 421)
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual([r.target for r in self.up.records()], ["/2"])

    def test_a_long_pipeline_of_refusals_is_answered_whole(self):
        # Each 421 completes at once; the next request of the pipeline is
        # taken by the loop, not by a call one stack frame deeper, so a
        # pipeline as long as limits allow is answered in order and the
        # worker survives it.
        req = "GET /%d HTTP/1.1\r\nHost: nowhere.example\r\n\r\n"
        n = 0
        batch = ""
        while len(batch) + len(req % n) < 60 * 1024:
            batch += req % n
            n += 1
        batch += "GET /last HTTP/1.1\r\nHost: a.example\r\n\r\n"
        c = self.raw(self.px)
        c.send(batch)
        statuses = [c.read_response().status for _ in range(n + 1)]
        self.assertEqual(statuses, [421] * n + [200])
        self.assertEqual([r.target for r in self.up.records()], ["/last"])
        self.assertEqual(self.get(self.px, "/after", host="a.example").status_code, 200)

    def test_connection_close_from_client(self):
        c = self.raw(self.px)
        c.send("GET /c HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.header("connection")), (200, "close"))
        self.assertTrue(c.closed_within(t(10)))
        self.assertNotIn("connection", self.up.records()[0].header_names())


class Tls(bgtest.TestCase):
    def config(self, sink, upstream_host="api.partner.example", ca=True):
        cfg = make_config(
            [route("tls", "https://%s:%d" % (upstream_host, sink.port), host="a.example")],
            resolve={"api.partner.example": "127.0.0.1"})
        if ca:
            cfg["upstream_tls"] = {"ca_file": bgtest.pki().ca}
        return cfg

    def test_tls_upstream_verified_by_name(self):
        up = self.sink("tls", tls="good")
        px = self.proxy(self.config(up))
        s = self.session()
        for i in range(3):
            r = self.post(px, "/secure/%d" % i, b'{"a":1}', host="a.example", session=s)
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.json()["sink"], "tls")
        recs = up.records()
        self.assertEqual([r.target for r in recs], ["/secure/0", "/secure/1", "/secure/2"])
        self.assertEqual(recs[0].header("host"), "api.partner.example:%d" % up.port)
        self.assertEqual(recs[0].body, b'{"a":1}')
        st = px.stats()
        self.assertEqual((st["upstream_connects"], st["upstream_reused"]), (1, 2))

    def test_tls_upstream_by_ip_address_san(self):
        up = self.sink("tls", tls="good")
        px = self.proxy(self.config(up, upstream_host="127.0.0.1"))
        r = self.get(px, "/ip", host="a.example")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(up.records()[0].header("host"), "127.0.0.1:%d" % up.port)

    def test_tls_large_response(self):
        up = self.sink("tls", tls="good")
        px = self.proxy(self.config(up))
        r = self.get(px, "/__sink/bytes/%d" % (3 * MB + 5), host="a.example")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(hashlib.md5(r.content).hexdigest(), sink_bytes_md5(3 * MB + 5))

    def refused(self, cert, ca=True):
        up = self.sink("tls", tls=cert)
        px = self.proxy(self.config(up, ca=ca))
        r = self.get(px, "/secret", host="a.example")
        self.assertRefusal(r, 502, "TLS")
        self.assertNothingForwarded(up)
        self.assertRegex(px.log(), r"TLS")
        return px

    def test_tls_wrong_name_refused(self):
        self.refused("wrongname")

    def test_tls_untrusted_ca_refused(self):
        self.refused("untrusted")

    def test_tls_expired_certificate_refused(self):
        self.refused("expired")

    def test_tls_test_ca_not_trusted_without_ca_file(self):
        self.refused("good", ca=False)

    def test_verify_false_accepts_untrusted(self):
        up = self.sink("tls", tls="untrusted")
        cfg = self.config(up, ca=False)
        cfg["upstream_tls"] = {"verify": False}
        px = self.proxy(cfg)
        self.assertEqual(self.get(px, "/v", host="a.example").status_code, 200)
        self.assertEqual(up.records()[0].target, "/v")
        self.assertIn("verification is DISABLED", px.log())

    def test_plain_http_to_tls_upstream_is_not_a_response(self):
        up = self.sink("tls", tls="good")
        px = self.proxy(make_config([route("x", "http://127.0.0.1:%d" % up.port, host="a.example")],
                                    timeouts={"response_ms": 2000}))
        r = self.get(px, "/x", host="a.example")
        self.assertRefusal(r, 502)  # the TLS alert is not an HTTP response
        self.assertNothingForwarded(up)


class UpstreamFailures(bgtest.TestCase):
    def test_upstream_down_502(self):
        port = bgtest.free_port()
        px = self.proxy(routes=[route("down", "http://127.0.0.1:%d" % port, host="a.example")])
        r = self.get(px, "/x", host="a.example")
        self.assertRefusal(r, 502, "connect")
        self.assertEqual(px.stats()["upstream_errors"], 1)
        # keep-alive survives an upstream error
        self.assertTrue(px.alive())

    def test_upstream_slow_504(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        timeouts={"response_ms": 500})
        t0 = time.monotonic()
        r = self.get(px, "/__sink/delay/%d" % int(t(6) * 1000), host="a.example")
        took = time.monotonic() - t0
        self.assertRefusal(r, 504)
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, t(5))
        # The next request gets a fresh upstream connection and succeeds.
        self.assertEqual(self.get(px, "/ok", host="a.example").status_code, 200)

    def test_upstream_closes_without_answer_502(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")])
        r = self.get(px, "/__sink/close", host="a.example")
        self.assertRefusal(r, 502, "closed")
        self.assertEqual(up.records()[0].target, "/__sink/close")

    def test_upstream_closes_pooled_connection_then_retry(self):
        # A pooled connection closed by the upstream between requests is
        # not a client-visible failure.
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        timeouts={"upstream_idle_ms": 60000})
        s = self.session()
        self.assertEqual(self.get(px, "/1", host="a.example", session=s).status_code, 200)
        self.assertEqual(self.get(px, "/__sink/close", host="a.example", session=s).status_code, 502)
        self.assertEqual(self.get(px, "/3", host="a.example", session=s).status_code, 200)

    def test_invalid_upstream_response_502(self):
        import socket
        srv = socket.socket()
        self.addCleanup(srv.close)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]

        def serve():
            try:
                conn, _ = srv.accept()
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
                time.sleep(t(2))
                conn.close()
            except OSError:
                pass

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        px = self.proxy(routes=[route("bad", "http://127.0.0.1:%d" % port, host="a.example")])
        r = self.get(px, "/x", host="a.example")
        self.assertRefusal(r, 502, "invalid response")
        th.join(t(5))


class ReloadAndStop(bgtest.TestCase):
    def test_sighup_adds_route_and_broken_config_keeps_old(self):
        a = self.sink("a")
        b = self.sink("b")
        cfg = make_config([route("a", a.origin, host="a.example")])
        px = self.proxy(cfg)
        self.assertEqual(px.healthz()["config_generation"], 1)
        self.assertRefusal(self.get(px, "/", host="b.example"), 421)

        cfg2 = make_config([route("a", a.origin, host="a.example"), route("b", b.origin, host="b.example")])
        cfg2["admin"] = px.config["admin"]
        cfg2["listen"] = px.config["listen"]
        h = px.reload(cfg2)
        self.assertEqual((h["config_generation"], h["routes"], h["reloads_ok"]), (2, 2, 1))
        r = self.get(px, "/new", host="b.example")
        self.assertEqual((r.status_code, r.json()["sink"]), (200, "b"))

        h = px.reload('{"routes": [ {"id": "a", ', expect_ok=False)
        self.assertEqual((h["config_generation"], h["routes"], h["reloads_failed"]), (2, 2, 1))
        self.assertEqual(h["status"], "ok")
        self.assertEqual(self.get(px, "/old", host="a.example").status_code, 200)
        self.assertEqual(self.get(px, "/old", host="b.example").status_code, 200)
        self.assertIn("reload of %s failed" % px.config_path, px.log())

        # A semantically invalid config is refused the same way, each of its
        # errors logged on a line of its own for the operator.
        bad = dict(cfg2)
        bad["routes"] = [route("c", "ftp://nope", host="c.example"),
                         route("d", "gopher://x", host="d.example")]
        h = px.reload(bad, expect_ok=False)
        self.assertEqual((h["config_generation"], h["reloads_failed"]), (2, 2))
        self.assertEqual(self.get(px, "/still", host="b.example").status_code, 200)
        errs = [ln for ln in px.log().splitlines() if "upstream must start with" in ln]
        self.assertEqual(len(errs), 2, errs)
        self.assertIn("$.routes[0].upstream", errs[0])
        self.assertIn("$.routes[1].upstream", errs[1])

    def test_admin_post_reload(self):
        a = self.sink("a")
        px = self.proxy(routes=[route("a", a.origin, host="a.example")])
        cfg = dict(px.config)
        cfg["routes"] = [route("a2", a.origin, host="a2.example")]
        px.write_config(cfg)
        status, doc = px.admin("POST", "/reload")
        self.assertEqual((status, doc), (200, {"reloaded": True}))
        self.assertEqual(self.get(px, "/", host="a2.example").status_code, 200)
        self.assertRefusal(self.get(px, "/", host="a.example"), 421)
        px.write_config("[]")
        status, doc = px.admin("POST", "/reload")
        self.assertEqual((status, doc["reloaded"]), (422, False))
        self.assertEqual(px.healthz()["config_generation"], 2)

    def test_sigterm_lets_in_flight_request_finish(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")])
        idle = self.session()
        self.assertEqual(self.get(px, "/idle", host="a.example", session=idle).status_code, 200)
        result = {}
        delay_ms = 2000  # well inside the 10 s drain deadline, even under valgrind

        def slow():
            try:
                r = self.get(px, "/__sink/delay/%d" % delay_ms, host="a.example")
                result["status"] = r.status_code
                result["body"] = r.json()
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = repr(e)

        th = threading.Thread(target=slow)
        th.start()
        up.wait_records(2)
        t0 = time.monotonic()
        px.proc.signal(signal.SIGTERM)
        th.join(t(30))
        self.assertEqual(result.get("status"), 200, result)
        self.assertEqual(result["body"]["sink"], "up")
        rc = px.wait()
        self.assertEqual(rc, 0, px.log())
        self.assertLess(time.monotonic() - t0, t(9))
        self.assertIn("stopped", px.log())


def ok_response(body=b"ok", extra=""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra.encode(), body)


class UpstreamShapes(bgtest.TestCase):
    """Response shapes from a scripted upstream (exact bytes)."""

    def scripted(self, handler, **kw):
        up = bgtest.ScriptedUpstream(self, handler)
        px = self.proxy(routes=[route("s", up.origin, host="a.example")], **kw)
        return up, px

    def test_interim_1xx_skipped(self):
        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                   b"HTTP/1.1 100 Continue\r\n\r\n" + ok_response(b"final"))
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response(interim=True)
        self.assertEqual((r.status, r.body), (200, b"final"))

    def test_close_delimited_body(self):
        body = os.urandom(300000)

        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + body)
            c.close()
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("connection"), "close")
        self.assertEqual(hashlib.md5(r.body).hexdigest(), hashlib.md5(body).hexdigest())
        self.assertTrue(c.eof)

    def test_upstream_connection_close_not_pooled(self):
        def h(c, n):
            c.read_request()
            c.send(ok_response(b"n%d" % n, "Connection: close\r\n"))
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        s = self.session()
        for i in range(3):
            r = self.get(px, "/", host="a.example", session=s)
            self.assertEqual((r.status_code, r.content), (200, b"n%d" % i))
            self.assertNotIn("Connection", r.headers)  # the client's connection stays open
        st = px.stats()
        self.assertEqual((st["connections_accepted"], st["upstream_connects"], st["upstream_reused"]),
                         (1, 3, 0))

    def test_response_hop_by_hop_removed_end_to_end_kept(self):
        def h(c, n):
            c.read_request()
            c.send(ok_response(b"x", "Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
                                     "X-Hop: secret\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\n"
                                     "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Up: kept\r\n"
                                     "X-Bordergate-Id: " + "f" * 32 + "\r\n"))
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        names = [k.lower() for k, _ in r.headers]
        for hop in ("connection", "keep-alive", "x-hop", "proxy-authenticate", "trailer"):
            self.assertNotIn(hop, names)
        self.assertEqual(r.header_values("set-cookie"), ["a=1", "b=2"])
        self.assertEqual(r.header("x-up"), "kept")
        self.assertNotEqual(r.header("x-bordergate-id"), "f" * 32)
        self.assertRegex(r.header("x-bordergate-id"), bgtest.HEX32)

    def test_chunked_with_extensions_and_trailers(self):
        def h(c, n):
            while True:
                c.read_request()
                c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 1\r\n\r\n")
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.chunked, r.body), (200, True, b"Wikipedia"))
        c.send("GET /y HTTP/1.0\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.chunked, r.body), (200, False, b"Wikipedia"))
        self.assertTrue(c.eof)
        self.assertEqual(px.stats()["upstream_reused"], 1)

    def test_chunked_framing_split_across_reads(self):
        # Every framing line, CRLF and trailer arrives in pieces.
        body = b"4\r\nWiki\r\n5;ext=x\r\npedia\r\nA\r\n0123456789\r\n0\r\nX-T: a\r\n\r\n"

        def h(c, n):
            while True:
                c.read_request()
                c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(len(body)):
                    c.send(body[i:i + 1])
                    time.sleep(0.005)
        up, px = self.scripted(h)
        for version in ("1.1", "1.0"):
            c = self.raw(px)
            c.send("GET /x HTTP/%s\r\nHost: a.example\r\n\r\n" % version)
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"Wikipedia0123456789"), version)

    def test_extra_bytes_after_body_not_reused_nor_relayed(self):
        def h(c, n):
            c.read_request()
            c.send(ok_response(b"body%d" % n) + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().body, b"body0")
        c.send("GET /2 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().body, b"body1")
        self.assertEqual(px.stats()["upstream_reused"], 0)

    def test_no_content_and_not_modified(self):
        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
            c.read_request()
            c.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n")
            c.read_request()
            c.send(ok_response(b"third"))
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 204)
        c.send("GET /2 HTTP/1.1\r\nHost: a.example\r\nIf-None-Match: \"e\"\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.header("etag")), (304, '"e"'))
        c.send("GET /3 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().body, b"third")
        self.assertEqual(up.accepted, 1)

    def test_transfer_coding_other_than_chunked_not_dropped(self):
        import gzip
        z = gzip.compress(b"hello world")

        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                   % (len(z), z))
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        if r.status == 200:
            self.assertEqual(r.header("transfer-encoding"), "gzip, chunked")
            self.assertEqual(gzip.decompress(r.body), b"hello world")
        else:
            self.assertRefusal(r, 502)

    def test_switching_protocols_refused(self):
        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        self.assertRefusal(self.get(px, "/", host="a.example"), 502)

    def test_huge_response_head_502(self):
        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"b" * 70000 + b"\r\nContent-Length: 0\r\n\r\n")
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        self.assertRefusal(self.get(px, "/", host="a.example"), 502)

    def test_upstream_dies_mid_body_client_connection_cut(self):
        def h(c, n):
            c.read_request()
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"p" * 5000)
            time.sleep(0.2)
            c.close()
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        _, status, _, headers, _ = c.read_head()
        self.assertEqual(status, 200)
        got = c.read_until_close()
        self.assertEqual(got, b"p" * 5000)  # short: the client can tell it was cut
        self.assertTrue(px.alive())

    def test_request_as_upstream_sees_it(self):
        def h(c, n):
            c.read_request()
            c.send(ok_response())
            c.wait_closed(t(10))
        up, px = self.scripted(h)
        c = self.raw(px)
        c.send("POST /p?q=1 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nhi")
        self.assertEqual(c.read_response().status, 200)
        head = up.heads[0]
        self.assertEqual(head.split("\r\n")[0], "POST /p?q=1 HTTP/1.1")
        self.assertEqual(head.split("\r\n")[1], "Host: 127.0.0.1:%d" % up.port)
        self.assertEqual(head.count("Content-Length:"), 1)


class Options(bgtest.TestCase):
    def send(self, px, extra=""):
        c = self.raw(px)
        c.send("GET /o HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 203.0.113.7\r\n"
               "Forwarded: for=203.0.113.7\r\nX-Forwarded-Proto: https\r\n%s\r\n" % extra)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        return r

    def test_forwarded_headers_replace(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], forwarded_headers="replace")
        self.send(px)
        rec = up.records()[0]
        self.assertEqual(rec.header("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(rec.header("forwarded"), 'for=127.0.0.1;proto=http;host="a.example"')
        self.assertEqual(rec.header("x-forwarded-proto"), "http")

    def test_forwarded_headers_off(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], forwarded_headers="off")
        self.send(px)
        rec = up.records()[0]
        self.assertEqual(rec.header("x-forwarded-for"), "203.0.113.7")
        self.assertEqual(rec.header("forwarded"), "for=203.0.113.7")
        self.assertEqual(rec.header("x-forwarded-proto"), "https")
        self.assertIsNone(rec.header("x-forwarded-host"))

    def test_debug_headers(self):
        up = self.sink()
        px = self.proxy(routes=[route("a-route", up.origin, host="a.example")], debug_headers=True)
        r = self.send(px)
        self.assertEqual(r.header("x-bordergate-route"), "a-route")
        self.assertEqual(r.header("x-bordergate-destination"), "127.0.0.1:%d" % up.port)

    def test_upstream_idle_timeout_closes_pooled(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        timeouts={"upstream_idle_ms": int(t(0.3) * 1000)})
        s = self.session()
        self.assertEqual(self.get(px, "/1", host="a.example", session=s).status_code, 200)
        # The response is written in the loop pass it completes in, so the
        # connection may go back to the pool just after the client has it.
        bgtest.wait_for(lambda: px.stats()["upstream_idle"] == 1, t(0.25), "upstream back in the pool")
        bgtest.wait_for(lambda: px.stats()["upstream_idle"] == 0, t(10), "idle upstream closed")
        self.assertEqual(self.get(px, "/2", host="a.example", session=s).status_code, 200)
        st = px.stats()
        self.assertEqual((st["upstream_connects"], st["upstream_reused"]), (2, 0))

    def test_max_idle_upstream_zero_disables_pool(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")],
                        limits={"max_idle_upstream": 0})
        s = self.session()
        for i in range(3):
            self.assertEqual(self.get(px, "/%d" % i, host="a.example", session=s).status_code, 200)
        st = px.stats()
        self.assertEqual((st["upstream_connects"], st["upstream_reused"], st["upstream_idle"]), (3, 0, 0))

    def test_two_workers(self):
        up = self.sink()
        px = self.proxy(routes=[route("a", up.origin, host="a.example")], workers=2)
        self.assertEqual(px.healthz()["workers"], 2)
        for i in range(8):
            self.assertEqual(self.get(px, "/%d" % i, host="a.example").status_code, 200)
        self.assertEqual(px.stats()["requests"], 8)
        self.assertEqual(len(up.records()), 8)

    def test_ipv6_listener_and_forwarded_for(self):
        import socket
        up = self.sink()
        p4, p6 = bgtest.free_port(), None
        with socket.socket(socket.AF_INET6) as s6:
            s6.bind(("::1", 0))
            p6 = s6.getsockname()[1]
        px = self.proxy(make_config([route("a", up.origin, host="a.example")],
                                    listen=["127.0.0.1:%d" % p4, "[::1]:%d" % p6]))
        s = socket.create_connection(("::1", p6), timeout=t(30))
        self.addCleanup(s.close)
        s.sendall(b"GET /v6 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
        rec = up.records()[0]
        self.assertEqual(rec.header("x-forwarded-for"), "::1")
        self.assertEqual(rec.header("forwarded"), 'for="[::1]";proto=http;host="a.example"')
        self.assertEqual(self.get(px, "/v4", host="a.example").status_code, 200)

    def silent_nameserver(self):
        import socket
        ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(ns.close)
        ns.bind(("127.0.0.1", 0))
        ns.settimeout(t(5))
        return ns

    def test_dns_that_never_answers_504_within_connect_ms(self):
        # The real evdns path against a nameserver that holds its answer:
        # 504 after timeouts.connect_ms.
        ns = self.silent_nameserver()
        px = self.proxy(routes=[route("dns", "http://api.silent.example:80", host="a.example")],
                        timeouts={"connect_ms": 800},
                        dns={"nameservers": ["127.0.0.1:%d" % ns.getsockname()[1]]})
        t0 = time.monotonic()
        r = self.get(px, "/", host="a.example")
        took = time.monotonic() - t0
        self.assertRefusal(r, 504, "resolution")
        self.assertGreaterEqual(took, 0.75)
        self.assertLess(took, t(6))
        # Both questions (A, AAAA) arrived; answer them now (NXDOMAIN) so no
        # query is left in flight at shutdown (see the next test).
        for _ in range(2):
            query, peer = ns.recvfrom(512)
            self.assertIn(b"\x03api\x06silent\x07example\x00", query.lower())  # evdns mixes case
            ns.sendto(query[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + query[12:], peer)
        time.sleep(t(0.3))

    def test_stop_with_dns_query_in_flight_exits_cleanly(self):
        ns = self.silent_nameserver()
        px = self.proxy(routes=[route("dns", "http://api.silent.example:80", host="a.example")],
                        timeouts={"connect_ms": 500},
                        dns={"nameservers": ["127.0.0.1:%d" % ns.getsockname()[1]]})
        self.assertRefusal(self.get(px, "/", host="a.example"), 504)
        ns.recvfrom(512)  # the query is really pending
        self.assertEqual(px.stop(), 0, px.log()[-3000:])


class ClientShapes(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.sink()
        self.px = self.proxy(routes=[route("a", self.up.origin, host="a.example")])

    def test_absolute_form_target(self):
        c = self.raw(self.px)
        c.send("GET http://A.example:80/abs?x=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n"
               "GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(c.read_response().status, 200)
        recs = self.up.records()
        self.assertEqual([r.target for r in recs], ["/abs?x=1", "/"])
        self.assertEqual(recs[0].header("host"), "127.0.0.1:%d" % self.up.port)

    def test_head_split_into_single_bytes(self):
        c = self.raw(self.px)
        for ch in b"POST /bytes HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\n\r\nwxyz":
            c.send(bytes([ch]))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(self.up.records()[0].body, b"wxyz")

    def test_leading_empty_lines_skipped(self):
        c = self.raw(self.px)
        c.send("\r\n\r\nGET /lead HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.up.records()[0].target, "/lead")

    def test_http10_keep_alive(self):
        c = self.raw(self.px)
        for i in range(2):
            c.send("GET /k%d HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n" % i)
            r = c.read_response()
            self.assertEqual((r.status, r.header("connection")), (200, "keep-alive"))
        self.assertEqual(self.px.stats()["connections_accepted"], 1)

    def test_http10_expect_ignored(self):
        c = self.raw(self.px)
        c.send("POST /e HTTP/1.0\r\nHost: a.example\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
        r = c.read_response(interim=True)
        self.assertEqual(r.status, 200)
        self.assertNotIn(b"100 Continue", r.raw_head)

    def test_obs_text_header_value_forwarded(self):
        c = self.raw(self.px)
        c.send(b"GET /o HTTP/1.1\r\nHost: a.example\r\nX-Name: caf\xc3\xa9\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.up.records()[0].header("x-name"), "caf\u00e9")

    def test_sigterm_closes_idle_connections(self):
        c = self.raw(self.px)
        c.send("GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.px.proc.signal(signal.SIGTERM)
        self.assertTrue(c.closed_within(t(10)))
        self.assertEqual(self.px.wait(), 0, self.px.log())


if __name__ == "__main__":
    bgtest.main()
