#!/usr/bin/python3
"""
The command line: --version, help, `check` (configuration OK, or one
"FILE:LINE:COL: error: $.path: message" line per problem at the right
position, exit 1) and `run` failing clearly.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgtest  # noqa: E402
from bgtest import BIN, t  # noqa: E402


def project_version():
    with open(os.path.join(bgtest.SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(bordergate VERSION (\d+\.\d+\.\d+)", f.read())
    return m.group(1)


def pos(text, line_marker, col_marker=None, nth=0):
    """1-based (line, column) of COL_MARKER on the line containing
    LINE_MARKER (the NTH such line); column of LINE_MARKER by default."""
    lines = text.split("\n")
    hits = [i for i, ln in enumerate(lines) if line_marker in ln]
    i = hits[nth]
    return i + 1, lines[i].index(col_marker or line_marker) + 1


GOOD = """{
  "version": 1,
  "listen": "127.0.0.1:18080",
  "admin": {"listen": "127.0.0.1:18081"},
  "limits": {"max_body_bytes": 1048576, "max_connections": 100},
  "timeouts": {"header_ms": 5000, "response_ms": 30000},
  "resolve": {"api.partner.example": "127.0.0.1"},
  "routes": [
    {"id": "partner", "match": {"host": "api.partner.example"},
     "upstream": "https://api.partner.example", "description": "Partner API"},
    {"id": "crm", "match": {"path_prefix": "/crm"}, "upstream": "http://127.0.0.1:9000/v1",
     "allow_private_addresses": true}
  ]
}
"""


class Cli(bgtest.TestCase):
    def run_bg(self, *args):
        return subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=t(60), cwd=self.tmpdir)

    def write(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, name, text):
        path = self.write(name, text)
        r = self.run_bg("check", "--config", path)
        return path, r

    def assertErrors(self, name, text, expected):
        """EXPECTED: list of (line, col, path, message regex), in order."""
        path, r = self.check(name, text)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "", "diagnostics go to stderr")
        lines = r.stderr.splitlines()
        self.assertEqual(lines[-1], "%s: %d error%s" % (path, len(expected), "" if len(expected) == 1 else "s"))
        errs = lines[:-1]
        self.assertEqual(len(errs), len(expected), r.stderr)
        for got, (line, col, jpath, msg) in zip(errs, expected):
            prefix = "%s:%d:%d: error: %s" % (path, line, col, jpath + ": " if jpath else "")
            self.assertTrue(got.startswith(prefix), "%r does not start with %r" % (got, prefix))
            self.assertRegex(got[len(prefix):], msg)
        self.assertNotIn("configuration OK", r.stdout + r.stderr)
        return r

    # -- version and help -------------------------------------------------

    def test_version(self):
        r = self.run_bg("--version")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "bordergate %s\n" % project_version())

    def test_help(self):
        r = self.run_bg("help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("run --config FILE", "check --config FILE", "sink", "--version"):
            self.assertIn(cmd, r.stdout)
        self.assertEqual(r.stderr, "")

    def test_no_command_and_unknown_command(self):
        r = self.run_bg()
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: bordergate", r.stderr)
        r = self.run_bg("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", r.stderr)

    def test_check_needs_config(self):
        r = self.run_bg("check")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "bordergate check: --config FILE is required\n")

    def test_sink_help(self):
        r = self.run_bg("sink", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("/__sink/status/NNN", r.stdout)

    # -- check ------------------------------------------------------------

    def test_check_ok(self):
        path, r = self.check("good.json", GOOD)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, "%s: configuration OK (2 routes)\n" % path, ""))

    def test_check_ok_equals_sign_form(self):
        path = self.write("good.json", GOOD)
        r = self.run_bg("check", "--config=" + path)
        self.assertEqual(r.returncode, 0)
        self.assertIn("configuration OK", r.stdout)

    def test_check_unknown_key(self):
        text = GOOD.replace('"description": "Partner API"}', '"description": "Partner API", "colour": "red"}')
        line, col = pos(text, '"colour"')
        self.assertErrors("unknown.json", text, [
            (line, col, "$.routes[0].colour", r'^unknown key "colour" \(allowed here: id, match, upstream'),
        ])

    def test_check_unknown_top_level_key_in_nested_object(self):
        text = GOOD.replace('"header_ms": 5000', '"header_ms": 5000, "headr_ms": 1')
        line, col = pos(text, '"headr_ms"')
        self.assertEqual((line, col), (6, 35))
        self.assertErrors("nested.json", text, [(6, 35, "$.timeouts.headr_ms", r"^unknown key")])

    def test_check_wrong_type(self):
        text = GOOD.replace('"max_body_bytes": 1048576', '"max_body_bytes": "1 MB"')
        line, col = pos(text, '"1 MB"')
        self.assertEqual((line, col), (5, 32))
        self.assertErrors("type.json", text, [(5, 32, "$.limits.max_body_bytes", r"^must be a whole number$")])

    def test_check_out_of_range(self):
        text = GOOD.replace('"max_connections": 100', '"max_connections": 0')
        line, col = pos(text, '"max_connections": 0', "0}")
        self.assertErrors("range.json", text, [(line, col, "$.limits.max_connections", r"^must be between 1 and")])

    def test_check_bad_upstream_url(self):
        text = GOOD.replace('"upstream": "http://127.0.0.1:9000/v1"', '"upstream": "ftp://127.0.0.1/v1"')
        line, col = pos(text, '"ftp://')
        self.assertEqual((line, col), (11, 65))
        self.assertErrors("url.json", text, [
            (11, 65, "$.routes[1].upstream", r"^upstream must start with http:// or https://$")])

    def test_check_bad_upstream_port(self):
        text = GOOD.replace('"upstream": "http://127.0.0.1:9000/v1"', '"upstream": "http://127.0.0.1:99999"')
        line, col = pos(text, '"http://127.0.0.1:99999"')
        self.assertErrors("port.json", text, [(line, col, "$.routes[1].upstream", r"port must be 1-65535")])

    def test_check_duplicate_key(self):
        text = GOOD.replace('"timeouts": {"header_ms": 5000, ',
                            '"timeouts": {"header_ms": 5000, "header_ms": 6000, ')
        first = pos(text, '"header_ms"')
        self.assertEqual(first, (6, 16))
        second = (6, text.split("\n")[5].index('"header_ms"', 16) + 1)
        self.assertEqual(second, (6, 35))
        self.assertErrors("dup.json", text, [
            (6, 35, "$.timeouts.header_ms",
             r"^duplicate key: it silently replaces the definition at line 6, column 16"),
        ])

    def test_check_duplicate_route_id(self):
        text = GOOD.replace('{"id": "crm"', '{"id": "partner"')
        line, col = pos(text, '{"id": "partner"', '"partner"', nth=1)
        self.assertErrors("dupid.json", text, [(line, col, "$.routes[1].id", r'duplicate route id "partner"')])

    def test_check_json_syntax_error(self):
        text = GOOD.replace('"description": "Partner API"}', '"description": "Partner API",}')
        line, col = pos(text, '"Partner API",}', ",}")
        col += 1  # at the '}' where a key was expected
        self.assertEqual((line, col), (10, 78))
        path, r = self.check("syntax.json", text)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith("%s:10:78: error: " % path), lines[0])
        self.assertEqual(lines[1], "%s: 1 error" % path)

    def test_check_truncated_file(self):
        text = GOOD[:GOOD.index('"routes"')]
        path, r = self.check("trunc.json", text)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(text.count("\n"), 7)  # the file ends on line 8
        self.assertRegex(r.stderr.splitlines()[0], r"^%s:8:\d+: error: .*end of file" % re.escape(path))

    def test_check_several_errors_sorted_by_position(self):
        text = GOOD.replace('"max_body_bytes": 1048576', '"max_body_bytes": "1 MB"') \
                   .replace('"upstream": "http://127.0.0.1:9000/v1"', '"upstream": "ftp://x"') \
                   .replace('"version": 1,', '"version": 1, "bogus": true,')
        r = self.assertErrors("many.json", text, [
            (2, 17, "$.bogus", r"^unknown key"),
            (5, 32, "$.limits.max_body_bytes", r"^must be a whole number$"),
            (11, 65, "$.routes[1].upstream", r"^upstream must start with"),
        ])
        self.assertEqual(r.stdout, "")

    def test_check_missing_routes(self):
        path, r = self.check("noroutes.json", '{"listen": "127.0.0.1:1"}\n')
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.splitlines()[0], r"^%s:1:1: error: \$: no \"routes\"" % re.escape(path))

    def test_check_missing_file(self):
        r = self.run_bg("check", "--config", "does-not-exist.json")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.splitlines()[0], "does-not-exist.json: error: cannot read: No such file or directory")

    def test_check_does_not_quote_secrets_of_unknown_keys_values(self):
        text = GOOD.replace('"description": "Partner API"}', '"description": "Partner API", "api_key": "s3cr3t-value"}')
        path, r = self.check("secret.json", text)
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("s3cr3t-value", r.stdout + r.stderr)

    # -- check for CI: --format json, --strict, --no-keys -------------------

    def test_check_json_lists_every_diagnostic(self):
        text = GOOD.replace('"max_body_bytes": 1048576', '"max_body_bytes": "1 MB"') \
                   .replace('"version": 1,', '"version": 1, "bogus": true,')
        path = self.write("many.json", text)
        r = self.run_bg("check", "--config", path, "--format", "json")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "")
        doc = json.loads(r.stdout)
        self.assertEqual((doc["file"], doc["ok"], doc["errors"], doc["warnings"], doc["routes"]),
                         (path, False, 2, 0, None))
        got = [(d["severity"], d["line"], d["column"], d["path"]) for d in doc["diagnostics"]]
        self.assertEqual(got, [("error", 2, 17, "$.bogus"), ("error", 5, 32, "$.limits.max_body_bytes")])
        r = self.run_bg("check", "--config=" + self.write("good.json", GOOD), "--format=json")
        doc = json.loads(r.stdout)
        self.assertEqual((r.returncode, doc["ok"], doc["errors"], doc["routes"], doc["diagnostics"]),
                         (0, True, 0, 2, []))
        r = self.run_bg("check", "--config", "missing.json", "--format", "json")
        doc = json.loads(r.stdout)
        self.assertEqual((r.returncode, doc["ok"], doc["diagnostics"][0]["line"]), (1, False, None))
        self.assertIn("cannot read", doc["diagnostics"][0]["message"])

    def test_check_strict_fails_on_warnings(self):
        # audit.enabled false warns (nothing is recorded): valid, not clean.
        cfg = json.loads(GOOD)
        cfg["audit"] = {"enabled": False}
        path = self.write("warn.json", json.dumps(cfg, indent=2))
        r = self.run_bg("check", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertRegex(r.stderr, r"warning: \$\.audit\.enabled")
        r = self.run_bg("check", "--config", path, "--strict")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("configuration OK", r.stdout)
        self.assertRegex(r.stderr, r"warning: \$\.audit\.enabled")
        self.assertIn("1 warning (--strict)", r.stderr)
        doc = json.loads(self.run_bg("check", "--config", path, "--strict", "--format", "json").stdout)
        self.assertEqual((doc["ok"], doc["errors"], doc["warnings"]), (False, 0, 1))
        self.assertEqual(self.run_bg("check", "--config", self.write("g.json", GOOD), "--strict").returncode, 0)

    def test_check_no_keys_checks_a_policy_without_its_key_files(self):
        cfg = json.loads(GOOD)
        cfg["keys"] = {"pseudonym": {"file": "/nonexistent/pseudonym.key"},
                       "token": {"env": "BG_TEST_NO_SUCH_VARIABLE"}}
        path = self.write("keys.json", json.dumps(cfg, indent=2))
        r = self.run_bg("check", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("$.keys.pseudonym", r.stderr)
        r = self.run_bg("check", "--config", path, "--no-keys")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "%s: configuration OK (2 routes), keys not read\n" % path)
        # The keys' shape is still checked, and so is everything else.
        cfg["keys"]["pseudonym"] = {"file": "a", "env": "B"}
        r = self.run_bg("check", "--config", self.write("k2.json", json.dumps(cfg, indent=2)), "--no-keys")
        self.assertEqual(r.returncode, 1)
        self.assertIn('give exactly one of "file" or "env"', r.stderr)
        cfg["keys"]["pseudonym"] = {"file": "a"}
        cfg["bogus"] = 1
        r = self.run_bg("check", "--config", self.write("k3.json", json.dumps(cfg, indent=2)), "--no-keys")
        self.assertEqual(r.returncode, 1)
        self.assertIn("$.bogus", r.stderr)

    def test_check_bad_format_is_a_usage_error(self):
        r = self.run_bg("check", "--config", "x.json", "--format", "yaml")
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertIn("--format must be text or json", r.stderr)

    def test_every_command_accepts_h(self):
        cmds = [["run"], ["check"], ["geo"], ["geo", "lookup"], ["scan"], ["replay"], ["detokenize"],
                ["consent"], ["sink"], ["audit"], ["audit", "verify"], ["audit", "report"],
                ["audit", "subject"], ["audit", "volumes"], ["audit", "blocked"], ["probe"]]
        for c in cmds:
            for h in ("-h", "--help"):
                r = self.run_bg(*(c + [h]))
                self.assertEqual(r.returncode, 0, "%s %s: %s" % (" ".join(c), h, r.stderr))
                self.assertIn("usage", r.stdout.lower(), "%s %s" % (" ".join(c), h))
                self.assertEqual(r.stderr, "", "%s %s" % (" ".join(c), h))
        self.assertEqual(self.run_bg("audit").returncode, 2)  # no subcommand: still a usage error

    # -- run --------------------------------------------------------------

    def test_run_missing_config_fails_with_one_line(self):
        r = self.run_bg("run", "--config", "missing.json")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "missing.json: error: cannot read: No such file or directory\n")

    def test_run_invalid_config_fails_with_positions(self):
        path = self.write("bad.json", GOOD.replace('"max_body_bytes": 1048576', '"max_body_bytes": "1 MB"'))
        r = self.run_bg("run", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.splitlines()[0],
                         "%s:5:32: error: $.limits.max_body_bytes: must be a whole number" % path)

    def test_run_port_in_use_fails(self):
        import socket
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        text = GOOD.replace("127.0.0.1:18080", "127.0.0.1:%d" % port) \
                   .replace("127.0.0.1:18081", "127.0.0.1:%d" % bgtest.free_port())
        path = self.write("busy.json", text)
        r = self.run_bg("run", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen on 127.0.0.1:%d" % port, r.stderr)


if __name__ == "__main__":
    bgtest.main()
