"""
bgtest: the harness of bordergate's integration tests.

Every test starts the real binary: `bordergate sink` processes as upstreams
and `bordergate run` with a configuration written to a per-test temporary
directory, on free loopback ports. Nothing is mocked.

    class T(bgtest.TestCase):
        def test_x(self):
            up = self.sink("up")                          # records what arrives
            px = self.proxy(routes=[route("a", up.origin, host="a.example")])
            r = self.get(px, "/x", host="a.example")
            self.assertEqual(up.records()[0].target, "/x")

Clean-up is registered with addCleanup as each piece is started, so it runs
even when a test fails: client sockets are closed, then the proxy gets
SIGTERM and must exit 0 (an AddressSanitizer/LeakSanitizer report or a
valgrind error makes that exit code non-zero and the test an error), then
the sinks stop and the temporary directory is removed.

Environment:
    BG_BIN         the bordergate binary (default: $BG_BUILD_DIR/bordergate)
    BG_SOURCE_DIR  the source tree (default: two levels above this file)
    BG_BUILD_DIR   the build tree (only used to find BG_BIN)
    BG_VALGRIND=1  run every `bordergate run` under valgrind memcheck; the
                   daemon must exit 0 after SIGTERM (99 = valgrind error)
    BG_TIME_SCALE  multiply every client-side wait by this (default 1, 10
                   under valgrind, 3 for an AddressSanitizer build)
    BG_KEEP=1      keep temporary directories (their paths are printed)
    BG_ACCESS_LOG=0  do not give every Proxy an access log; by default each
                   gets one (access_log.path, unless the test sets its own)
                   and it is checked when the test ends: valid JSON lines,
                   every request id once, a line for every request /stats
                   counted (issue 17: every request of the suite appears
                   exactly once)
"""

import atexit
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("BG_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("BG_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
BIN = os.environ.get("BG_BIN") or os.path.join(BUILD_DIR, "bordergate")
VALGRIND = os.environ.get("BG_VALGRIND") == "1"
KEEP = os.environ.get("BG_KEEP") == "1"
ACCESS_LOG = os.environ.get("BG_ACCESS_LOG", "1") == "1"


def _is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


ASAN = _is_asan(BIN)
SCALE = float(os.environ.get("BG_TIME_SCALE") or (10 if VALGRIND else 3 if ASAN else 1))


def t(seconds):
    """A client-side wait, scaled for slow (sanitizer, valgrind) builds."""
    return seconds * SCALE


def expected_failure_if(cond):
    """unittest.expectedFailure when COND (a bug seen only in some builds,
    e.g. a leak that only sanitizer or valgrind runs detect)."""
    return unittest.expectedFailure if cond else (lambda f: f)


HEX32 = re.compile(r"^[0-9a-f]{32}$")

# ---------------------------------------------------------------------------
# Ports and files


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago on HOST (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.02):
    """Poll PRED until it returns a true value; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_audit_settled(audit_dir, quiet=0.15, timeout=None):
    """Wait until no file of AUDIT_DIR has grown for QUIET seconds. Records
    that no request waits for (completions, refusals, decisions that send
    no personal information abroad) reach the log up to 10 ms after the
    answer (a decision kept for its completion goes with it, when the
    exchange ends; docs/audit.md, "Write before forward"); a test that compares
    the log with what it sent waits for them first."""
    def sizes():
        out = {}
        for root, _dirs, files in os.walk(audit_dir):
            for f in files:
                try:
                    out[os.path.join(root, f)] = os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
        return out
    deadline = time.monotonic() + (timeout or t(20))
    last, since = sizes(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError("audit log in %s still growing after the timeout" % audit_dir)
        time.sleep(0.02)
        now = sizes()
        if now != last:
            last, since = now, time.monotonic()


# The pattern `bordergate sink` streams for /__sink/bytes/N: 4096-byte blocks,
# each the 63-byte filler repeated from its start (proxy/serve.c fill_stream).
_FILLER = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"


def sink_bytes(n):
    """The exact body `bordergate sink` sends for /__sink/bytes/N (small N)."""
    block = (_FILLER * (4096 // len(_FILLER) + 1))[:4096]
    return block * (n // 4096) + block[: n % 4096]


def sink_bytes_md5(n):
    block = (_FILLER * (4096 // len(_FILLER) + 1))[:4096]
    h = hashlib.md5()
    for _ in range(n // 4096):
        h.update(block)
    h.update(block[: n % 4096])
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Test PKI, generated once per test process with the openssl CLI


class _Pki:
    """
    A test CA and server certificates, made with `openssl` at test time:
      ca            the CA the proxy is told to trust (ca.pem)
      good          api.partner.example + IP SAN 127.0.0.1, signed by ca
      wrongname     wrong.partner.example only, signed by ca
      expired       api.partner.example + 127.0.0.1, signed by ca, expired 2020
      untrusted     api.partner.example + 127.0.0.1, signed by another CA
    Each server entry is a (cert, key) pair of paths.
    """

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bgtest-pki-")
        if not KEEP:
            atexit.register(shutil.rmtree, self.dir, True)
        d = self.dir
        self.ca = os.path.join(d, "ca.pem")
        self._ca("ca", "bordergate test CA")
        self._ca("otherca", "some other CA")
        self.certs = {
            "good": self._leaf("good", "ca", "api.partner.example", "DNS:api.partner.example,IP:127.0.0.1"),
            "wrongname": self._leaf("wrongname", "ca", "wrong.partner.example", "DNS:wrong.partner.example"),
            "untrusted": self._leaf("untrusted", "otherca", "api.partner.example",
                                    "DNS:api.partner.example,IP:127.0.0.1"),
            "expired": self._leaf("expired", "ca", "api.partner.example",
                                  "DNS:api.partner.example,IP:127.0.0.1", expired=True),
        }

    def _run(self, *argv):
        r = subprocess.run(["openssl"] + list(argv), cwd=self.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("openssl %s failed:\n%s" % (" ".join(argv), r.stdout))

    def _ca(self, name, cn):
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "3650",
                  "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, name, ca, cn, san, expired=False):
        d = self.dir
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" % san)
        self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        if not expired:
            self._run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                      "-CAcreateserial", "-out", name + ".pem", "-days", "30", "-extfile", ext)
        else:
            # `openssl x509` (3.0) cannot back-date; `openssl ca` can.
            cadir = os.path.join(d, "ca-db")
            os.makedirs(cadir, exist_ok=True)
            open(os.path.join(cadir, "index.txt"), "w").close()
            with open(os.path.join(cadir, "serial"), "w") as f:
                f.write("1000\n")
            cnf = os.path.join(d, "ca.cnf")
            with open(cnf, "w") as f:
                f.write("[ca]\ndefault_ca=CA_default\n[CA_default]\n"
                        "dir=%s\ndatabase=$dir/index.txt\nnew_certs_dir=$dir\nserial=$dir/serial\n"
                        "certificate=%s\nprivate_key=%s\ndefault_md=sha256\npolicy=pol\n"
                        "unique_subject=no\n[pol]\ncommonName=supplied\n"
                        % (cadir, os.path.join(d, ca + ".pem"), os.path.join(d, ca + ".key")))
            self._run("ca", "-batch", "-config", cnf, "-notext", "-startdate", "20200101000000Z",
                      "-enddate", "20200201000000Z", "-in", name + ".csr", "-out", name + ".pem",
                      "-extfile", ext)
        return (os.path.join(d, name + ".pem"), os.path.join(d, name + ".key"))


_pki = None
_pki_lock = threading.Lock()


def pki():
    global _pki
    with _pki_lock:
        if _pki is None:
            _pki = _Pki()
        return _pki


# ---------------------------------------------------------------------------
# Processes


class Process:
    """A child process whose stdout+stderr go to LOG_PATH."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                  stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM, wait, then SIGKILL. Returns the exit code (-9 if killed)."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout if timeout is not None else t(30))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = -9
        self._log.close()
        return rc

    def kill(self):
        if self.alive():
            self.p.kill()
        self.p.wait()
        if not self._log.closed:
            self._log.close()


def rss_kb(pid, field="VmRSS"):
    """VmRSS (or VmHWM...) of PID in kB, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("%s not in /proc/%d/status" % (field, pid))


class Record:
    """One request as `bordergate sink` recorded it."""

    def __init__(self, d):
        self.raw = d
        self.method = d["method"]
        self.target = d["target"]
        self.headers = [(k, v) for k, v in d["headers"]]
        if "body_hex" in d:
            self.body = bytes.fromhex(d["body_hex"])
        else:
            self.body = d.get("body", "").encode("utf-8")
        self.body_bytes = d["body_bytes"]

    def header_values(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def header(self, name):
        """The single value of NAME; None when absent; fails when repeated."""
        vs = self.header_values(name)
        if len(vs) > 1:
            raise AssertionError("header %s appears %d times: %r" % (name, len(vs), vs))
        return vs[0] if vs else None

    def header_names(self):
        return [k.lower() for k, _ in self.headers]

    def __repr__(self):
        return "Record(%s %s %r)" % (self.method, self.target, self.headers)


class Sink:
    """`bordergate sink` on HOST (127.0.0.x), optionally TLS with a test cert."""

    def __init__(self, tc, name, host="127.0.0.1", tls=None):
        self.name = name
        self.host = host
        self.tls = tls
        d = tc.tmpdir
        self.record_path = os.path.join(d, "sink-%s.jsonl" % name)
        port_file = os.path.join(d, "sink-%s.port" % name)
        argv = [BIN, "sink", "--listen", "%s:0" % host, "--port-file", port_file,
                "--record", self.record_path, "--name", name]
        if tls is not None:
            cert, key = pki().certs[tls]
            argv += ["--tls-cert", cert, "--tls-key", key]
        self.proc = Process(argv, os.path.join(d, "sink-%s.log" % name))
        tc.addCleanup(self._cleanup, tc)

        def ready():
            if not self.proc.alive():
                raise AssertionError("sink %s exited (%s):\n%s" % (name, self.proc.p.returncode,
                                                                  self.proc.log_tail()))
            return os.path.exists(port_file)

        wait_for(ready, t(20), "sink %s to listen" % name)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        scheme = "https" if tls else "http"
        self.origin = "%s://%s:%d" % (scheme, host, self.port)

    def _cleanup(self, tc):
        rc = self.proc.stop()
        if rc != 0:
            raise AssertionError("sink %s exited with %s:\n%s" % (self.name, rc, self.proc.log_tail()))

    def records(self):
        try:
            with open(self.record_path) as f:
                return [Record(json.loads(line)) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_records(self, n, timeout=None):
        return wait_for(lambda: len(self.records()) >= n and self.records(),
                        timeout or t(20), "%d request(s) at sink %s" % (n, self.name))


class ScriptedUpstream:
    """
    An upstream that answers with exact bytes, for response shapes the sink
    does not make (interim 1xx, close-delimited bodies, trailers, broken
    framing). HANDLER(conn, n) runs in a thread for the N-th accepted
    connection (0-based); conn.read_request() returns (head, body) of the
    next request, conn.send(bytes) writes. Every request head received is
    appended to .heads.
    """

    def __init__(self, tc, handler, host="127.0.0.1"):
        self.handler = handler
        self.heads = []
        self.accepted = 0
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.origin = "http://%s:%d" % (host, self.port)
        self._conns = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        tc.addCleanup(self.close)

    def _accept_loop(self):
        while not self._stop:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            n = self.accepted
            self.accepted += 1
            c = _ServerConn(self, s)
            self._conns.append(c)
            threading.Thread(target=self._run, args=(c, n), daemon=True).start()

    def _run(self, c, n):
        try:
            self.handler(c, n)
        except (OSError, EOFError):
            pass
        finally:
            c.close()

    def close(self):
        self._stop = True
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()
        for c in self._conns:
            c.close()


class _ServerConn:
    def __init__(self, up, sock):
        self.up = up
        self.sock = sock
        self.sock.settimeout(t(30))
        self.buf = b""

    def read_request(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        n = int(m.group(1)) if m else 0
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        self.up.heads.append(head.decode("latin-1"))
        return head.decode("latin-1"), body

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode("latin-1"))

    def wait_closed(self, timeout):
        """Wait until the proxy closes this connection; True if it did."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def route(rid, upstream, host=None, prefix=None, allow_private=True, **extra):
    """A route for the config. Loopback sinks need allow_private_addresses."""
    m = {}
    if host is not None:
        m["host"] = host
    if prefix is not None:
        m["path_prefix"] = prefix
    r = {"id": rid, "match": m, "upstream": upstream}
    if allow_private:
        r["allow_private_addresses"] = True
    r.update(extra)
    return r


class Proxy:
    """`bordergate run` with a config dict; listen and admin on free ports."""

    def __init__(self, tc, config, name="proxy", env=None):
        self.tc = tc
        self.name = name
        self.exit_checked = False
        self.config_path = os.path.join(tc.tmpdir, "%s.json" % name)
        self.log_path = os.path.join(tc.tmpdir, "%s.log" % name)
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        orig = dict(config)
        orig.setdefault("log", {"level": "info"})
        self.access_log = None
        if ACCESS_LOG and "access_log" not in orig:
            self.access_log = os.path.join(tc.tmpdir, "%s.access.log" % name)
            orig["access_log"] = {"path": self.access_log}
        last = None
        for _attempt in range(3):
            self.port = free_port()
            self.admin_port = free_port()
            cfg = dict(orig)
            cfg["listen"] = orig.get("listen") or "127.0.0.1:%d" % self.port
            if "listen" in orig:
                first = cfg["listen"] if isinstance(cfg["listen"], str) else cfg["listen"][0]
                self.port = int(first.rsplit(":", 1)[1])
            cfg["admin"] = {"listen": "127.0.0.1:%d" % self.admin_port}
            self.write_config(cfg)
            argv = [BIN, "run", "--config", self.config_path]
            if VALGRIND:
                argv = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                        "--error-exitcode=99", "--track-fds=no", "-q"] + argv
            self.proc = Process(argv, self.log_path, env=self.env)
            self.pid = self.proc.pid
            try:
                wait_for(self._ready, t(30), "proxy to answer /healthz")
                break
            except _BindFailed as e:
                last = e
                continue
        else:
            raise AssertionError("proxy could not bind: %s" % last)
        tc.addCleanup(self._cleanup)

    def write_config(self, cfg):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            if isinstance(cfg, str):
                f.write(cfg)
            else:
                json.dump(cfg, f, indent=2)
        os.rename(tmp, self.config_path)
        if not isinstance(cfg, str):
            self.config = cfg

    def _ready(self):
        if not self.proc.alive():
            log = self.proc.log()
            self.proc.kill()
            if "cannot listen" in log or "Address already in use" in log:
                raise _BindFailed(log)
            raise AssertionError("proxy exited (%s) at start:\n%s" % (self.proc.p.returncode, log))
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=t(2))
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            c.close()
            return r.status == 200
        except OSError:
            return False

    def _cleanup(self):
        if self.exit_checked:  # the test stopped it and looked at the exit code
            self.proc.kill()
            return
        requests_seen = None
        if self.access_log is not None and self.alive():
            try:
                requests_seen = self.stats()["requests"]
            except (OSError, ValueError, KeyError):
                pass
        rc = self._stop()
        if rc != 0:
            raise AssertionError("proxy exited with %s after SIGTERM (sanitizer/valgrind error or crash):\n%s"
                                 % (rc, self.proc.log_tail(80)))
        if requests_seen is not None:
            self.check_access_log(requests_seen)

    def check_access_log(self, requests_seen):
        """The access log (on unless BG_ACCESS_LOG=0): one valid line per request, each id once."""
        lines = []
        if os.path.exists(self.access_log):
            with open(self.access_log, encoding="utf-8") as f:
                lines = [json.loads(ln) for ln in f if ln.strip()]
        ids = [ln["id"] for ln in lines]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise AssertionError("access log: request ids logged more than once: %s" % dup[:5])
        if len(lines) < requests_seen:
            raise AssertionError("access log: %d lines for %d requests" % (len(lines), requests_seen))

    def stop(self, timeout=None):
        """SIGTERM and wait; the exit code is the caller's to check."""
        self.exit_checked = True
        return self._stop(timeout)

    def wait(self, timeout=None):
        """Wait for an exit the test caused (e.g. a SIGTERM it sent)."""
        self.exit_checked = True
        return self.proc.p.wait(timeout if timeout is not None else t(40))

    def _stop(self, timeout=None):
        if self.proc.p.returncode is not None:
            self.proc.kill()
            return self.proc.p.returncode
        return self.proc.stop(timeout if timeout is not None else t(40))

    def alive(self):
        return self.proc.alive()

    def log(self):
        return self.proc.log()

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def admin(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=t(10))
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read()
            return r.status, json.loads(body)
        finally:
            c.close()

    def healthz(self):
        status, doc = self.admin("GET", "/healthz")
        doc["_status"] = status
        return doc

    def stats(self):
        return self.admin("GET", "/stats")[1]

    def reload(self, cfg, expect_ok=True):
        """Write CFG (dict or raw text), send SIGHUP, wait until it is taken
        (generation+1) or refused (reloads_failed+1). Returns /healthz."""
        before = self.healthz()
        self.write_config(cfg)
        self.proc.signal(signal.SIGHUP)
        if expect_ok:
            return wait_for(lambda: (lambda h: h if h["config_generation"] == before["config_generation"] + 1
                                     else None)(self.healthz()), t(20), "reload to be applied")
        return wait_for(lambda: (lambda h: h if h["reloads_failed"] == before["reloads_failed"] + 1
                                 else None)(self.healthz()), t(20), "reload to be refused")

    def rss_kb(self, field="VmRSS"):
        return rss_kb(self.pid, field)


class _BindFailed(Exception):
    pass


# Loopback upstreams are pinned to mainland China (domestic) unless a test
# passes its own "geo": domestic transfers are forwarded unchanged, so the
# proxy-core tests see the HTTP behaviour and not the residency policy
# (which inspects and may block what goes abroad, "unknown" included).
DOMESTIC_LOOPBACK = {"overrides": {"cidrs": {"127.0.0.0/8": "CN", "::1/128": "CN"}}}


def make_config(routes, limits=None, timeouts=None, **extra):
    cfg = {"version": 1, "workers": 1, "routes": routes,
           "geo": json.loads(json.dumps(DOMESTIC_LOOPBACK))}
    if limits:
        cfg["limits"] = limits
    if timeouts:
        cfg["timeouts"] = timeouts
    cfg.update(extra)
    return cfg


# ---------------------------------------------------------------------------
# Raw HTTP over a socket: exact bytes out, parsed responses back


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order
        self.body = body
        self.raw_head = raw_head

    def header_values(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def header(self, name):
        vs = self.header_values(name)
        if len(vs) > 1:
            raise AssertionError("response header %s appears %d times" % (name, len(vs)))
        return vs[0] if vs else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Response(%d %s %r %r)" % (self.status, self.reason, self.headers, self.body[:200])


class Raw:
    """A client socket that sends exact bytes and parses what comes back."""

    def __init__(self, port, host="127.0.0.1", timeout=None):
        self.sock = socket.create_connection((host, port), timeout=timeout or t(30))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise EOFError("connection closed by peer")
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            # What arrived before the reset stays in self.buf, parseable.
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed by peer")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n\r\n")
        head, self.buf = self.buf[:i + 4], self.buf[i + 4:]
        lines = head[:-4].decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/(1\.[01]) (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k, v.strip()))
        return m.group(1), int(m.group(2)), m.group(3), headers, head

    def read_response(self, head_request=False, interim=False):
        """The next response. 1xx interim responses are skipped, or returned
        when INTERIM is true. Bodies framed by Content-Length, chunked (the
        body is returned de-chunked, .chunked set) or by close."""
        while True:
            version, status, reason, headers, head = self.read_head()
            r = Response(version, status, reason, headers, b"", head)
            if 100 <= status < 200:
                if interim:
                    return r
                continue
            break
        r.chunked = False
        te = r.header_values("transfer-encoding")
        cl = r.header_values("content-length")
        if head_request or status in (204, 304):
            return r
        if te:
            r.chunked = True
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                body += self._take(size)
                if self._take(2) != b"\r\n":
                    raise AssertionError("bad chunk framing")
            r.body = body
        elif cl:
            r.body = self._take(int(cl[0]))
        else:
            r.body = self.read_until_close()
        return r

    def read_until_close(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        except ConnectionResetError:
            self.eof = True
        out, self.buf = self.buf, b""
        return out

    def closed_within(self, seconds):
        """True when the peer closes (EOF or reset) within SECONDS with no
        further bytes; fails if bytes arrive."""
        self.sock.settimeout(seconds)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.eof = True
                    return True
                self.buf += chunk
                raise AssertionError("unexpected bytes: %r" % self.buf[:200])
        except ConnectionResetError:
            self.eof = True
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(t(30))

    def silent_for(self, seconds):
        """True when nothing at all (no byte, no close) arrives for SECONDS."""
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
            self.buf += chunk
            if not chunk:
                self.eof = True
            return False
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(t(30))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# The TestCase base


class TestCase(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        if not os.access(BIN, os.X_OK):
            self.fail("BG_BIN=%s is not an executable bordergate binary" % BIN)
        self.tmpdir = tempfile.mkdtemp(prefix="bgtest-%s-" % self._testMethodName)
        if KEEP:
            sys.stderr.write("\n[bgtest] %s: %s\n" % (self.id(), self.tmpdir))
        else:
            self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self._sessions = []

    # -- pieces ---------------------------------------------------------

    def sink(self, name="up", host="127.0.0.1", tls=None):
        return Sink(self, name, host=host, tls=tls)

    def proxy(self, config=None, routes=None, env=None, name="proxy", **kw):
        if config is None:
            config = make_config(routes or [], **kw)
        return Proxy(self, config, name=name, env=env)

    def small_tmpfs(self, size="2m"):
        """A tmpfs of SIZE mounted in the test's directory (a disk that fills
        up), unmounted at cleanup; skips the test where mounting needs a
        privilege the run does not have."""
        mnt = os.path.join(self.tmpdir, "mnt")
        os.mkdir(mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a %s tmpfs (needs root or CAP_SYS_ADMIN): %s" % (size, p.stdout.strip()))
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        return mnt

    def raw(self, px_or_port, host="127.0.0.1"):
        port = px_or_port.port if isinstance(px_or_port, Proxy) else px_or_port
        r = Raw(port, host=host)
        self.addCleanup(r.close)
        return r

    def session(self):
        s = requests.Session()
        s.trust_env = False  # never an http_proxy from the environment
        self.addCleanup(s.close)
        return s

    def request(self, px, method, path, host=None, headers=None, session=None, **kw):
        h = dict(headers or {})
        if host is not None:
            h["Host"] = host
        s = session or self.session()
        kw.setdefault("timeout", t(60))
        return s.request(method, px.url(path), headers=h, **kw)

    def get(self, px, path, host=None, **kw):
        return self.request(px, "GET", path, host=host, **kw)

    def post(self, px, path, data, host=None, **kw):
        return self.request(px, "POST", path, host=host, data=data, **kw)

    def curl(self, *args, check=True):
        r = subprocess.run(["curl", "--noproxy", "*", "-sS"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=t(60))
        if check and r.returncode != 0:
            self.fail("curl %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.decode()))
        return r

    # -- assertions -----------------------------------------------------

    def assertRequestId(self, resp):
        """X-Bordergate-Id is there, once, 32 lowercase hex characters."""
        rid = _hdr(resp, "x-bordergate-id")
        self.assertIsNotNone(rid, "no X-Bordergate-Id in %r" % (resp,))
        self.assertRegex(rid, HEX32)
        return rid

    def assertRefusal(self, resp, status, error_re=None, head=False):
        """A refusal: exactly STATUS, a JSON body {"error": ..., "request_id": ...}
        whose request_id is the X-Bordergate-Id header."""
        st = resp.status_code if isinstance(resp, requests.Response) else resp.status
        body = resp.content if isinstance(resp, requests.Response) else resp.body
        self.assertEqual(st, status, "expected %d, got %r" % (status, resp))
        rid = self.assertRequestId(resp)
        self.assertEqual(_hdr(resp, "content-type"), "application/json")
        if head:
            self.assertEqual(body, b"")
            return None
        self.assertEqual(int(_hdr(resp, "content-length")), len(body))
        doc = json.loads(body)
        self.assertEqual(sorted(doc), ["error", "request_id"], doc)
        self.assertIsInstance(doc["error"], str)
        self.assertGreater(len(doc["error"]), 0)
        self.assertEqual(doc["request_id"], rid)
        if error_re is not None:
            self.assertRegex(doc["error"], error_re)
        return doc

    def assertNothingForwarded(self, *sinks):
        for s in sinks:
            self.assertEqual(s.records(), [], "sink %s received requests" % s.name)


def _hdr(resp, name):
    if isinstance(resp, requests.Response):
        return resp.headers.get(name)
    return resp.header(name)


def main():
    unittest.main(verbosity=int(os.environ.get("BG_TEST_VERBOSITY", "2")))
