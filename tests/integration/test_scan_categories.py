"""
Categories of the policy's own (policy.categories, docs/policy.md): the real
`bordergate scan --config` finds a category the policy defines, with the
sensitivity the policy gives it, and `--apply` uses its operator;
`bordergate check` names the file, line and column of a definition that
duplicates a built-in category.
"""

import json
import os
import subprocess
import unittest

import bgtest
from bgtest import BIN, make_config, route

LOYALTY = {
    "label": {"en": "Loyalty programme member number", "zh": "会员卡号"},
    "group": "account",
    "parent": "account_id",
    "sensitive": True,
    "citations": ["PIPL Art. 4 (identifies a member of the programme)"],
}


class ScanPolicyCategories(bgtest.TestCase):
    def write(self, cfg, name="cfg.json"):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            if isinstance(cfg, str):
                f.write(cfg)
            else:
                json.dump(cfg, f, indent=2, ensure_ascii=False)
        return path

    def config(self, categories):
        return make_config(
            [route("crm", "http://127.0.0.1:9", host="crm.example")],
            audit={"directory": os.path.join(self.tmpdir, "audit")},
            policy={"categories": categories},
            field_rules=[{"id": "member-no", "key": "member_no", "category": "loyalty_no"}],
            operators={"loyalty_no": {"op": "replace", "replacement": "[member]"}},
            rules=[{"id": "members", "categories": ["loyalty_no"], "bases": ["consent"],
                    "fallback": "block"}])

    def scan(self, cfg_path, payload, *args):
        body = os.path.join(self.tmpdir, "body.json")
        with open(body, "w") as f:
            f.write(payload)
        return subprocess.run([BIN, "scan", "--config", cfg_path] + list(args) + [body],
                              capture_output=True, text=True, timeout=30)

    def test_scan_finds_a_category_the_policy_defines(self):
        cfg = self.write(self.config({"loyalty_no": LOYALTY}))
        payload = '{"order":"A-1","customer":{"member_no":"M-004211","mobile":"13812345678"}}'
        r = self.scan(cfg, payload)
        self.assertEqual(r.returncode, 1, r.stderr)  # 1: findings
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        found = {x["path"]: x for x in lines}
        self.assertIn("$.customer.member_no", found, r.stdout)
        self.assertEqual(found["$.customer.member_no"]["category"], "loyalty_no")
        self.assertIs(found["$.customer.member_no"]["sensitive"], True)
        self.assertEqual(found["$.customer.mobile"]["category"], "cn_mobile")
        self.assertNotIn("M-004211", r.stdout)  # never the value
        # --apply: the category's own operator.
        r = self.scan(cfg, payload, "--apply")
        self.assertEqual(json.loads(r.stdout)["customer"]["member_no"], "[member]", r.stderr)

    def test_check_names_the_line_of_a_duplicate_of_a_builtin(self):
        cfg = self.config({"loyalty_no": LOYALTY, "email": dict(LOYALTY, parent=None)})
        del cfg["policy"]["categories"]["email"]["parent"]
        text = json.dumps(cfg, indent=2, ensure_ascii=False)
        path = self.write(text)
        r = subprocess.run([BIN, "check", "--config", path], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        line = next(i for i, s in enumerate(text.splitlines(), 1) if '"email": {' in s)
        col = text.splitlines()[line - 1].index('"email"') + 1
        self.assertIn("%s:%d:%d: error: $.policy.categories.email: \"email\" is a built-in category"
                      % (path, line, col), r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
