#!/usr/bin/python3
"""The full pipeline's CPU per request with the consent registry in a file
and in Redis (issue 16): one daemon (2 workers), a cross-border sink, a
policy whose e-mail rule needs consent, SUBJECTS consented subjects; N
requests from 4 client threads, each carrying one subject's e-mail (so every
request looks a consent up). Prints the daemon's CPU (user + system, from
/proc) per request and the request rate for each backend, three rounds
alternating the backends (the first Redis round fills the cache: SUBJECTS
misses).

    bench/consent_pipeline.py [N] [SUBJECTS]     (default 20000, 1000)

Needs redis-server (a throw-away one is started without persistence).
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

KEY_ENV = {"BG_SUBJECT_KEY": "6b" * 32, "BG_PSEUDONYM_KEY": "5a" * 32}


def config(tmp, sink_port, port, admin_port, redis_url):
    cfg = {
        "version": 1, "workers": 2, "listen": "127.0.0.1:%d" % port,
        "admin": {"listen": "127.0.0.1:%d" % admin_port},
        "log": {"level": "warn"},
        "routes": [{"id": "us", "match": {"host": "us.example"}, "upstream": "http://127.0.0.2:%d" % sink_port,
                    "allow_private_addresses": True, "recipient": "partner-us", "purpose": "support",
                    "subjects": {"id": "$.user.id"}}],
        "geo": {"overrides": {"cidrs": {"127.0.0.2/32": "US"}}},
        "keys": {"pseudonym": {"env": "BG_PSEUDONYM_KEY"}, "subject": {"env": "BG_SUBJECT_KEY"}},
        "policy": {"version": "bench", "mode": "enforce", "default_fallback": "block",
                   "default_operator": "redact"},
        "recipients": {"partner-us": {"legal_entity": "Partner US Inc.", "relationship": "third_party",
                                      "country": "US", "purposes": ["support"],
                                      "mechanism": {"type": "standard_contract", "reference": "SC-1",
                                                    "expires": "2030-12-31"}}},
        "rules": [{"id": "email", "categories": ["email"], "recipients": ["partner-us"],
                   "bases": ["consent"], "fallback": "deidentify"}],
        "consent": {"registry": os.path.join(tmp, "consents.jsonl")},
        "audit": {"directory": os.path.join(tmp, "audit"), "durability": "relaxed"},
    }
    if redis_url:
        cfg["store"] = {"redis": {"url": redis_url}}
    return cfg


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(name, tmp, sink_port, n, subjects, redis_url, grant):
    port, admin = benchlib.free_port(), benchlib.free_port()
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(config(tmp, sink_port, port, admin, redis_url), f)
    key = os.path.join(os.path.dirname(tmp), "subject.key")
    env = dict(os.environ, **KEY_ENV)
    cenv = dict(env, BG_CONSENT_KEY=key)
    if redis_url:
        cenv["BG_CONSENT_REDIS"] = redis_url
    else:
        cenv["BG_CONSENT_REGISTRY"] = os.path.join(tmp, "consents.jsonl")
    for i in range(subjects if grant else 0):
        subprocess.run([benchlib.BIN, "consent", "grant", "--subject", "s-%d" % i, "--recipient", "partner-us",
                        "--purpose", "support", "--region", "*"], env=cenv, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = subprocess.Popen([benchlib.BIN, "run", "--config", path], env=env, stderr=subprocess.DEVNULL)
    try:
        benchlib.wait_port(port)
        time.sleep(0.5)
        per = n // 4

        def client(k):
            c = http.client.HTTPConnection("127.0.0.1", port)
            for i in range(per):
                s = (k * per + i) % subjects
                body = json.dumps({"user": {"id": "s-%d" % s, "email": "p%d@example.org" % s}})
                c.request("POST", "/v1", body=body, headers={"Host": "us.example",
                                                              "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
            c.close()

        c0, t0 = cpu_s(d.pid), time.time()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        c1, t1 = cpu_s(d.pid), time.time()
        print("%-8s %8.1f us CPU per request   %7.0f requests/s   (%d requests, %d subjects)"
              % (name, (c1 - c0) / (4 * per) * 1e6, 4 * per / (t1 - t0), 4 * per, subjects))
    finally:
        d.terminate()
        d.wait()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    subjects = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    if not shutil.which("redis-server"):
        raise SystemExit("consent_pipeline: redis-server is not installed")
    tmp = tempfile.mkdtemp(prefix="bordergate-consent-pipeline.")
    procs = []
    try:
        with open(os.path.join(tmp, "subject.key"), "w") as f:
            f.write("6b" * 32 + "\n")
        os.chmod(os.path.join(tmp, "subject.key"), 0o600)
        sink_port = benchlib.free_port()
        procs.append(subprocess.Popen([benchlib.BIN, "sink", "--listen", "127.0.0.2:%d" % sink_port],
                                      stdout=subprocess.DEVNULL))
        time.sleep(0.3)  # the sink listens on 127.0.0.2
        rport = benchlib.free_port()
        procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", tmp],
                                      stdout=subprocess.DEVNULL))
        benchlib.wait_port(rport)
        os.mkdir(os.path.join(tmp, "file"))
        os.mkdir(os.path.join(tmp, "redis"))
        # Alternate the backends three times: the machine is shared, so one
        # run alone says little (the consents are granted in the first round).
        for r in range(3):
            run("file", os.path.join(tmp, "file"), sink_port, n, subjects, None, r == 0)
            run("redis", os.path.join(tmp, "redis"), sink_port, n, subjects,
                "redis://127.0.0.1:%d/0" % rport, r == 0)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
