"""The recorded-traffic corpus (tests/traffic/corpus/), replayed offline and live.

tests/traffic/corpus/ holds one HAR per service family (payments, logistics,
analytics, CRM/support, advertising, cloud storage, HR, domestic SMS,
meetings/devices, bypass attempts), 300+ entries in all, and for each file
and each policy under test (config/quickstart.json and the three seed packs
in config/packs/) the expected decisions, <file>.<policy>.expect.json,
written by `bordergate replay --write-expect` and reviewed by hand (see
tests/traffic/README.md for what was checked).

For each policy the test makes a copy that changes only machine-specific
parts (keys, consent registry and audit paths, listen/admin ports, and the
ports of the loopback `bordergate sink`s standing in for the recipients;
the policy's hosts, routes, rules, `resolve` map and geo overrides are
untouched), grants the consents tests/traffic/corpus/consents.json lists
with the real `bordergate consent grant`, and then:

  offline  `bordergate replay --config COPY --har FILE --expect EXPECT`
           exits 0 for every corpus file (no network, no running proxy);
  live     with a running bordergate and its sinks, `bordergate replay
           --live URL` sends every recorded request through it and checks
           that what each upstream received matches the offline decision
           (every policy).

Assertion messages name files, entries and decisions, never payload values.
"""
import json
import os
import subprocess
import unittest
import urllib.parse

import bgtest
from bgtest import t

CORPUS_DIR = os.path.join(bgtest.SOURCE_DIR, "tests", "traffic", "corpus")
POLICIES = {
    "quickstart": os.path.join(bgtest.SOURCE_DIR, "config", "quickstart.json"),
    "wadesk": os.path.join(bgtest.SOURCE_DIR, "config", "packs", "wadesk.json"),
    "wking": os.path.join(bgtest.SOURCE_DIR, "config", "packs", "wking.json"),
    "weidijia": os.path.join(bgtest.SOURCE_DIR, "config", "packs", "weidijia.json"),
}

# Test keys (hex). The packs read them from the environment; the quick-start
# policy from files, which the copy points at the test's own.
PSEUDONYM_KEY = "5a" * 32
TOKEN_KEY = "4d" * 32
SUBJECT_KEY = "6b" * 32
AUDIT_KEY = "7c" * 32
KEY_ENV = {"BG_PSEUDONYM_KEY": PSEUDONYM_KEY, "BG_SUBJECT_KEY": SUBJECT_KEY, "BG_AUDIT_KEY": AUDIT_KEY}


def corpus_files():
    return sorted(f for f in os.listdir(CORPUS_DIR) if f.endswith(".har"))


def expect_path(har, policy):
    return os.path.join(CORPUS_DIR, "%s.%s.expect.json" % (har[:-len(".har")], policy))


def _write_key(path, hexkey):
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (hexkey + "\n").encode())
        os.close(fd)
    return path


class PolicyCopy:
    """A copy of policy NAME in TC's temporary directory, with the consents
    of consents.json granted. .path is the config file; .config the dict;
    .upstreams maps each route's upstream authority to the loopback address
    the policy resolves its host to (where a sink must listen)."""

    def __init__(self, tc, name):
        self.tc = tc
        self.name = name
        with open(POLICIES[name]) as f:
            cfg = json.load(f)
        d = os.path.join(tc.tmpdir, "policy-%s" % name)
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.subject_keyfile = _write_key(os.path.join(d, "subject.key"), SUBJECT_KEY)
        self.audit_keyfile = _write_key(os.path.join(d, "audit.key"), AUDIT_KEY)
        if "file" in json.dumps(cfg.get("keys", {})):
            # Quick start: keys from files under out/; use the test's.
            files = {"pseudonym": PSEUDONYM_KEY, "token": TOKEN_KEY, "subject": SUBJECT_KEY, "audit": AUDIT_KEY}
            for k, spec in list(cfg["keys"].items()):
                if isinstance(spec, dict) and "file" in spec:
                    spec["file"] = _write_key(os.path.join(d, "%s.key" % k), files[k])
        cfg.pop("listen", None)
        cfg.pop("admin", None)
        cfg.setdefault("consent", {})["registry"] = os.path.join(d, "consents.jsonl")
        cfg.setdefault("audit", {})["directory"] = os.path.join(d, "audit")
        self.registry = cfg["consent"]["registry"]
        self.upstreams = {}
        for r in cfg["routes"]:
            u = urllib.parse.urlsplit(r["upstream"])
            addr = cfg.get("resolve", {}).get(u.hostname, "127.0.0.1")
            self.upstreams[u.netloc] = addr[0] if isinstance(addr, list) else addr
        self.config = cfg
        self.path = os.path.join(d, "%s.json" % name)
        self.save()
        with open(os.path.join(CORPUS_DIR, "consents.json")) as f:
            for c in json.load(f).get(name, []):
                self.grant(c)

    def save(self):
        with open(self.path, "w") as f:
            json.dump(self.config, f, indent=1)

    def grant(self, c):
        argv = [bgtest.BIN, "consent", "grant", "--subject", "-", "--recipient", c["recipient"],
                "--purpose", c["purpose"], "--region", c["region"], "--registry", self.registry,
                "--key", self.subject_keyfile]
        if c.get("sensitive"):
            argv.append("--sensitive")
        if c.get("guardian"):
            argv.append("--guardian")
        if c.get("evidence"):
            argv += ["--evidence", c["evidence"]]
        r = subprocess.run(argv, input=c["subject"] + "\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=t(30))
        self.tc.assertEqual(r.returncode, 0, "consent grant (%s) failed: %s" % (self.name, r.stderr))

    def start_live(self):
        """One sink per upstream authority on the address the policy pins it
        to, the routes pointed at the sinks' ports, and the proxy. Returns
        (proxy, {authority: sink})."""
        sinks = {}
        for auth, addr in sorted(self.upstreams.items()):
            sinks[auth] = self.tc.sink("%s-%s" % (self.name, auth.replace(":", "-")), host=addr)
        for r in self.config["routes"]:
            u = urllib.parse.urlsplit(r["upstream"])
            s = sinks[u.netloc]
            r["upstream"] = "%s://%s:%d%s" % (u.scheme, u.hostname, s.port, u.path)
        self.save()
        px = self.tc.proxy(self.config, env=KEY_ENV, name="proxy-%s" % self.name)
        return px, sinks

    def env(self):
        e = dict(os.environ)
        e.update(KEY_ENV)
        return e


def replay(policy, *args, timeout=120):
    argv = [bgtest.BIN, "replay", "--config", policy.path] + list(args)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=policy.env(), timeout=t(timeout), cwd=policy.dir)


def write_expect(pol, har):
    """Maintainers only (BG_UPDATE_EXPECT=1): rewrite HAR's expectation
    under POL from what replay decides now; review the diff before
    committing it (tests/traffic/README.md)."""
    path = expect_path(har, pol.name)
    r = replay(pol, "--har", os.path.join(CORPUS_DIR, har), "--write-expect", path)
    if r.returncode not in (0, 1):
        raise RuntimeError("write-expect %s: %s" % (har, r.stderr))
    with open(path) as f:
        doc = json.load(f)
    doc["config"] = "%s (test copy: keys, consent registry, audit directory, ports)" % \
        os.path.relpath(POLICIES[pol.name], bgtest.SOURCE_DIR)
    doc["traffic"] = os.path.relpath(os.path.join(CORPUS_DIR, har), bgtest.SOURCE_DIR)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


class CorpusFiles(unittest.TestCase):
    """The corpus itself: generated, complete, HAR 1.2."""

    def test_generator_output_is_committed(self):
        r = subprocess.run(["python3", os.path.join(CORPUS_DIR, "make_corpus.py"), "--check"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_at_least_300_entries_and_an_expectation_per_file_and_policy(self):
        total = 0
        for har in corpus_files():
            with open(os.path.join(CORPUS_DIR, har)) as f:
                doc = json.load(f)
            self.assertEqual(doc["log"]["version"], "1.2", har)
            entries = doc["log"]["entries"]
            total += len(entries)
            for e in entries:
                self.assertIn("serverIPAddress", e)
                self.assertTrue(any(h["name"].lower() == "user-agent" for h in e["request"]["headers"]))
            for pol in POLICIES:
                self.assertTrue(os.path.exists(expect_path(har, pol)), "%s has no expectation under %s" % (har, pol))
        self.assertGreaterEqual(total, 300)

    def test_every_policy_sees_routed_traffic_of_every_outcome(self):
        """Each policy routes a good share of the corpus (the rest is
        refused, 421) and the expectations hold allows, de-identifications
        and blocks under each; every expectation covers every entry."""
        for pol in POLICIES:
            seen = {}
            for har in corpus_files():
                with open(os.path.join(CORPUS_DIR, har)) as f:
                    n = len(json.load(f)["log"]["entries"])
                with open(expect_path(har, pol)) as f:
                    xp = json.load(f)["entries"]
                self.assertEqual([e["entry"] for e in xp], list(range(n)), "%s.%s" % (har, pol))
                for e in xp:
                    seen[e["decision"]] = seen.get(e["decision"], 0) + 1
            routed = sum(v for k, v in seen.items() if k != "refused")
            self.assertGreaterEqual(routed, 60, "%s routes too little of the corpus: %r" % (pol, seen))
            for d in ("allow", "deidentify", "block"):
                self.assertGreater(seen.get(d, 0), 0, "%s: no %s in the corpus" % (pol, d))


class CorpusReplay(bgtest.TestCase):
    """Every corpus file under every policy, offline; two policies live."""

    def offline(self, name):
        pol = PolicyCopy(self, name)
        for har in corpus_files():
            if os.environ.get("BG_UPDATE_EXPECT") == "1":
                write_expect(pol, har)
            with self.subTest(policy=name, har=har):
                r = replay(pol, "--har", os.path.join(CORPUS_DIR, har), "--expect", expect_path(har, name))
                self.assertEqual(r.returncode, 0, "%s under %s differs from its expectation:\n%s\n%s"
                                 % (har, name, tail(r.stdout), tail(r.stderr)))

    def live(self, name):
        pol = PolicyCopy(self, name)
        px, sinks = pol.start_live()
        logs = []
        for s in sinks.values():
            logs += ["--sink-log", s.record_path]
        for har in corpus_files():
            with self.subTest(policy=name, har=har):
                r = replay(pol, "--har", os.path.join(CORPUS_DIR, har), "--live", px.url(""), *logs)
                self.assertEqual(r.returncode, 0, "%s live under %s:\n%s\n%s"
                                 % (har, name, tail(r.stdout), tail(r.stderr)))

    def test_replay_output_and_expectations_carry_no_personal_values(self):
        """The replay lines (paths, categories, decisions), its summary and
        differences, and the committed expectations name no value of the
        people in the corpus (names, mobiles, e-mails, addresses, ID numbers)."""
        import importlib.util
        spec = importlib.util.spec_from_file_location("make_corpus", os.path.join(CORPUS_DIR, "make_corpus.py"))
        mc = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mc)
        values = set()
        for p in mc.PEOPLE:
            values.update([p["name"], p["mobile"], p["email"], p["address"], p["id_no"]])
        corpus = ""
        for har in corpus_files():
            with open(os.path.join(CORPUS_DIR, har), encoding="utf-8") as fh:
                corpus += json.dumps(json.load(fh), ensure_ascii=False)
        # Not vacuous: the traffic itself holds most of these values.
        self.assertGreater(sum(1 for v in values if v in corpus), 100)
        texts = {}
        for name in ("quickstart", "wadesk", "wking", "weidijia"):
            pol = PolicyCopy(self, name)
            for har in corpus_files():
                r = replay(pol, "--har", os.path.join(CORPUS_DIR, har), "--format", "table")
                texts["table %s %s" % (name, har)] = r.stdout + r.stderr
                r = replay(pol, "--har", os.path.join(CORPUS_DIR, har))
                self.assertEqual(r.returncode, 0, "%s %s: %s" % (name, har, tail(r.stderr)))
                texts["json %s %s" % (name, har)] = r.stdout + r.stderr
        for f in os.listdir(CORPUS_DIR):
            if f.endswith(".expect.json"):
                with open(os.path.join(CORPUS_DIR, f), encoding="utf-8") as fh:
                    texts[f] = fh.read()
        for where, text in texts.items():
            leaked = sum(1 for v in values if v in text)
            self.assertEqual(leaked, 0, "%s: %d personal value(s) in the output" % (where, leaked))

    def test_offline_quickstart(self):
        self.offline("quickstart")

    def test_offline_wadesk(self):
        self.offline("wadesk")

    def test_offline_wking(self):
        self.offline("wking")

    def test_offline_weidijia(self):
        self.offline("weidijia")

    def test_live_quickstart(self):
        self.live("quickstart")

    def test_live_wadesk(self):
        self.live("wadesk")

    def test_live_wking(self):
        self.live("wking")

    def test_live_weidijia(self):
        self.live("weidijia")


if __name__ == "__main__":
    bgtest.main()
