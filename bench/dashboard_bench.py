#!/usr/bin/env python3
"""Dashboard cost: how long the admin listener spends reading the audit log,
and whether proxied requests are delayed meanwhile.

    bench/dashboard_bench.py [--redis] [RECORDS] [BIN] [DAYS]   (default 200000, build/bordergate, 7)

Starts `bordergate run` on a temporary audit directory with a `bordergate
sink` upstream (a domestic route), then writes RECORDS synthetic decision
records beside the daemon's own file (the writer's shape: 5 findings, 3
subjects out of 20,000 people, reasons on blocks; spread over DAYS days, 8
routes each with its recipient and country), and prints:

  * rollups (audit/rollup.h): the first page load, which reads the whole
    log into the rollups and saves them, their size, and then a page load
    (/api/dashboard) over the last day and over the whole log, from the
    rollups and from the raw log (a window starting at HH:30 cannot be
    answered from hourly rollups, so it reads the raw log - the cost every
    page load had before rollups);

  * `bordergate audit report --json --by country` wall time (the CLI);
  * GET /api/report?by=country, and one page load: /api/dashboard (the
    reports by country, day, category, reason, rule and the latest blocked
    decisions in one pass) and /api/volumes;
  * with --redis (needs redis-server): the fleet's dashboard (store.redis,
    audit/rollup_fleet.h) - the same log split over 1 and then 3
    instances, each publishing its hours to one Redis: how long until
    everything is published, Redis's memory, and a page load on instance 0
    over the last day, the last 7 days and the whole log;

  * proxied request latency (p50/max over sequential GETs through the
    proxy) while nothing else runs and while the page's requests run, and
    the admin listener's own /healthz latency meanwhile (reports are read
    in slices of at most 2 ms on its loop): the admin listener runs on the control thread, the
    workers on their own, so the figures should be alike.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEOPLE = [hashlib.sha256(b"person-%d" % k).hexdigest() for k in range(20000)]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_log(d, n, days=7, part=0, parts=1, now=None):
    """The synthetic log; with PARTS > 1 only the records i % PARTS == PART
    (the same records as the whole log: a fleet of PARTS instances)."""
    rnd = random.Random(7)
    now = now or time.time()
    countries = ["US", "HK", "SG", "DE"]
    cats = ["cn_mobile", "email", "person_name", "cn_resident_id", "bank_card"]
    path = os.path.join(d, "audit-20260101-000000-000001.jsonl")  # sorts before the daemon's file
    with open(path, "w") as f:
        for i in range(n):
            t = now - days * 86400 * (n - i) / n
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"
            outcome = rnd.choice(["allow", "allow", "deidentify", "block"])
            # Pseudonyms look like the writer's (SHA-256 hex): reports compare
            # their first 16 bytes, so "%064x" of a small number made every
            # person the same one (the figures before 2026-12 counted 1 person).
            subj = [PEOPLE[rnd.randrange(20000)] for _ in range(3)]
            findings = [{"path": "$.user[%d].%s" % (k, c), "category": c, "sensitive": c == "cn_resident_id",
                         "source": "detector", "confidence": "high", "rule": "r-%s" % c, "basis": "consent",
                         "evidence": "c-%016x" % i, "action": "allow" if outcome == "allow" else "deidentify",
                         "operator": None if outcome == "allow" else "hash", "anonymized": False,
                         "subject": subj[k % 3]} for k, c in enumerate(cats)]
            rec = {"seq": i + 1, "prev": "%064x" % i, "time": ts, "type": "decision",
                   "decision_id": "%032x" % i, "caller": {"address": "10.0.0.1"}, "route": "r%d" % (i % 8),
                   "recipient": {"id": "partner-%d" % (i % 8 % 5), "legal_entity": "P", "relationship": "processor"},
                   "purpose": "support", "method": "POST", "host": "api.partner.example", "path": "/v1/x",
                   "destination": {"address": "1.2.3.4", "port": 443, "country": countries[i % 8 % 4],
                                   "region": "cross-border", "geo_source": "db"},
                   "mode": "enforce", "inspected": True, "body": "json", "outcome": outcome, "would": outcome,
                   "findings": findings, "subjects": [{"pseudonym": s} for s in subj],
                   "mechanism": "standard_contract:SC-1", "policy": {"version": "bench", "sha256": "0" * 64},
                   "bytes": {"request": 800, "forwarded": 800}, "hash": "%064x" % (i + 1)}
            if outcome == "block":
                rec["reasons"] = [{"code": "no_basis", "rule": "r-bank_card", "category": "bank_card",
                                   "path": "$.user[4].bank_card"}]
            if i % parts == part:
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return os.path.getsize(path)


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("GET", path, headers={"Host": "sink.example"})
    r = c.getresponse()
    r.read()
    c.close()
    return time.perf_counter() - t0, r.status


def latencies(port, stop, out):
    while not stop.is_set():
        out.append(get(port, "/x")[0])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


def dashboard_totals(admin, frm=None):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=600)
    c.request("GET", "/api/dashboard?limit=20" + ("&from=" + frm if frm else ""))
    doc = json.loads(c.getresponse().read())
    c.close()
    return doc


def fleet(BIN, d, N, DAYS):
    """The fleet's dashboard (store.redis): the same synthetic log split over
    1 and 3 instances, each publishing its hours to one redis-server; page
    loads on instance 0 over the last day, the last 7 days and the whole log."""
    redis = shutil.which("redis-server")
    if redis is None:
        print("fleet: redis-server is not installed; skipped")
        return
    rport = free_port()
    rp = subprocess.Popen([redis, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    now = time.time()
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(rport), "PING"], stdout=subprocess.PIPE,
                              text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        for ninst in (1, 3):
            subprocess.run(["redis-cli", "-p", str(rport), "FLUSHALL"], stdout=subprocess.DEVNULL, check=True)
            admins = []
            for k in range(ninst):
                audit = os.path.join(d, "fleet-%d-%d" % (ninst, k))
                os.mkdir(audit)
                port, admin = free_port(), free_port()
                cfg = {"version": 1, "listen": "127.0.0.1:%d" % port, "admin": {"listen": "127.0.0.1:%d" % admin},
                       "geo": {"overrides": {"cidrs": {"127.0.0.0/8": "CN"}}},
                       "routes": [{"id": "sink", "match": {"host": "sink.example"},
                                   "upstream": "http://127.0.0.1:9", "allow_private_addresses": True}],
                       "audit": {"directory": audit}, "log": {"level": "warn"},
                       "store": {"redis": {"url": "redis://127.0.0.1:%d/0" % rport}}}
                cpath = os.path.join(d, "fleet-%d-%d.json" % (ninst, k))
                with open(cpath, "w") as f:
                    json.dump(cfg, f)
                procs.append(subprocess.Popen([BIN, "run", "--config", cpath],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                for _ in range(200):
                    try:
                        get(admin, "/healthz")
                        break
                    except OSError:
                        time.sleep(0.05)
                # After the daemon opened its own file (the synthetic records
                # are not chained); its publisher rebuilds over them.
                write_log(audit, N, DAYS, part=k, parts=ninst, now=now)
                admins.append(admin)
            t0 = time.perf_counter()
            while True:
                try:
                    doc = dashboard_totals(admins[0])
                    if doc.get("scope", {}).get("instances") == ninst and \
                            doc["reports"]["country"]["totals"]["decisions"] >= N:
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.5)
            published = time.perf_counter() - t0
            info = subprocess.run(["redis-cli", "-p", str(rport), "INFO", "memory"], stdout=subprocess.PIPE,
                                  text=True).stdout
            used = [ln.split(":")[1].strip() for ln in info.splitlines() if ln.startswith("used_memory_human:")]
            print("fleet of %d instance(s): all %d records published in %.1f s (each instance builds its"
                  " rollups and sends its hours); Redis uses %s" % (ninst, N, published, used[0] if used else "?"))
            for label, back in (("last day", 1), ("last 7 days", 7), ("whole log (%d days)" % DAYS, DAYS + 1)):
                frm = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(now - back * 86400))
                runs = []
                for _ in range(3):
                    t1 = time.perf_counter()
                    doc = dashboard_totals(admins[0], frm)
                    runs.append(time.perf_counter() - t1)
                    assert doc["scope"]["source"] == "fleet", doc.get("scope")
                print("  fleet page load, %-22s %.3f s (best of 3; %d decisions, %d people)"
                      % (label + ":", min(runs), doc["reports"]["country"]["totals"]["decisions"],
                         doc["reports"]["country"]["totals"]["subjects"]))
            for p in procs:
                p.send_signal(signal.SIGTERM)
                p.wait(60)
            procs = []
    finally:
        for p in procs:
            p.kill()
        rp.kill()
        rp.wait()


def main():
    args = [a for a in sys.argv[1:] if a != "--redis"]
    with_redis = len(args) != len(sys.argv) - 1
    N = int(args[0]) if len(args) > 0 else 200000
    BIN = args[1] if len(args) > 1 else os.path.join(HERE, "..", "build", "bordergate")
    DAYS = int(args[2]) if len(args) > 2 else 7
    d = tempfile.mkdtemp(prefix="bg-dashbench-")
    procs = []
    try:
        audit = os.path.join(d, "audit")
        os.mkdir(audit)
        sink_port = free_port()
        procs.append(subprocess.Popen([BIN, "sink", "--listen", "127.0.0.1:%d" % sink_port],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        port, admin = free_port(), free_port()
        cfg = {"version": 1, "listen": "127.0.0.1:%d" % port, "admin": {"listen": "127.0.0.1:%d" % admin},
               "geo": {"overrides": {"cidrs": {"127.0.0.0/8": "CN"}}},
               "routes": [{"id": "sink", "match": {"host": "sink.example"},
                           "upstream": "http://127.0.0.1:%d" % sink_port, "allow_private_addresses": True}],
               "audit": {"directory": audit}, "log": {"level": "warn"}}
        with open(os.path.join(d, "cfg.json"), "w") as f:
            json.dump(cfg, f)
        procs.append(subprocess.Popen([BIN, "run", "--config", os.path.join(d, "cfg.json")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            try:
                get(admin, "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        # Written after the daemon opened (and checked) its own file: the
        # synthetic records are not hash-chained, and reports do not check.
        size = write_log(audit, N, DAYS)
        print("audit log: %d decision records over %d days, %.1f MB" % (N, DAYS, size / 1e6))

        # Rollups: the first load reads the whole log into them.
        first, status = get(admin, "/api/dashboard?limit=20")
        assert status == 200
        rdir = os.path.join(audit, "audit.rollup")
        rsize = sum(os.path.getsize(os.path.join(rdir, x)) for x in os.listdir(rdir))
        print("first page load (builds the rollups from the whole log): %.2f s (%.0f records/s);"
              " rollups %.1f MB (%.0f%% of the log)" % (first, N / first, rsize / 1e6, 100 * rsize / size))
        now = time.time()
        day = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(now - 86400))
        whole = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(now - (DAYS + 1) * 86400))
        for label, frm in (("last day", day), ("whole log (%d days)" % DAYS, whole)):
            runs = [get(admin, "/api/dashboard?limit=20&from=" + frm)[0] for _ in range(3)]
            raw = get(admin, "/api/dashboard?limit=20&from=" + frm.replace(":00Z", ":30Z"))[0]
            print("page load, %-22s from rollups: %.3f s (best of 3)   from the raw log: %.2f s"
                  % (label + ":", min(runs), raw))

        t0 = time.perf_counter()
        subprocess.run([BIN, "audit", "report", "--json", "--by", "country", audit], check=True,
                       stdout=subprocess.DEVNULL)
        cli = time.perf_counter() - t0
        api, status = get(admin, "/api/report?by=country")
        assert status == 200
        print("CLI audit report --by country: %.2f s (%.0f records/s)" % (cli, N / cli))
        print("GET /api/report?by=country:    %.2f s (%.0f records/s)" % (api, N / api))

        base = []
        stop = threading.Event()
        th = threading.Thread(target=latencies, args=(port, stop, base))
        th.start()
        time.sleep(2)
        stop.set()
        th.join()

        during, probes = [], []
        stop = threading.Event()
        th = threading.Thread(target=latencies, args=(port, stop, during))
        th.start()

        def probe():
            while not stop.is_set():
                probes.append(get(admin, "/healthz")[0])
                time.sleep(0.1)
        th2 = threading.Thread(target=probe)
        th2.start()
        t0 = time.perf_counter()
        for p in ("/api/dashboard?limit=20", "/api/volumes"):
            assert get(admin, p)[1] == 200, p
        page = time.perf_counter() - t0
        stop.set()
        th.join()
        th2.join()
        print("one page load (/api/dashboard: 5 reports + blocked in one pass; /api/volumes): %.2f s"
              " (%.0f records/s)" % (page, N / page))
        print("proxied GETs, idle admin:   %d requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (len(base), pct(base, 0.5), pct(base, 0.99), max(base) * 1000))
        print("proxied GETs, during scans: %d requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (len(during), pct(during, 0.5), pct(during, 0.99), max(during) * 1000))
        print("ratio p50 during/idle: %.2fx" % (pct(during, 0.5) / pct(base, 0.5)))
        print("admin /healthz during the scans: %d probes, p50 %.2f ms, max %.2f ms"
              % (len(probes), pct(probes, 0.5), max(probes) * 1000))
        if with_redis:
            fleet(BIN, d, N, DAYS)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
