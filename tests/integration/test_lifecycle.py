"""The daemon's lifecycle, as an orchestrator and an SRE see it (issue 17).

  * SIGTERM closes the listeners at once: a new client is refused
    (ECONNREFUSED) within 100 ms while the request in flight completes;
    timeouts.drain_delay_ms keeps accepting for a while (Connection: close)
    and timeouts.drain_ms bounds the wait for requests in flight;
  * a second bordergate on the same listen address exits 1 with one line
    instead of sharing the port through SO_REUSEPORT; `run --takeover`
    hands over only from a process of the same policy version;
  * systemd's notify protocol (a stub NOTIFY_SOCKET): READY=1 once the port
    accepts, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around SIGHUP,
    STOPPING=1 on SIGTERM, WATCHDOG=1 when WATCHDOG_USEC asks; journald
    priority prefixes when stderr is the journal;
  * a full audit disk: refusals are logged once then counted, and /readyz
    recovers within a second of space returning without any traffic;
  * `bordergate probe URL`: the container health check.
"""
import errno
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import bgtest
from bgtest import route, t
from test_audit import AuditTestBase, KEY_ENV, body, phone


def connect_result(port):
    """'refused', 'reset' or 'accepted' for a fresh connection to PORT."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(t(2))
    try:
        s.connect(("127.0.0.1", port))
        return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "reset" if e.errno in (errno.ECONNRESET, errno.EPIPE) else "error %s" % e
    finally:
        s.close()


def slow_upstream(tc):
    """An upstream that answers "ok" only once .release is set."""
    release = threading.Event()

    def handler(conn, n):
        conn.read_request()
        release.wait(t(30))
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    up = bgtest.ScriptedUpstream(tc, handler)
    up.release = release
    return up


def request_in_background(px, path, host):
    result = {}

    def call():
        try:
            r = bgtest.Raw(px.port, timeout=t(30))
            r.send(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
            resp = r.read_response()
            result["status"], result["body"] = resp.status, resp.body
            r.close()
        except Exception as e:  # reported by the assertion on RESULT
            result["error"] = repr(e)

    th = threading.Thread(target=call)
    th.start()
    return th, result


class ListenerLifecycleTest(bgtest.TestCase):

    def test_sigterm_refuses_new_clients_at_once_and_finishes_the_request_in_flight(self):
        up = slow_upstream(self)
        px = self.proxy(bgtest.make_config([route("slow", up.origin, host="slow.example")]))
        th, result = request_in_background(px, "/slow", "slow.example")
        bgtest.wait_for(lambda: up.heads, t(10), "the request to reach the upstream")

        t0 = time.monotonic()
        px.proc.signal(signal.SIGTERM)
        seen = []
        while time.monotonic() - t0 < t(2):
            r = connect_result(px.port)
            seen.append(r)
            if r == "refused":
                break
            time.sleep(0.002)
        refused_after = time.monotonic() - t0
        self.assertEqual(seen[-1], "refused", "new clients are not refused after SIGTERM: %s" % seen[-5:])
        self.assertLess(refused_after, t(0.1), "refused only after %.3f s" % refused_after)
        # Still refused while the request in flight is drained.
        time.sleep(0.2)
        self.assertEqual(connect_result(px.port), "refused")
        self.assertTrue(px.alive(), "the process must wait for the request in flight")

        up.release.set()
        th.join(t(20))
        self.assertEqual((result.get("status"), result.get("body")), (200, b"ok"), result)
        self.assertEqual(px.wait(), 0)

    def test_drain_delay_keeps_accepting_with_connection_close_then_refuses(self):
        sink = self.sink("cn")
        px = self.proxy(bgtest.make_config([route("cn", sink.origin, host="cn.example")],
                                           timeouts={"drain_delay_ms": 1500}))
        t0 = time.monotonic()
        px.proc.signal(signal.SIGTERM)
        # /readyz turns 503 at once (the load balancer stops sending) ...
        bgtest.wait_for(lambda: px.admin("GET", "/readyz")[0] == 503, t(1), "/readyz 503")
        # ... but a client that still arrives during the delay is served,
        # told to close its connection.
        raw = self.raw(px)
        raw.send(b"GET /late HTTP/1.1\r\nHost: cn.example\r\n\r\n")
        resp = raw.read_response()
        self.assertLess(time.monotonic() - t0, 1.5, "the test was too slow to probe the delay")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Connection"), "close")
        self.assertEqual(raw.read_until_close(), b"")
        # After the delay the listeners close.
        bgtest.wait_for(lambda: connect_result(px.port) == "refused", t(3), "refusal after the delay")
        self.assertGreaterEqual(time.monotonic() - t0, 1.4, "the listeners closed before drain_delay_ms")
        self.assertEqual(px.wait(), 0)

    def test_drain_timeout_bounds_the_wait_for_requests_in_flight(self):
        up = slow_upstream(self)
        px = self.proxy(bgtest.make_config([route("slow", up.origin, host="slow.example")],
                                           timeouts={"drain_ms": 400}))
        th, result = request_in_background(px, "/never", "slow.example")
        bgtest.wait_for(lambda: up.heads, t(10), "the request to reach the upstream")
        t0 = time.monotonic()
        px.proc.signal(signal.SIGTERM)
        self.assertEqual(px.wait(t(5)), 0)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.35, "exited before timeouts.drain_ms")
        self.assertLess(took, t(3), "timeouts.drain_ms (400) did not bound the drain")
        th.join(t(10))
        self.assertNotEqual(result.get("status"), 200)
        self.assertIn("drain deadline (timeouts.drain_ms 400)", px.log())
        up.release.set()


class CoBindingTest(AuditTestBase):
    """One listen address, one policy: no silent sharing of the port."""

    def run_second(self, cfg, name, extra=(), timeout=None):
        """Start `bordergate run` on CFG (dict) with EXTRA arguments; returns
        the Process (log in NAME.log)."""
        path = os.path.join(self.tmpdir, "%s.json" % name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ)
        env.update(KEY_ENV)
        proc = bgtest.Process([bgtest.BIN, "run", "--config", path] + list(extra),
                              os.path.join(self.tmpdir, "%s.log" % name), env=env)
        self.addCleanup(proc.kill)
        return proc

    def same_address(self, px, audit_dir, policy_version):
        cfg = self.config(self.up, audit_dir)
        cfg["policy"]["version"] = policy_version
        cfg["listen"] = "127.0.0.1:%d" % px.port
        cfg["admin"] = {"listen": "127.0.0.1:%d" % bgtest.free_port()}
        return cfg

    def test_a_second_daemon_on_the_same_address_exits_1_and_takes_no_traffic(self):
        px = self.start()
        # Another policy, its own audit directory: nothing else stops it.
        other = self.run_second(self.same_address(px, os.path.join(self.tmpdir, "audit-2"), "other-9"),
                                "second")
        self.assertEqual(other.p.wait(t(20)), 1)
        lines = [l for l in other.log().splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^bordergate: cannot listen on 127\.0\.0\.1:%d: the address is in use"
                         % px.port)
        self.assertIn("--takeover", lines[0])
        for i in range(20):
            self.assertEqual(self.send(px, "/after/%d" % i, body("u-c-%d" % i, phone(300 + i))).status_code, 200)
        self.assertEqual(px.stats()["requests"], 20, "every request went to the first daemon")

    def test_takeover_refused_for_another_policy_version(self):
        px = self.start()
        other = self.run_second(self.same_address(px, self.audit_dir, "audit-test-2"), "upgrade",
                                extra=["--takeover"])
        self.assertEqual(other.p.wait(t(20)), 1)
        self.assertRegex(other.log(), r"--takeover refused: the running process \(pid %d\) enforces policy "
                         r"version audit-test-1, this configuration audit-test-2" % px.pid)
        self.assertTrue(px.alive())
        self.assertEqual(self.send(px, "/still", body("u-c-s", phone(399))).status_code, 200)

    def test_takeover_never_signals_the_pid_of_a_stale_run_state_file(self):
        # A crash left the run-state file; its pid now belongs to another
        # process, and the port is held by something else entirely.
        bystander = subprocess.Popen(["sleep", "60"])
        self.addCleanup(lambda: (bystander.kill(), bystander.wait()))
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        audit_dir = os.path.join(self.tmpdir, "audit-stale")
        os.makedirs(audit_dir)
        with open(os.path.join(audit_dir, ".audit.run.json"), "w") as f:
            json.dump({"pid": bystander.pid, "policy_version": "audit-test-1", "drain_ms": 1000}, f)
        self.up = self.sink("us", host="127.0.0.2")
        cfg = self.config(self.up, audit_dir)
        cfg["listen"] = "127.0.0.1:%d" % holder.getsockname()[1]
        proc = self.run_second(cfg, "stale", extra=["--takeover"])
        self.assertEqual(proc.p.wait(t(20)), 1)
        self.assertIn("not by a bordergate writing to %s" % audit_dir, proc.log())
        time.sleep(0.1)
        self.assertIsNone(bystander.poll(), "an unrelated process got the signal")

    def test_takeover_with_the_same_policy_version_hands_over(self):
        px = self.start()
        self.assertEqual(self.send(px, "/before", body("u-c-b", phone(400))).status_code, 200)
        state = os.path.join(self.audit_dir, ".audit.run.json")
        with open(state) as f:
            self.assertEqual(json.load(f)["pid"], px.pid)
        cfg = self.same_address(px, self.audit_dir, "audit-test-1")
        new = self.run_second(cfg, "upgrade", extra=["--takeover"])
        self.assertEqual(px.wait(t(20)), 0, "the old process must drain and exit 0")
        admin = int(cfg["admin"]["listen"].rsplit(":", 1)[1])
        bgtest.wait_for(lambda: subprocess.run([bgtest.BIN, "probe", "http://127.0.0.1:%d/readyz" % admin],
                                               capture_output=True).returncode == 0,
                        t(20), "the new process to be ready")
        for i in range(5):
            self.assertEqual(self.send(px, "/after/%d" % i, body("u-c-a%d" % i, phone(410 + i))).status_code, 200)
        with open(state) as f:
            self.assertEqual(json.load(f)["pid"], new.pid)
        self.assertIn("take-over: listening beside pid %d" % px.pid, new.log())
        self.assertEqual(new.stop(), 0)
        self.assertFalse(os.path.exists(state), "the run-state file outlived its process")
        r = subprocess.run([bgtest.BIN, "audit", "verify", self.audit_dir], capture_output=True, text=True,
                           env=dict(os.environ, **KEY_ENV))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class NotifySocket:
    """A stub systemd: an AF_UNIX datagram socket collecting notifications."""

    def __init__(self, tc):
        self.path = os.path.join(tc.tmpdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {key: value}, extra)
        self.hook = None
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        tc.addCleanup(self.close)

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            kv = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            extra = self.hook(kv) if self.hook else None
            self.messages.append((time.monotonic(), kv, extra))

    def keys(self, key):
        return [m for m in self.messages if key in m[1]]

    def close(self):
        self._stop = True
        self.sock.close()


class SystemdTest(bgtest.TestCase):

    def test_ready_reloading_stopping_and_watchdog_through_notify_socket(self):
        ns = NotifySocket(self)
        sink = self.sink("cn")
        port_box = {}
        # When READY=1 arrives, the listen port must already accept.
        ns.hook = lambda kv: connect_result(port_box["port"]) if kv.get("READY") == "1" else None
        cfg = bgtest.make_config([route("cn", sink.origin, host="cn.example")])
        cfg["listen"] = "127.0.0.1:%d" % bgtest.free_port()
        port_box["port"] = int(cfg["listen"].rsplit(":", 1)[1])
        px = self.proxy(cfg, env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
        ready = bgtest.wait_for(lambda: ns.keys("READY"), t(5), "READY=1")
        self.assertEqual(ready[0][1]["READY"], "1")
        self.assertEqual(ready[0][2], "accepted", "READY=1 before the listen port accepts")

        # The watchdog: WATCHDOG=1 at least every half interval.
        time.sleep(1.0)
        dogs = [m[0] for m in ns.keys("WATCHDOG")]
        self.assertGreaterEqual(len(dogs), 4, "WATCHDOG=1 messages in 1 s: %d" % len(dogs))
        self.assertLessEqual(max(b - a for a, b in zip(dogs, dogs[1:])), 0.2 * bgtest.SCALE + 0.05)

        n0 = len(ns.messages)
        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        px.reload(cfg)
        after = time.clock_gettime(time.CLOCK_MONOTONIC)

        def since(n):
            return [m[1] for m in ns.messages[n:] if "WATCHDOG" not in m[1]]

        msgs = bgtest.wait_for(lambda: (lambda ms: ms if len(ms) >= 2 else None)(since(n0)), t(5),
                               "RELOADING=1 and READY=1")
        self.assertEqual(msgs[0].get("RELOADING"), "1", msgs)
        usec = int(msgs[0]["MONOTONIC_USEC"])
        self.assertTrue(before * 1e6 - 1000 <= usec <= after * 1e6 + 1000, (before, usec, after))
        self.assertEqual(msgs[1].get("READY"), "1", msgs)

        # A refused reload also ends with READY=1 (the old configuration serves).
        n1 = len(ns.messages)
        px.reload("{not json", expect_ok=False)
        msgs = bgtest.wait_for(lambda: (lambda ms: ms if len(ms) >= 2 else None)(since(n1)), t(5),
                               "RELOADING=1 and READY=1 after a refused reload")
        self.assertEqual([("RELOADING" in m, "READY" in m) for m in msgs[:2]], [(True, False), (False, True)])

        px.proc.signal(signal.SIGTERM)
        bgtest.wait_for(lambda: ns.keys("STOPPING"), t(5), "STOPPING=1")
        self.assertEqual(px.wait(), 0)

    def test_no_notify_socket_no_messages_and_plain_log_lines(self):
        sink = self.sink("cn")
        px = self.proxy(bgtest.make_config([route("cn", sink.origin, host="cn.example")]))
        self.assertEqual(self.get(px, "/x", host="cn.example").status_code, 200)
        self.assertEqual(px.stop(), 0)
        for line in px.log().splitlines():
            self.assertFalse(line.startswith("<"), line)

    def test_journald_priority_prefixes_when_stderr_is_the_journal(self):
        sink = self.sink("cn")
        # stderr goes to NAME.log: make it "the journal stream" by its numbers.
        log_path = os.path.join(self.tmpdir, "journal.log")
        open(log_path, "ab").close()
        st = os.stat(log_path)
        px = self.proxy(bgtest.make_config([route("cn", sink.origin, host="cn.example")],
                                           log={"level": "info", "format": "text"}),
                        name="journal", env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.get(px, "/nowhere", host="unrouted.example")
        px.proc.signal(signal.SIGHUP)  # a reload of an unchanged file: info lines
        self.assertEqual(px.stop(), 0)
        lines = [l for l in px.log().splitlines() if l.strip()]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>\d{4}-", line)
        self.assertTrue(any(l.startswith("<6>") and " info " in l for l in lines))
        self.assertTrue(any(l.startswith("<4>") and " warn " in l for l in lines), lines)

    def test_journal_stream_of_another_file_is_ignored(self):
        sink = self.sink("cn")
        other = os.path.join(self.tmpdir, "other")
        open(other, "w").close()
        st = os.stat(other)
        px = self.proxy(bgtest.make_config([route("cn", sink.origin, host="cn.example")]),
                        env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.assertEqual(px.stop(), 0)
        self.assertFalse(any(l.startswith("<") for l in px.log().splitlines()))


class CredentialsTest(AuditTestBase):
    """Keys handed over by systemd's LoadCredential= (the shipped unit loads
    the key directory as credentials keys_NAME)."""

    def credential_config(self):
        self.up = self.sink("us", host="127.0.0.2")
        self.audit_dir = os.path.join(self.tmpdir, "audit")
        cfg = self.config(self.up, self.audit_dir)
        cfg["keys"] = {n: {"file": "$CREDENTIALS_DIRECTORY/keys_%s.key" % n}
                       for n in ("pseudonym", "subject", "audit")}
        creds = os.path.join(self.tmpdir, "credentials")
        os.mkdir(creds, 0o700)
        for n, v in (("pseudonym", KEY_ENV["BG_PSEUDONYM_KEY"]), ("subject", KEY_ENV["BG_SUBJECT_KEY"]),
                     ("audit", KEY_ENV["BG_AUDIT_KEY"])):
            with open(os.path.join(creds, "keys_%s.key" % n), "w") as f:
                f.write(v + "\n")
            os.chmod(os.path.join(creds, "keys_%s.key" % n), 0o400)
        return cfg, creds

    def test_key_files_under_credentials_directory(self):
        cfg, creds = self.credential_config()
        px = self.proxy(cfg, env={"CREDENTIALS_DIRECTORY": creds})
        self.assertIn("signed checkpoints", px.log())
        self.assertEqual(self.send(px, "/c", body("u-cred", phone(800))).status_code, 200)
        self.assertEqual(px.stop(), 0)
        r = subprocess.run([bgtest.BIN, "audit", "verify", "--key", os.path.join(creds, "keys_audit.key"),
                            self.audit_dir], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_without_credentials_directory_check_names_the_variable(self):
        cfg, _creds = self.credential_config()
        path = os.path.join(self.tmpdir, "cred.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
        r = subprocess.run([bgtest.BIN, "check", "--config", path], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("$CREDENTIALS_DIRECTORY/keys_pseudonym.key", r.stdout + r.stderr)
        self.assertIn("LoadCredential=", r.stdout + r.stderr)


class FullDiskTest(AuditTestBase):

    def test_refusals_logged_once_then_counted_and_readyz_recovers_without_traffic(self):
        mnt = self.small_tmpfs()
        px = self.start(audit_dir=os.path.join(mnt, "audit"))
        self.assertEqual(self.send(px, "/ok", body("u-q-0", phone(500))).status_code, 200)
        lines_before = len(px.log().splitlines())
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        refused = 0
        for i in range(1, 80):
            if self.send(px, "/full/%d" % i, body("u-q-%d" % i, phone(500 + i))).status_code == 503:
                refused += 1
        self.assertGreaterEqual(refused, 50, "the full disk refused only %d of 79" % refused)
        log = px.log()
        added = log.splitlines()[lines_before:]
        # Today's cost of a full disk: the writer's error, the first
        # refusal's reason and its 503 line (a refusal record that cannot
        # be queued may add one); the other refusals are only counted.
        self.assertLessEqual(len(added), 4, "\n".join(added))
        self.assertEqual(len(re.findall(r"decision record not durable", log)), 1,
                         "one line for the first refusal, the rest counted")
        self.assertEqual(len(re.findall(r"refused: 503", log)), 1)
        self.assertLessEqual(len(re.findall(r"refusal record not queued", log)), 1)
        status, doc = px.admin("GET", "/readyz")
        self.assertEqual(status, 503)
        # No flapping: the state holds while the disk stays full.
        flips = set()
        for _ in range(20):
            flips.add(px.admin("GET", "/readyz")[0])
            time.sleep(0.02)
        self.assertEqual(flips, {503})

        os.unlink(filler)
        t0 = time.monotonic()
        bgtest.wait_for(lambda: px.admin("GET", "/readyz")[0] == 200, t(1.0),
                        "/readyz to recover without traffic", interval=0.02)
        self.assertLess(time.monotonic() - t0, t(1.0))
        self.assertIn("writable again (probe)", px.log())
        self.assertEqual(self.send(px, "/again", body("u-q-again", phone(599))).status_code, 200)
        # The refusals left out are reported as counts, once the 10 s
        # since the first line have passed, even with no further refusal.
        m = bgtest.wait_for(lambda: re.search(r"transfers refused: decision record not durable: (\d+) more "
                                              r"in the last 10 s", px.log()), t(12), "the count line")
        self.assertEqual(int(m.group(1)), refused - 1)
        m = re.search(r"the audit log cannot record this transfer; it was not forwarded: (\d+) more", px.log())
        self.assertIsNotNone(m, "the 503 lines' count")
        self.assertEqual(int(m.group(1)), refused - 1)


class ProbeTest(bgtest.TestCase):

    def probe(self, *args):
        return subprocess.run([bgtest.BIN, "probe"] + list(args), capture_output=True, text=True,
                              timeout=t(20))

    def test_exit_codes_follow_the_status(self):
        sink = self.sink("cn")
        px = self.proxy(bgtest.make_config([route("cn", sink.origin, host="cn.example")]))
        base = "http://127.0.0.1:%d" % px.admin_port
        self.assertEqual(self.probe(base + "/healthz").returncode, 0)
        self.assertEqual(self.probe(base + "/readyz").returncode, 0)
        r = self.probe(base + "/nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("status 404", r.stderr)
        r = self.probe("http://127.0.0.1:%d/healthz" % bgtest.free_port())
        self.assertEqual(r.returncode, 1)
        self.assertIn("Connection refused", r.stderr)
        self.assertEqual(self.probe("https://127.0.0.1/").returncode, 2)
        self.assertEqual(self.probe().returncode, 2)
        self.assertEqual(self.probe("--help").returncode, 0)

    def test_timeout_on_a_silent_server(self):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(srv.close)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        t0 = time.monotonic()
        r = self.probe("--timeout", "300", "http://127.0.0.1:%d/healthz" % srv.getsockname()[1])
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.monotonic() - t0, t(3))


class ContainerImageTest(bgtest.TestCase):
    """The image's binary: stripped, with its debug information split off.
    Docker cannot build here; the Dockerfile's own commands run on a copy
    of the built binary."""

    def test_dockerfile_strip_commands_split_the_debug_information(self):
        with open(os.path.join(bgtest.SOURCE_DIR, "deploy", "docker", "Dockerfile")) as f:
            text = re.sub(r"\\\n", " ", f.read())
        run = [l for l in text.splitlines() if l.startswith("RUN") and "--only-keep-debug" in l]
        self.assertEqual(len(run), 1)
        script = run[0][run[0].index("id=$(readelf"):]
        stage, debug = os.path.join(self.tmpdir, "stage"), os.path.join(self.tmpdir, "debug")
        os.makedirs(os.path.join(stage, "usr", "bin"))
        binary = os.path.join(stage, "usr", "bin", "bordergate")
        subprocess.run(["cp", bgtest.BIN, binary], check=True)
        script = script.replace("/stage/", stage + "/").replace("/debug/", debug + "/")
        r = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=t(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^bordergate \S+")

        def sections(path):
            out = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True,
                                 check=True).stdout
            return set(re.findall(r"\]\s+(\.\S+)", out))

        stripped = sections(binary)
        self.assertNotIn(".debug_info", stripped)
        self.assertNotIn(".symtab", stripped)
        self.assertIn(".gnu_debuglink", stripped)
        dbg = [os.path.join(dp, f) for dp, _d, fs in os.walk(debug) for f in fs]
        self.assertEqual(len(dbg), 1, dbg)
        build_id = re.search(r"Build ID: (\w+)", subprocess.run(["readelf", "-n", binary], capture_output=True,
                                                                text=True).stdout).group(1)
        self.assertTrue(dbg[0].endswith("/.build-id/%s/%s.debug" % (build_id[:2], build_id[2:])), dbg[0])
        self.assertIn(".symtab", sections(dbg[0]))
        if ".debug_info" in sections(bgtest.BIN):  # RelWithDebInfo/Debug builds
            self.assertIn(".debug_info", sections(dbg[0]))
        self.assertLess(os.path.getsize(binary), os.path.getsize(bgtest.BIN))


if __name__ == "__main__":
    bgtest.main()
