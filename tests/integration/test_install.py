#!/usr/bin/python3
"""
Install and deploy: `cmake --install` into a staging prefix (not the one the
build was configured for) and DESTDIR, then the INSTALLED binary with the
INSTALLED default configuration answers /healthz and /readyz, refuses every
request (no routes) and uses the installed country database; the systemd
unit passes `systemd-analyze verify` (with the staged paths, and the staged
man pages found by its Documentation= lines) and its offline security
review; the man pages render without a warning and name every command and
every configuration key; the Kubernetes manifests parse, their probes hit
real admin endpoints of a daemon running the ConfigMap's policy, and the
NetworkPolicy only lets the application namespace reach the gateway and
DNS; the Dockerfile is read and checked against deps.sh and the libraries
the binary links; the installed binary is hardened (PIE, full RELRO, stack
protector, _FORTIFY_SOURCE), read with readelf.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import BIN, SOURCE_DIR, t  # noqa: E402

BUILD_DIR = os.environ.get("BG_BUILD_DIR") or os.path.dirname(BIN)
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
STAGE = None  # set up once: cmake --install --prefix STAGE


def setUpModule():
    global STAGE, _STAGE_ROOT
    _STAGE_ROOT = tempfile.mkdtemp(prefix="bgtest-install-")
    STAGE = os.path.join(_STAGE_ROOT, "prefix")
    r = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", STAGE],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(120))
    if r.returncode != 0:
        raise AssertionError("cmake --install failed:\n" + r.stdout.decode())


def tearDownModule():
    if not bgtest.KEEP:
        shutil.rmtree(_STAGE_ROOT, True)


def configured_prefix():
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", f.read(), re.M)
    return m.group(1)


def staged(*parts):
    return os.path.join(STAGE, *parts)


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=t(10)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def admin_port(cfg):
    return int(cfg["admin"]["listen"].rsplit(":", 1)[1])


def listen_port(cfg):
    listen = cfg["listen"] if isinstance(cfg["listen"], str) else cfg["listen"][0]
    return int(listen.rsplit(":", 1)[1])


def render(page):
    """The page as plain text (mandoc: no hyphenation to break key names)."""
    out = subprocess.run(["mandoc", "-T", "utf8", page], stdout=subprocess.PIPE, check=True).stdout
    return re.sub(r".\x08", "", out.decode())


def schema_keys():
    with open(os.path.join(SOURCE_DIR, "config", "bordergate.schema.json")) as f:
        schema = json.load(f)
    keys = set()

    def walk(o):
        if not isinstance(o, dict):
            return
        for k, v in (o.get("properties") or {}).items():
            keys.add(k)
            walk(v)
        for kk in ("items", "additionalProperties"):
            walk(o.get(kk))
        for kk in ("oneOf", "anyOf", "allOf"):
            for x in o.get(kk) or []:
                walk(x)
        for defs in (o.get("$defs") or {}, o.get("definitions") or {}):
            for v in defs.values():
                walk(v)
    walk(schema)
    return keys


def load_k8s():
    docs = {}
    for path in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                docs.setdefault(d["kind"], []).append((os.path.basename(path), d))
    return docs


class Daemon:
    """The installed binary run on CFG (a dict) in TMPDIR; stopped by the test."""

    def __init__(self, tc, cfg, name):
        self.cfg = cfg
        self.path = os.path.join(tc.tmpdir, name + ".json")
        for _attempt in range(3):
            cfg["listen"] = "127.0.0.1:%d" % bgtest.free_port()
            cfg["admin"]["listen"] = "127.0.0.1:%d" % bgtest.free_port()
            with open(self.path, "w") as f:
                json.dump(cfg, f, indent=2)
            self.proc = bgtest.Process([staged("bin", "bordergate"), "run", "--config", self.path],
                                       os.path.join(tc.tmpdir, name + ".log"), cwd=tc.tmpdir)
            tc.addCleanup(self.proc.kill)
            try:
                bgtest.wait_for(self._up, t(30), "the installed bordergate to answer /healthz")
                return
            except _Bind:
                continue
        raise AssertionError("could not bind")

    def _up(self):
        if not self.proc.alive():
            log = self.proc.log()
            if "cannot listen" in log or "Address already in use" in log:
                raise _Bind()
            raise AssertionError("installed bordergate exited at start:\n" + log)
        try:
            return http_get(admin_port(self.cfg), "/healthz")[0] == 200
        except OSError:
            return False

    def get_admin(self, path):
        return http_get(admin_port(self.cfg), path)

    def stop(self):
        rc = self.proc.stop(t(40))
        if rc != 0:
            raise AssertionError("exit %s after SIGTERM:\n%s" % (rc, self.proc.log_tail()))


class _Bind(Exception):
    pass


class InstalledLayout(bgtest.TestCase):
    def test_files_land_in_the_usual_places(self):
        self.assertTrue(os.access(staged("bin", "bordergate"), os.X_OK))
        self.assertTrue(os.access(staged("libexec", "bordergate", "build-geoip-mmdb"), os.X_OK))
        for rel in ["share/man/man1/bordergate.1", "share/man/man5/bordergate.json.5",
                    "etc/bordergate/bordergate.json",
                    "share/bordergate/bordergate-country.mmdb",
                    "share/bordergate/bordergate.schema.json", "share/bordergate/categories.json",
                    "lib/systemd/system/bordergate.service", "lib/sysusers.d/bordergate.conf",
                    "lib/tmpfiles.d/bordergate.conf", "etc/logrotate.d/bordergate",
                    "share/doc/bordergate/README.md",
                    "share/doc/bordergate/docs/configuration.md",
                    "share/doc/bordergate/examples/systemd/bordergate.service",
                    "share/doc/bordergate/examples/docker/Dockerfile",
                    "share/doc/bordergate/examples/k8s/deployment.yaml",
                    "share/doc/bordergate/examples/quickstart.json"]:
            self.assertTrue(os.path.isfile(staged(rel)), rel)
        packs = sorted(os.path.basename(p) for p in glob.glob(staged("share/bordergate/packs/*.json")))
        self.assertEqual(packs, sorted(os.path.basename(p) for p in
                                       glob.glob(os.path.join(SOURCE_DIR, "config/packs/*.json"))))
        with open(staged("etc/bordergate/bordergate.json"), "rb") as a, \
                open(os.path.join(DEPLOY, "bordergate.json"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_destdir_staging_and_an_edited_config_is_kept(self):
        dest = os.path.join(self.tmpdir, "dest")
        env = dict(os.environ, DESTDIR=dest)
        r = subprocess.run(["cmake", "--install", BUILD_DIR], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=t(120))
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        prefix = configured_prefix()
        root = dest + prefix
        self.assertTrue(os.access(os.path.join(root, "bin", "bordergate"), os.X_OK))
        etc = os.path.join(dest + ("/etc" if prefix == "/usr" else prefix + "/etc"), "bordergate")
        conf = os.path.join(etc, "bordergate.json")
        self.assertTrue(os.path.isfile(conf))
        # The installed unit names the configured prefix, not DESTDIR.
        with open(os.path.join(root, "lib/systemd/system/bordergate.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=%s/bin/bordergate run --config " % prefix, unit)
        self.assertNotIn(dest, unit)
        # Re-installing (an upgrade) never overwrites the operator's configuration.
        with open(conf, "a") as f:
            f.write("\n")
        edited = open(conf).read()
        r = subprocess.run(["cmake", "--install", BUILD_DIR], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=t(120))
        self.assertEqual(r.returncode, 0)
        self.assertIn("Keeping: " + conf, r.stdout.decode())
        self.assertEqual(open(conf).read(), edited)


class InstalledDaemon(bgtest.TestCase):
    def test_installed_binary_with_installed_default_config(self):
        conf = staged("etc/bordergate/bordergate.json")
        r = subprocess.run([staged("bin/bordergate"), "check", "--config", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.assertIn("configuration OK (0 routes)", r.stdout.decode())

        # The same file on free loopback ports, with the audit log here
        # instead of /var/lib/bordergate.
        with open(conf) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["routes"], [])
        cfg["audit"]["directory"] = os.path.join(self.tmpdir, "audit")
        d = Daemon(self, cfg, "installed")
        status, body = d.get_admin("/healthz")
        health = json.loads(body)
        # The staging prefix is not the configured one: the database found is
        # the one installed beside the binary, not the build tree's.
        self.assertNotEqual(STAGE, configured_prefix())
        self.assertEqual(health["geo"]["database"],
                         os.path.realpath(staged("share/bordergate/bordergate-country.mmdb")))
        self.assertTrue(health["audit_writable"])
        status, body = d.get_admin("/readyz")
        self.assertEqual(status, 200, body)
        status, body = d.get_admin("/metrics")
        self.assertEqual(status, 200)
        # No routes: every request is refused with 421 and never forwarded.
        r = self.curl("-i", "-H", "Host: api.partner.example",
                      "http://127.0.0.1:%d/v1/anything" % listen_port(cfg), check=False)
        self.assertRegex(r.stdout.decode(), r"^HTTP/1\.1 421 ")
        # Reload as `systemctl reload` does (SIGHUP).
        d.proc.signal(signal.SIGHUP)
        bgtest.wait_for(lambda: json.loads(d.get_admin("/healthz")[1])["config_generation"] == 2,
                        t(20), "the reload")
        d.stop()


    def test_runs_unprivileged_like_the_unit(self):
        """What the unit grants: a dedicated unprivileged user, no
        capabilities, no_new_privs, write access to its state directory only
        (setpriv; as root, user nobody and an empty bounding set)."""
        if not shutil.which("setpriv"):
            self.fail("setpriv (util-linux) is missing")
        os.chmod(_STAGE_ROOT, 0o755)
        state = os.path.join(self.tmpdir, "state")
        os.makedirs(state)
        os.chmod(self.tmpdir, 0o755)
        argv = ["setpriv", "--no-new-privs"]
        if os.geteuid() == 0:
            os.chown(state, 65534, 65534)
            argv += ["--reuid", "65534", "--regid", "65534", "--clear-groups",
                     "--inh-caps", "-all", "--bounding-set", "-all"]
        with open(staged("etc/bordergate/bordergate.json")) as f:
            cfg = json.load(f)
        cfg["audit"]["directory"] = os.path.join(state, "audit")
        port, aport = bgtest.free_port(), bgtest.free_port()
        cfg["listen"], cfg["admin"]["listen"] = "127.0.0.1:%d" % port, "127.0.0.1:%d" % aport
        path = os.path.join(self.tmpdir, "unpriv.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        os.chmod(path, 0o644)
        proc = bgtest.Process(argv + [staged("bin/bordergate"), "run", "--config", path],
                              os.path.join(self.tmpdir, "unpriv.log"), cwd=state)
        self.addCleanup(proc.kill)

        def up():
            if not proc.alive():
                raise AssertionError("exited:\n" + proc.log())
            try:
                return http_get(aport, "/readyz")[0] == 200
            except OSError:
                return False
        bgtest.wait_for(up, t(30), "the unprivileged daemon to be ready")
        with open("/proc/%d/status" % proc.pid) as f:
            status = f.read()
        self.assertRegex(status, r"CapEff:\s+0+\n")
        self.assertRegex(status, r"NoNewPrivs:\s+1\n")
        if os.geteuid() == 0:
            self.assertRegex(status, r"Uid:\s+65534\s")
        self.assertEqual(proc.stop(t(40)), 0, proc.log_tail())
        self.assertTrue(glob.glob(os.path.join(state, "audit", "*.jsonl")))


class SystemdUnit(bgtest.TestCase):
    def unit_for_stage(self):
        """The installed unit with the staged paths (so ExecStart exists)."""
        prefix = configured_prefix()
        etc = "/etc" if prefix == "/usr" else prefix + "/etc"
        with open(staged("lib/systemd/system/bordergate.service")) as f:
            text = f.read()
        text = text.replace(prefix + "/bin/bordergate", staged("bin/bordergate"))
        text = text.replace(etc + "/bordergate/", staged("etc/bordergate") + "/")
        d = os.path.join(self.tmpdir, "units")
        os.makedirs(d)
        path = os.path.join(d, "bordergate.service")
        with open(path, "w") as f:
            f.write(text)
        return path, text

    def directives(self, text):
        out = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
        return out

    def test_systemd_analyze_verify(self):
        path, _ = self.unit_for_stage()
        # Documentation=man:bordergate(1) man:bordergate.json(5) are checked
        # with man(1): the staged pages must be found by name.
        env = dict(os.environ, MANPATH=staged("share/man"), SYSTEMD_LOG_LEVEL="notice")
        r = subprocess.run(["systemd-analyze", "verify", path], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=t(60))
        self.assertEqual((r.returncode, r.stdout.decode()), (0, ""))

    def test_unit_is_hardened_and_reloads_with_sighup(self):
        path, text = self.unit_for_stage()
        d = self.directives(text)
        for key, want in [("User", "bordergate"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("NoNewPrivileges", "yes"),
                          ("CapabilityBoundingSet", ""), ("MemoryDenyWriteExecute", "yes"),
                          ("StateDirectory", "bordergate"), ("LogsDirectory", "bordergate"),
                          ("ConfigurationDirectory", "bordergate"), ("Restart", "on-failure"),
                          ("SystemCallFilter", "@system-service")]:
            self.assertIn(want, d.get(key, []), key)
        self.assertIn("AF_INET", d["RestrictAddressFamilies"][0])
        self.assertTrue(d["ExecReload"][-1].endswith("kill -HUP $MAINPID"))
        self.assertTrue(int(d["LimitNOFILE"][0]) >= 2 * 10000 + 256)
        # ExecStartPre, run as written (staged paths): the installed config checks.
        argv = d["ExecStartPre"][0].split()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.assertEqual(d["ExecStart"][0].split()[:3], [staged("bin/bordergate"), "run", "--config"])
        # systemd's own review of the sandbox, offline: "OK" band or better.
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(60))
        m = re.search(r"Overall exposure level for bordergate.service: ([0-9.]+)", r.stdout.decode())
        self.assertIsNotNone(m, r.stdout.decode()[-2000:])
        sys.stderr.write("\n[install] systemd-analyze security exposure: %s\n" % m.group(1))
        self.assertLess(float(m.group(1)), 2.0)

    def test_sysusers_and_tmpfiles(self):
        with open(staged("lib/sysusers.d/bordergate.conf")) as f:
            lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
        self.assertEqual(lines[0][:2], ["u", "bordergate"])
        with open(staged("lib/tmpfiles.d/bordergate.conf")) as f:
            lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
        self.assertEqual(lines[0][0], "d")
        self.assertTrue(lines[0][1].endswith("/bordergate/keys"))
        self.assertEqual(lines[0][2:5], ["0750", "root", "bordergate"])


class ManPages(bgtest.TestCase):
    PAGES = ["share/man/man1/bordergate.1", "share/man/man5/bordergate.json.5"]

    def test_render_without_warnings(self):
        for rel in self.PAGES:
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", staged(rel)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
            self.assertEqual((r.returncode, r.stdout.decode()), (0, ""), rel)
            r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", staged(rel)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
            self.assertEqual((r.returncode, r.stdout.decode()), (0, ""), rel)
        env = dict(os.environ, MANPATH=staged("share/man"))
        for name, sect in [("bordergate", "1"), ("bordergate.json", "5")]:
            r = subprocess.run(["man", "-w", sect, name], env=env, stdout=subprocess.PIPE, timeout=t(30))
            self.assertEqual(r.stdout.decode().strip(),
                             staged("share/man/man%s/%s.%s" % (sect, name, sect)))

    def test_bordergate_1_names_every_command(self):
        page = " ".join(render(staged(self.PAGES[0])).split())
        usage = subprocess.run([BIN, "help"], stdout=subprocess.PIPE, check=True).stdout.decode()
        commands = []
        for line in usage.split("commands:")[1].splitlines():
            m = re.match(r"^  (\S+)(?: (verify|report|subject|volumes|blocked|lookup)\b)?", line)
            if m:
                commands.append(" ".join(x for x in m.groups() if x))
        self.assertIn("audit verify", commands)
        self.assertIn("run", commands)
        consent = subprocess.run([BIN, "consent", "--help"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT).stdout.decode()
        subs = re.findall(r"^  (grant|withdraw|show|list|verify|compact|keygen|\w+)\s", consent, re.M)
        self.assertIn("grant", subs)
        missing = [c for c in commands if "bordergate " + c not in page]
        missing += ["consent " + s for s in subs if not re.search(r"\b%s\b" % s, page)]
        # ... and every option each command's --help lists.
        for c in commands + ["consent"]:
            if c in ("help", "--version"):
                continue
            out = subprocess.run([BIN] + c.split() + ["--help"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=t(30)).stdout.decode()
            for opt in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", out))):
                if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), page):
                    missing.append("%s %s" % (c, opt))
        self.assertEqual(missing, [], "commands and options missing from bordergate(1)")

    def test_bordergate_json_5_names_every_key(self):
        text = render(staged(self.PAGES[1]))
        missing = [k for k in sorted(schema_keys())
                   if not re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(k), text)]
        self.assertEqual(missing, [], "schema keys missing from bordergate.json(5)")


    def test_bordergate_json_5_example_checks(self):
        with open(staged(self.PAGES[1])) as f:
            page = f.read()
        example = page.split(".SH EXAMPLE\n.EX\n")[1].split(".EE")[0]
        example = example.replace("\\-", "-").replace("\\e", "\\")
        keydir = os.path.join(self.tmpdir, "keys")
        os.makedirs(keydir)
        for name in re.findall(r"/etc/bordergate/keys/([a-z]+\.key)", example):
            with open(os.path.join(keydir, name), "wb") as f:
                f.write(os.urandom(32))
        example = example.replace("/etc/bordergate/keys/", keydir + "/")
        example = example.replace("/var/lib/bordergate/audit", os.path.join(self.tmpdir, "audit"))
        path = os.path.join(self.tmpdir, "example.json")
        with open(path, "w") as f:
            f.write(example)
        r = subprocess.run([staged("bin/bordergate"), "check", "--config", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.assertIn("configuration OK (1 route)", r.stdout.decode())


class Kubernetes(bgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.docs = load_k8s()

    def one(self, kind, name=None):
        found = [d for _f, d in self.docs[kind] if name is None or d["metadata"]["name"] == name]
        self.assertEqual(len(found), 1, "%s %s" % (kind, name))
        return found[0]

    def policy(self):
        cm = self.one("ConfigMap", "bordergate-policy")
        return json.loads(cm["data"]["bordergate.json"])

    def test_manifests_parse_and_kustomization_lists_them(self):
        for kind, items in self.docs.items():
            for f, d in items:
                self.assertIn("apiVersion", d, f)
                if kind != "Kustomization":
                    self.assertTrue(d["metadata"]["name"], f)
                    if kind != "Namespace":
                        self.assertTrue(d["metadata"]["namespace"], f)
        kust = self.one("Kustomization")
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml")))
        self.assertEqual(sorted(kust["resources"] + ["kustomization.yaml"]), files)

    def test_deployment(self):
        dep = self.one("StatefulSet", "bordergate")
        cfg = self.policy()
        spec = dep["spec"]
        self.assertEqual(spec["replicas"], 2)
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            self.assertEqual(labels[k], v)
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        for c in pod["containers"]:
            sc = c["securityContext"]
            self.assertTrue(sc["readOnlyRootFilesystem"], c["name"])
            self.assertFalse(sc["allowPrivilegeEscalation"], c["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
            self.assertIn("limits", c["resources"])
        gw = [c for c in pod["containers"] if c["name"] == "bordergate"][0]
        ports = {p["name"]: p["containerPort"] for p in gw["ports"]}
        self.assertEqual(ports["admin"], admin_port(cfg))
        self.assertEqual(ports["proxy"], listen_port(cfg))
        self.assertEqual(gw["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "admin"})
        self.assertEqual(gw["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "admin"})
        self.assertTrue(cfg["admin"]["listen"].startswith("0.0.0.0:"), "probes come from the node")
        # Volumes: the ConfigMap, the Secret, the audit PVC.
        vols = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in gw["volumeMounts"]}
        self.assertEqual(vols["policy"]["configMap"]["name"], "bordergate-policy")
        self.assertEqual(gw["args"], ["run", "--config", mounts["policy"]["mountPath"] + "/bordergate.json"])
        secret = self.one("Secret", vols["keys"]["secret"]["secretName"])
        # The audit volume is each replica's own claim (volumeClaimTemplates),
        # re-attached to the pod of the same name after a rollout.
        self.assertNotIn("audit", vols)
        claims = {c["metadata"]["name"]: c for c in spec["volumeClaimTemplates"]}
        self.assertEqual(claims["audit"]["spec"]["accessModes"], ["ReadWriteOnce"])
        self.assertEqual(spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"], "Retain")
        self.assertTrue(cfg["audit"]["directory"].startswith(mounts["audit"]["mountPath"] + "/"))
        self.assertEqual(mounts["audit"]["subPathExpr"], "$(POD_NAME)", "one audit directory per pod")
        # Every key file the policy names is in the Secret's mount.
        keydir = mounts["keys"]["mountPath"]
        refs = [v["file"] for v in cfg["keys"].values()] + [cfg["admin"]["token"]["file"]]
        for ref in refs:
            self.assertEqual(os.path.dirname(ref), keydir)
            self.assertIn(os.path.basename(ref), secret["stringData"])
        svc = self.one("Service", "bordergate")
        self.assertEqual(svc["spec"]["selector"], spec["selector"]["matchLabels"])
        self.assertEqual([p["targetPort"] for p in svc["spec"]["ports"]], ["proxy"])
        headless = self.one("Service", spec["serviceName"])
        self.assertEqual(headless["spec"]["clusterIP"], "None")

    def test_fleet_rollouts_disruptions_and_redis(self):
        """Issue 16: replicas on different nodes and spread over zones, a
        PodDisruptionBudget, a preStop delay shorter than the grace period,
        and the Redis store wired from the ConfigMap to a Service, a Secret
        and a NetworkPolicy, with an append-only file that fsyncs."""
        sts = self.one("StatefulSet", "bordergate")
        pod = sts["spec"]["template"]["spec"]
        sel = sts["spec"]["selector"]["matchLabels"]
        anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual([(a["topologyKey"], a["labelSelector"]["matchLabels"]) for a in anti],
                         [("kubernetes.io/hostname", sel)])
        spread = pod["topologySpreadConstraints"]
        self.assertEqual([(c["topologyKey"], c["labelSelector"]["matchLabels"]) for c in spread],
                         [("topology.kubernetes.io/zone", sel)])
        pdb = self.one("PodDisruptionBudget", "bordergate")
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"], sel)
        self.assertLess(pdb["spec"]["maxUnavailable"], sts["spec"]["replicas"])
        gw = [c for c in pod["containers"] if c["name"] == "bordergate"][0]
        cmd = gw["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(cmd[0], "sleep")
        self.assertLess(int(cmd[1]) + 10, pod["terminationGracePeriodSeconds"],
                        "preStop, then up to 10 s of draining, inside the grace period")
        # store.redis: the URL names the Redis Service; the password env var
        # comes from the Secret Redis itself uses.
        store = self.policy()["store"]["redis"]
        url = urllib.parse.urlparse(store["url"])
        svc = self.one("Service", url.hostname)
        self.assertEqual([p["port"] for p in svc["spec"]["ports"]], [url.port])
        env = {e["name"]: e for e in gw["env"]}
        ref = env[store["password"]["env"]]["valueFrom"]["secretKeyRef"]
        self.assertIn(ref["key"], self.one("Secret", ref["name"])["stringData"])
        redis = self.one("StatefulSet", "redis")
        self.assertEqual(redis["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
                         svc["spec"]["selector"]["app.kubernetes.io/name"])
        renv = redis["spec"]["template"]["spec"]["containers"][0]["env"]
        self.assertIn(ref, [e["valueFrom"]["secretKeyRef"] for e in renv])
        conf = dict(l.split(None, 1) for l in self.one("ConfigMap", "redis-config")["data"]["redis.conf"]
                    .splitlines() if l.strip() and not l.startswith("#") and not l.startswith("save"))
        self.assertEqual(conf["appendonly"], "yes")
        self.assertIn(conf["appendfsync"], ("always", "everysec"))
        self.assertEqual(conf["maxmemory-policy"], "noeviction")
        self.assertTrue(redis["spec"]["volumeClaimTemplates"])
        # The gateway may reach Redis, and only the gateway may.
        gwnp = self.one("NetworkPolicy", "bordergate-gateway")
        to_redis = [r for r in gwnp["spec"]["egress"]
                    for p in r["to"] if p.get("podSelector", {}).get("matchLabels") ==
                    redis["spec"]["selector"]["matchLabels"]]
        self.assertEqual([p["port"] for p in to_redis[0]["ports"]], [url.port])
        rnp = self.one("NetworkPolicy", "redis")
        self.assertEqual([p["podSelector"]["matchLabels"] for r in rnp["spec"]["ingress"] for p in r["from"]],
                         [sel])

    def test_log_shipping_tails_the_audit_directory_unchanged(self):
        cfg = self.policy()
        ship = yaml.safe_load(self.one("ConfigMap", "bordergate-audit-shipper")["data"]["vector.yaml"])
        src = ship["sources"]["audit"]
        self.assertEqual(src["include"], [cfg["audit"]["directory"] + "/*.jsonl"])
        self.assertEqual(src["read_from"], "beginning")
        sink = ship["sinks"]["archive"]
        self.assertEqual(sink["encoding"]["codec"], "text", "lines must stay byte for byte")
        self.assertTrue(ship["data_dir"].startswith("/archive/"), "read positions survive restarts")

    def test_network_policies(self):
        dep = self.one("StatefulSet", "bordergate")
        gw_labels = dep["spec"]["template"]["metadata"]["labels"]
        gw_ns = dep["metadata"]["namespace"]
        app = self.one("NetworkPolicy", "egress-only-via-bordergate")
        self.assertEqual(app["spec"]["podSelector"], {})
        self.assertIn("Egress", app["spec"]["policyTypes"])
        kinds = []
        for rule in app["spec"]["egress"]:
            ports = {p["port"] for p in rule["ports"]}
            for peer in rule["to"]:
                self.assertNotIn("ipBlock", peer, "the app namespace reaches nothing outside")
                ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                if ns == gw_ns:
                    for k, v in peer["podSelector"]["matchLabels"].items():
                        self.assertEqual(gw_labels[k], v)
                    self.assertEqual(ports, {listen_port(self.policy())})
                    kinds.append("gateway")
                else:
                    self.assertEqual((ns, ports), ("kube-system", {53}))
                    kinds.append("dns")
        self.assertEqual(sorted(kinds), ["dns", "gateway"])
        gw = self.one("NetworkPolicy", "bordergate-gateway")
        for k, v in gw["spec"]["podSelector"]["matchLabels"].items():
            self.assertEqual(gw_labels[k], v)
        blocks = [p["ipBlock"] for r in gw["spec"]["egress"] for p in r["to"] if "ipBlock" in p]
        self.assertEqual(blocks[0]["cidr"], "0.0.0.0/0")
        self.assertIn("10.0.0.0/8", blocks[0]["except"])

    def test_configmap_policy_runs_and_probes_answer(self):
        """The ConfigMap's bordergate.json, with the Secret's keys as files,
        passes `check`, runs (installed binary), and the probe paths the
        Deployment uses answer 200 on its admin listener; the audit log it
        writes verifies with the Secret's audit key."""
        cfg = self.policy()
        # No Redis here: the fleet store is tested where a redis-server runs.
        cfg.pop("store", None)
        keydir = os.path.join(self.tmpdir, "keys")
        os.makedirs(keydir)
        secret = self.one("Secret", "bordergate-keys")["stringData"]
        text = json.dumps(cfg).replace("/etc/bordergate-keys/", keydir + "/")
        cfg = json.loads(text)
        cfg["audit"]["directory"] = os.path.join(self.tmpdir, "audit")
        path = os.path.join(self.tmpdir, "k8s.json")
        with open(path, "w") as f:
            json.dump(cfg, f)

        def check():
            return subprocess.run([staged("bin/bordergate"), "check", "--config", path],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
        # The example Secret's placeholders are refused: it cannot run by mistake.
        for name, value in secret.items():
            with open(os.path.join(keydir, name), "w") as f:
                f.write(value)
        r = check()
        self.assertEqual(r.returncode, 1, r.stdout.decode())
        self.assertEqual(r.stdout.decode().count("error:"), len(secret), r.stdout.decode())
        for name in secret:
            with open(os.path.join(keydir, name), "wb") as f:
                f.write(os.urandom(32).hex().encode() if name.endswith(".key") else b"t" * 24)
        r = check()
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        d = Daemon(self, cfg, "k8s")
        gw = [c for c in self.one("StatefulSet", "bordergate")["spec"]["template"]["spec"]["containers"]
              if c["name"] == "bordergate"][0]
        for probe in ("livenessProbe", "readinessProbe"):
            status, body = d.get_admin(gw[probe]["httpGet"]["path"])
            self.assertEqual(status, 200, "%s: %s" % (probe, body))
        self.assertEqual(d.get_admin("/metrics")[0], 200)
        d.stop()
        r = subprocess.run([staged("bin/bordergate"), "audit", "verify", "--key",
                            os.path.join(keydir, "audit.key"), cfg["audit"]["directory"]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.assertIn("chain intact", r.stdout.decode())


def build_setting(name):
    """NAME's value in the build's CMakeCache.txt ("" when absent)."""
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        m = re.search(r"^%s:[A-Z]+=(.*)$" % re.escape(name), f.read(), re.M)
    return m.group(1) if m else ""


def readelf(*args):
    return subprocess.run(["readelf", "-W"] + list(args) + [staged("bin", "bordergate")],
                          stdout=subprocess.PIPE, check=True, timeout=t(60)).stdout.decode()


class HardenedBinary(bgtest.TestCase):
    """The INSTALLED binary carries the hardening CMake asks for (issue 18):
    a position-independent executable, full RELRO (GNU_RELRO segment and
    BIND_NOW: the GOT is read-only once the loader is done), stack canaries
    (__stack_chk_fail referenced) and, where optimised without sanitizers,
    _FORTIFY_SOURCE (libc's bounds-checked *_chk functions referenced)."""

    def test_pie_relro_now_and_stack_protector(self):
        self.assertRegex(readelf("-h"), r"Type:\s+DYN\b", "not a position-independent executable")
        dyn = readelf("-d")
        self.assertRegex(dyn, r"\(FLAGS\)\s+.*\bBIND_NOW\b", "no BIND_NOW (-z now)")
        self.assertRegex(dyn, r"\(FLAGS_1\)\s+Flags:.*\bNOW\b", "no FLAGS_1 NOW (-z now)")
        self.assertRegex(dyn, r"\(FLAGS_1\)\s+Flags:.*\bPIE\b", "no FLAGS_1 PIE")
        self.assertRegex(readelf("-l"), r"(?m)^\s*GNU_RELRO\s", "no GNU_RELRO segment (-z relro)")
        syms = readelf("--dyn-syms")
        self.assertRegex(syms, r"\s__stack_chk_fail(@|\s|$)", "no stack protector")

    def test_fortified_libc_calls(self):
        if build_setting("CMAKE_BUILD_TYPE") == "Debug" or build_setting("BG_SANITIZE") == "ON":
            self.skipTest("_FORTIFY_SOURCE is off by design in Debug (-O0) and sanitizer builds")
        syms = set(re.findall(r"\s(__\w+_chk)(?:@\S*)?(?=\s|$)", readelf("--dyn-syms")))
        fortified = syms - {"__stack_chk_fail"}
        self.assertTrue(fortified, "no fortified libc call (_FORTIFY_SOURCE): %s" % sorted(syms))
        # the buffer writers the code base uses most are the fortified ones
        self.assertIn("__snprintf_chk", fortified)
        self.assertIn("__memcpy_chk", fortified)


class Dockerfile(bgtest.TestCase):
    """Docker cannot build here (no image registry): the Dockerfile is read."""

    def stages(self):
        with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
            text = re.sub(r"\\\n", " ", f.read())
        stages = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            ins, _, rest = line.partition(" ")
            if ins.upper() == "FROM":
                stages.append({"from": rest, "lines": []})
            elif stages:
                stages[-1]["lines"].append((ins.upper(), rest))
        return stages

    def apt_packages(self, stage):
        pkgs = set()
        for ins, rest in stage["lines"]:
            if ins == "RUN":
                for m in re.finditer(r"apt-get install ((?:\s*-\S+)*)((?:\s+[a-z0-9][a-z0-9.+-]+)+)", rest):
                    pkgs |= set(m.group(2).split())
        return pkgs

    def test_multi_stage_non_root_healthcheck(self):
        build, _debug, run = self.stages()
        # Base images come from build arguments (pinned by digest in a
        # release), with Debian 12 tags as the defaults.
        with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
            args = dict(re.findall(r"^ARG (\w+)=(\S+)$", f.read(), re.M))
        self.assertEqual((args.get("BUILD_IMAGE"), args.get("RUNTIME_IMAGE")), ("debian:12", "debian:12-slim"))
        self.assertEqual(build["from"], "${BUILD_IMAGE} AS build")
        self.assertEqual(run["from"], "${RUNTIME_IMAGE}")
        user = [r for i, r in run["lines"] if i == "USER"]
        self.assertEqual(len(user), 1)
        self.assertNotIn(user[0].split(":")[0], ("0", "root"))
        health = [r for i, r in run["lines"] if i == "HEALTHCHECK"][0]
        self.assertIn('"/usr/bin/bordergate", "probe"', health)
        self.assertNotIn("curl", " ".join(r for _i, r in run["lines"]))
        with open(os.path.join(DEPLOY, "docker", "bordergate.json")) as f:
            cfg = json.load(f)
        self.assertIn("http://127.0.0.1:%d/healthz" % admin_port(cfg), health)
        self.assertTrue(any(i == "VOLUME" and "/var/lib/bordergate" in r for i, r in run["lines"]))
        self.assertTrue(cfg["audit"]["directory"].startswith("/var/lib/bordergate/"))
        r = subprocess.run([staged("bin/bordergate"), "check", "--config",
                            os.path.join(DEPLOY, "docker", "bordergate.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
        self.assertEqual(r.returncode, 0, r.stdout.decode())

    def test_release_build_so_the_hardening_applies(self):
        # The image's binary gets the hardening from CMakeLists.txt: an
        # optimised build type (FORTIFY needs optimisation), no sanitizers,
        # and no compiler or linker flags of its own to drop any of it.
        build, _debug, _run = self.stages()
        cmake = " ".join(r for i, r in build["lines"] if i == "RUN" and "cmake -S" in r)
        m = re.search(r"-DCMAKE_BUILD_TYPE=(\w+)", cmake)
        self.assertIsNotNone(m, cmake)
        self.assertIn(m.group(1), ("Release", "RelWithDebInfo", "MinSizeRel"))
        for flag in ("BG_SANITIZE=ON", "CMAKE_C_FLAGS", "CMAKE_EXE_LINKER_FLAGS",
                     "CMAKE_POSITION_INDEPENDENT_CODE"):
            self.assertNotIn(flag, cmake)

    def test_packages_match_deps_and_linked_libraries(self):
        build, _debug, run = self.stages()
        with open(os.path.join(SOURCE_DIR, "scripts", "deps.sh")) as f:
            m = re.search(r"^PKGS=\(([^)]*)\)", f.read(), re.M)
        dev = {p for p in m.group(1).split() if p.endswith("-dev") and p != "libcmocka-dev"}
        self.assertEqual(dev - self.apt_packages(build), set(), "build stage lacks deps.sh -dev packages")
        runtime = self.apt_packages(run)
        self.assertEqual({p for p in runtime if p.endswith("-dev")}, set())
        # Every shared library the binary links comes from a package the run
        # stage installs (or from the base image: libc6, libgcc-s1).
        ldd = subprocess.run(["ldd", staged("bin/bordergate")], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        needed = set()
        for lib in re.findall(r"=> (/\S+)", ldd):
            if "libasan" in lib or "libubsan" in lib:
                continue  # sanitizer builds
            for cand in (lib, os.path.realpath(lib), "/usr" + lib if lib.startswith("/lib") else lib):
                r = subprocess.run(["dpkg", "-S", cand], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                if r.returncode == 0:
                    needed.add(r.stdout.decode().split(":")[0])
                    break
            else:
                self.fail("no Debian package owns %s" % lib)
        base = {"libc6", "libgcc-s1"}
        if bgtest.ASAN:
            base.add("libstdc++6")  # libasan's, not bordergate's
        self.assertEqual(needed - runtime - base, set(), "run stage lacks runtime libraries")
        self.assertEqual(runtime - needed - {"ca-certificates"}, set(),
                         "run stage installs libraries the binary does not link")


if __name__ == "__main__":
    bgtest.main()
