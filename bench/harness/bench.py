#!/usr/bin/env python3
"""Side-by-side benchmark of inference-operator (C) and its two peers
(controller-runtime in Go, kube-rs in Rust) on the local control plane.

For each N, each run and each operator in turn, on a fresh namespace set:
start the operator, wait until it is ready, read its RSS; create N
InferenceServices as fast as the API server takes them (bench/harness/loadgen,
which also watches and timestamps InferenceServices, Deployments and
Services); read RSS after convergence; keep it running for the steady-state
period (30 s resyncs) and read RSS and CPU seconds again; stop it; delete
what it made.  Writes bench/results/<stamp>.{json,md,png}.  Nothing here is a
pass/fail test.

Run through bench/run.sh (`make bench`); see bench/README.md.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("BENCH_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inference-operator", "bench")
CRD = os.path.join(REPO, "charts/inference-operator/crds/inferenceservices.ai.example.com.yaml")
CLK_TCK = os.sysconf("SC_CLK_TCK")
OPERATORS = ["ours", "go", "rust"]
LABELS = {"ours": "inference-operator (C)", "go": "controller-runtime (Go)", "rust": "kube-rs (Rust)"}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


# ---------------------------------------------------------------- /proc


def proc_status(pid):
    """VmRSS, VmHWM (kB) and thread count of pid."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    return out


def proc_rss_by_mapping(pid):
    """Resident kB by kind of mapping (heap, thread stacks and other anonymous
    memory, files): where the memory is, for the JSON."""
    out = {"heap": 0, "stack": 0, "anon": 0, "file": 0}
    kind = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if not head:
                    continue
                if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                    name = head[5] if len(head) > 5 else ""
                    kind = ("heap" if name == "[heap]" else "stack" if name.startswith("[stack")
                            else "anon" if name == "" or name.startswith("[anon") else
                            "file" if name.startswith("/") else "anon")
                elif head[0] == "Rss:" and kind:
                    out[kind] += int(head[1])
    except OSError:
        pass
    return out


def proc_cpu(pid):
    """utime + stime of pid in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- operators


class Operator:
    """One operator process: start, ready, stats, stop."""

    def __init__(self, name, binary, workdir, kubeconfig, extra=()):
        self.name, self.binary, self.workdir, self.kubeconfig = name, binary, workdir, kubeconfig
        self.extra = list(extra)
        self.proc = None
        self.log_path = None

    def start(self, log_path):
        self.log_path = log_path
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        if self.name == "ours":
            certs = os.path.join(self.workdir, "certs")
            if not os.path.exists(os.path.join(certs, "ca.crt")):
                os.makedirs(certs, exist_ok=True)
                sh([self.binary, "certs", "--out", certs, "--ip", "127.0.0.1"], stdout=subprocess.DEVNULL)
            self.ca = os.path.join(certs, "ca.crt")
            cmd = [self.binary, "serve", "--reconciler-only", "--listen", "127.0.0.1:0",
                   "--cert-dir", certs, "--kubeconfig", self.kubeconfig, *self.extra]
        elif self.name == "go":
            self.probe_port, self.metrics_port = free_port(), free_port()
            cmd = [self.binary, f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                   f"--health-probe-bind-address=127.0.0.1:{self.probe_port}"]
        else:
            env.setdefault("RUST_LOG", "info")
            cmd = [self.binary]
        self.logf = open(log_path, "w")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log(f"{self.name}: pid {self.proc.pid}: {' '.join(cmd)}")

    def _log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _ready_once(self):
        if self.name == "ours":
            m = re.search(r'"msg":"serving".*?"port":(\d+)', self._log_text())
            if not m:
                return False
            ctx = ssl.create_default_context(cafile=self.ca)
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{m.group(1)}/readyz", context=ctx, timeout=2) as r:
                    return r.status == 200
            except Exception:
                return False
        if self.name == "go":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.probe_port}/readyz", timeout=2) as r:
                    return r.status == 200
            except Exception:
                return False
        return "caches synced" in self._log_text()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log_path}")
            if self._ready_once():
                return time.monotonic() - self.t_start
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    def stats(self):
        st = proc_status(self.proc.pid)
        st["cpu_s"] = proc_cpu(self.proc.pid)
        st["rss_by_mapping"] = proc_rss_by_mapping(self.proc.pid)
        return st

    def stop(self, grace=15):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"{self.name}: still running {grace} s after SIGTERM; SIGKILL")
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


# ---------------------------------------------------------------- cluster


class Cluster:
    def __init__(self, cluster_dir):
        self.dir = cluster_dir
        self.kubeconfig = os.path.join(cluster_dir, "kubeconfig")
        self.env = dict(os.environ, CLUSTER_DIR=cluster_dir)
        out = sh(["bash", os.path.join(REPO, "tests/cluster/env.sh")], capture_output=True, env=self.env).stdout
        m = re.search(r"^export KUBECTL=(.*)$", out, re.M)
        self.kubectl = m.group(1).strip("'\"") if m else "kubectl"

    def up(self, fresh):
        if fresh:
            sh([os.path.join(REPO, "tests/cluster/down.sh")], env=self.env)
        sh([os.path.join(REPO, "tests/cluster/up.sh")], env=self.env)
        self.state = {}
        with open(os.path.join(self.dir, "state.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.state[k] = v.strip("'\"")

    def down(self):
        sh([os.path.join(REPO, "tests/cluster/down.sh")], env=self.env)

    def apiserver_pid(self):
        for k in ("APISERVER_PID", "KUBE_APISERVER_PID"):
            if k in self.state:
                return int(self.state[k])
        return None

    def etcd_pid(self):
        return int(self.state["ETCD_PID"]) if "ETCD_PID" in self.state else None

    def kubectl_run(self, *args, **kw):
        return sh([self.kubectl, "--kubeconfig", self.kubeconfig, *args], **kw)

    def requests(self):
        """kube-apiserver's apiserver_request_total summed by (verb, resource,
        subresource): {"PATCH deployments": count, ...}; {} if unreadable."""
        try:
            text = self.kubectl_run("get", "--raw", "/metrics", capture_output=True).stdout
        except subprocess.CalledProcessError:
            return {}
        out = {}
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels, _, value = line.rpartition(" ")
            lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            key = f"{lab.get('verb', '?')} {lab.get('resource', '')}"
            if lab.get("subresource"):
                key += "/" + lab["subresource"]
            out[key] = out.get(key, 0) + int(float(value))
        return out

    def install_crd(self):
        self.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", CRD, stdout=subprocess.DEVNULL)
        self.kubectl_run("wait", "--for=condition=Established", "--timeout=60s",
                         "crd/inferenceservices.ai.example.com", stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- one measurement


WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")


# Before each operator starts, the control plane must be as quiet as it was
# for the first: a peer that retried Service applies under load leaves
# IPAddresses whose Services are gone, and kube-apiserver's repair loop
# spends minutes deleting them (and posting Events about them) while the next
# operator is measured.  Bounded: after QUIESCE_MAX_S the run starts anyway
# and the JSON says so.
QUIESCE_MAX_S = 600
QUIESCE_CPU = 0.15      # kube-apiserver cores, averaged over QUIESCE_WINDOW_S
QUIESCE_WINDOW_S = 5


def count_objects(cluster, resource):
    """How many objects of resource exist cluster-wide, or None."""
    try:
        out = cluster.kubectl_run("get", resource, "-A", "--no-headers", "-o", "name",
                                  capture_output=True).stdout
    except subprocess.CalledProcessError:
        return None
    return len([l for l in out.splitlines() if l.strip()])


def quiesce(cluster):
    """Wait until no IPAddress outlives its Service and kube-apiserver idles.
    Returns {"seconds", "quiet", "apiserver_cores", "leaked_ips"}."""
    start = time.monotonic()
    pid = cluster.apiserver_pid()
    cores = leaked = None
    while True:
        ips, svcs = count_objects(cluster, "ipaddresses"), count_objects(cluster, "services")
        leaked = None if ips is None or svcs is None else max(0, ips - svcs)
        cores = None
        if pid:
            c0 = proc_cpu(pid)
            time.sleep(QUIESCE_WINDOW_S)
            cores = (proc_cpu(pid) - c0) / QUIESCE_WINDOW_S
        quiet = (leaked is None or leaked == 0) and (cores is None or cores < QUIESCE_CPU)
        waited = time.monotonic() - start
        if quiet or waited >= QUIESCE_MAX_S:
            if not quiet:
                log(f"control plane not quiet after {waited:.0f} s ({leaked} leaked "
                    f"IPAddresses, kube-apiserver {cores:.2f} cores); starting anyway")
            elif waited > QUIESCE_WINDOW_S + 1:
                log(f"control plane quiet after {waited:.0f} s")
            return {"seconds": round(waited, 1), "quiet": quiet,
                    "apiserver_cores": None if cores is None else round(cores, 3),
                    "leaked_ips": leaked}
        if not pid:
            time.sleep(QUIESCE_WINDOW_S)


def request_delta(before, after):
    """after − before, non-zero entries only."""
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0)}


def writes(delta):
    return sum(v for k, v in delta.items() if k.split()[0] in WRITE_VERBS)


def measure(op, cluster, loadgen, n, namespaces, steady_s, workers, timeout_s):
    res = {"operator": op.name, "n": n, "namespaces": namespaces, "loadavg": {"start": os.getloadavg()[0]}}
    op.wait_ready()
    res["ready_s"] = round(time.monotonic() - op.t_start, 3)
    res["startup"] = op.stats()
    time.sleep(3)
    res["startup_idle"] = op.stats()
    api_pid = cluster.apiserver_pid()
    api_cpu0 = proc_cpu(api_pid) if api_pid else None
    cpu0 = op.stats()["cpu_s"]
    req0 = cluster.requests()
    log(f"{op.name}: ready in {res['ready_s']} s, RSS {res['startup']['VmRSS']} kB "
        f"{res['startup']['rss_by_mapping']}; creating {n}")
    t0 = time.monotonic()
    p = subprocess.run([loadgen, "run", "--kubeconfig", cluster.kubeconfig, "--namespaces", ",".join(namespaces),
                        "--n", str(n), "--workers", str(workers), "--timeout", f"{timeout_s}s"],
                       capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    try:
        res["load"] = json.loads(p.stdout)
        res["load"]["timeout_s"] = timeout_s
    except json.JSONDecodeError:
        raise RuntimeError(f"loadgen failed ({p.returncode}): {p.stderr[-2000:]}")
    res["converged"] = op.stats()
    res["loadavg"]["converged"] = os.getloadavg()[0]
    req1 = cluster.requests()
    # Everything the API server served meanwhile, the load generator's N
    # creates and its watches included (the same for every operator).
    res["converge_requests"] = request_delta(req0, req1)
    res["converge_cpu_s"] = round(res["converged"]["cpu_s"] - cpu0, 2)
    if api_pid:
        res["converge_apiserver_cpu_s"] = round(proc_cpu(api_pid) - api_cpu0, 2)
    conv = res["load"].get("convergence_s")
    log(f"{op.name}: n={n}: " + (f"converged in {conv:.1f} s" if conv is not None else
                                 f"NOT converged after {timeout_s} s") + " "
        f"(wall {time.monotonic() - t0:.1f} s), RSS {res['converged']['VmRSS']} kB; steady state {steady_s} s")
    # Steady state: nothing changes; every operator resyncs every 30 s.
    cpu0 = op.stats()["cpu_s"]
    api0 = proc_cpu(api_pid) if api_pid else None
    peak, t_end = 0, time.monotonic() + steady_s
    while time.monotonic() < t_end:
        time.sleep(min(5, max(0, t_end - time.monotonic())))
        if op.proc.poll() is not None:
            raise RuntimeError(f"{op.name} exited during the steady state; see {op.log_path}")
        peak = max(peak, op.stats()["VmRSS"])
    res["steady"] = op.stats()
    res["loadavg"]["steady"] = os.getloadavg()[0]
    res["steady_requests"] = request_delta(req1, cluster.requests())
    res["steady"]["VmRSS_peak_sampled"] = peak
    res["steady_s"] = steady_s
    res["steady_cpu_s"] = round(res["steady"]["cpu_s"] - cpu0, 2)
    if api_pid:
        res["steady_apiserver_cpu_s"] = round(proc_cpu(api_pid) - api0, 2)
    res["per_isvc_bytes"] = round((res["steady"]["VmRSS"] - res["startup"]["VmRSS"]) * 1024 / n)
    log(f"{op.name}: n={n}: steady RSS {res['steady']['VmRSS']} kB {res['steady']['rss_by_mapping']}, "
        f"CPU {res['steady_cpu_s']} s (API server {res.get('steady_apiserver_cpu_s')} s)")
    return res


# ---------------------------------------------------------------- report


def agg(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "runs": len(vals)}


ROWS = [
    # (key, label, getter, format)
    ("ready_s", "time to ready (s)", lambda r: r["ready_s"], "{:.2f}"),
    ("rss_startup_mb", "RSS at startup (MB)", lambda r: r["startup_idle"]["VmRSS"] / 1024, "{:.1f}"),
    ("rss_converged_mb", "RSS after convergence (MB)", lambda r: r["converged"]["VmRSS"] / 1024, "{:.1f}"),
    ("hwm_converged_mb", "peak RSS (VmHWM) by convergence (MB)", lambda r: r["converged"]["VmHWM"] / 1024, "{:.1f}"),
    ("rss_steady_mb", "RSS after steady state (MB)", lambda r: r["steady"]["VmRSS"] / 1024, "{:.1f}"),
    ("hwm_steady_mb", "VmHWM after steady state (MB)", lambda r: r["steady"]["VmHWM"] / 1024, "{:.1f}"),
    ("per_isvc_bytes", "RSS growth per InferenceService, incl. its Deployment + Service (bytes)",
     lambda r: r["per_isvc_bytes"], "{:.0f}"),
    ("per_object_bytes", "the same per cached object (÷ 3: InferenceService, Deployment, Service) (bytes)",
     lambda r: r["per_isvc_bytes"] / 3, "{:.0f}"),
    ("convergence_s", "convergence: all Deployments + Services + statuses (s)",
     lambda r: None if r["load"].get("timed_out") else r["load"]["convergence_s"], "{:.1f}"),
    ("deployments_s", "all Deployments exist (s)", lambda r: r["load"]["all_deployments_s"], "{:.1f}"),
    ("dep_p50_ms", "create→Deployment p50 (ms)", lambda r: r["load"]["deployment_latency_ms"]["p50"], "{:.0f}"),
    ("dep_p99_ms", "create→Deployment p99 (ms)", lambda r: r["load"]["deployment_latency_ms"]["p99"], "{:.0f}"),
    ("status_p99_ms", "create→status p99 (ms)",  # over all N: none if some never got a status
     lambda r: r["load"]["status_latency_ms"]["p99"] if r["load"]["statuses_seen"] >= r["n"] else None, "{:.0f}"),
    ("create_rate", "create rate reached (InferenceServices/s)", lambda r: r["load"]["create_rate_per_s"], "{:.0f}"),
    ("converge_writes", "API writes during creation + convergence, per InferenceService, less its create",
     lambda r: (writes(r["converge_requests"]) - r["n"]) / r["n"], "{:.2f}"),
    ("steady_requests", "API requests in steady state, watches excluded (per steady period)",
     lambda r: sum(v for k, v in r["steady_requests"].items() if not k.startswith("WATCH")), "{:.0f}"),
    ("converge_cpu_s", "operator CPU during creation + convergence (s)", lambda r: r["converge_cpu_s"], "{:.1f}"),
    ("steady_cpu_s", "operator CPU in steady state (s per steady period)", lambda r: r["steady_cpu_s"], "{:.2f}"),
    ("steady_apiserver_cpu_s", "kube-apiserver CPU in steady state (s per steady period)",
     lambda r: r.get("steady_apiserver_cpu_s"), "{:.2f}"),
    ("threads", "threads after steady state", lambda r: r["steady"].get("Threads"), "{:.0f}"),
    ("loadavg", "machine load (1-min average) at convergence", lambda r: r["loadavg"]["converged"], "{:.1f}"),
]


def summarize(runs, ops, ns_list):
    summary = {}
    for op in ops:
        for n in ns_list:
            rs = [r for r in runs if r["operator"] == op and r["n"] == n and "error" not in r]
            if not rs:
                continue
            s = summary.setdefault(op, {}).setdefault(str(n), {})
            stuck = [r for r in rs if r["load"].get("timed_out")]
            if stuck:
                L = stuck[0]["load"]
                s["not_converged"] = (f"{len(stuck)}/{len(rs)} run(s) not converged after {L.get('timeout_s', '?')} s: "
                                      f"{L['deployments_seen']} Deployments, {L['services_seen']} Services, "
                                      f"{L['statuses_seen']} statuses of {n}")
            for key, _, get, _ in ROWS:
                vals = []
                for r in rs:
                    try:
                        vals.append(get(r))
                    except (KeyError, TypeError):
                        vals.append(None)
                s[key] = agg(vals)
    return summary


def fmt_cell(a, f):
    if not a:
        return "–"
    cell = f.format(a["median"])
    if a["runs"] > 1:
        cell += f" ({f.format(a['min'])}–{f.format(a['max'])})"
    return cell


def human_size(b):
    return f"{b / 1e6:.1f} MB" if b >= 1e5 else f"{b / 1e3:.0f} kB"


def markdown(doc):
    ops, ns_list, summary, meta = doc["operators"], doc["n"], doc["summary"], doc["meta"]
    out = [f"# inference-operator benchmark — {meta['started']}", ""]
    out.append(f"{meta['machine']}; Kubernetes {meta['kubernetes']} (local kube-apiserver + etcd, no kubelet); "
               f"{runs_text(meta)}; "
               f"steady state {meta['steady_s']} s with 30 s resyncs; {meta['workers']} concurrent creates.")
    if "loadavg_end" in meta:
        out.append(f"Machine load (1-min average): {meta['loadavg_start']:.1f} at the start, "
                   f"{meta['loadavg_end']:.1f} at the end (2 cores, shared: above 2 the operators wait for CPU).")
    for note in meta.get("notes", []):
        out.append(f"Note: {note}.")
    if meta.get("ours_args"):
        out.append(f"**Not defaults:** ours ran with `{meta['ours_args']}`.")
    out.append("")
    head = "| figure | " + " | ".join(f"{LABELS[o]} N={n}" for n in ns_list for o in ops) + " |"
    out += [head, "|---|" + "---|" * (len(ns_list) * len(ops))]
    for key, label, _, f in ROWS:
        cells = [fmt_cell(summary.get(o, {}).get(str(n), {}).get(key), f) for n in ns_list for o in ops]
        if all(c == "–" for c in cells):
            continue
        out.append(f"| {label} | " + " | ".join(cells) + " |")
        if key == "convergence_s":
            stuck = [summary.get(o, {}).get(str(n), {}).get("not_converged") for n in ns_list for o in ops]
            if any(stuck):
                out.append("| not converged | " + " | ".join(x or "" for x in stuck) + " |")
    out += ["", "| | " + " | ".join(LABELS[o] for o in ops) + " |", "|---|" + "---|" * len(ops)]
    sizes = doc["sizes"]
    out.append("| binary size | " + " | ".join(human_size(sizes[o]["binary_bytes"]) if o in sizes else "–"
                                             for o in ops) + " |")
    out.append("| container image | " + " | ".join(
        human_size(sizes[o]["image_bytes"]) if sizes.get(o, {}).get("image_bytes") else "– (none built)"
        for o in ops) + " |")
    out.append("| framework | " + " | ".join(meta["frameworks"].get(o, "") for o in ops) + " |")
    out.append("| reconcile workers / client rate limit (defaults) | " +
               " | ".join(meta["defaults"].get(o, "") for o in ops) + " |")
    wh = doc.get("webhook")
    if wh:
        out += ["", f"Webhook (ours, from {wh['source']}; TLS, /validate and /mutate):", "",
                "| route | connections | requests/s | p50 (µs) | p99 (µs) |", "|---|---|---|---|---|"]
        for row in wh["rows"]:
            out.append(f"| {row['route']} | {row['conns']} | {row['rps']} | {row['p50_us']} | {row['p99_us']} |")
    out += ["", "How measured: RSS is VmRSS/VmHWM from /proc/PID/status; CPU is utime+stime from /proc/PID/stat; "
            "latencies are local monotonic times of watch ADDED events (InferenceService → its Deployment) seen by "
            "bench/harness/loadgen, the same program for all three; convergence is from the first create request "
            "until every Deployment, Service and first status has been seen. Operators run one at a time, each on "
            "fresh namespaces of an emptied cluster. Per-InferenceService growth = (steady RSS − startup RSS) / N.", ""]
    return "\n".join(out)


def gnuplot_chart(doc, png):
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not found (apt-get install -y gnuplot-nox): no chart")
        return False
    base = png[:-4]
    series = []
    for op in doc["operators"]:
        rows = []
        s0 = doc["summary"].get(op, {})
        starts = [v["rss_startup_mb"]["median"] for v in s0.values() if v.get("rss_startup_mb")]
        if starts:
            rows.append((0, statistics.median(starts), statistics.median(starts)))
        for n in doc["n"]:
            v = s0.get(str(n), {})
            if v.get("rss_steady_mb"):
                rows.append((n, v["rss_steady_mb"]["median"], v["hwm_steady_mb"]["median"]))
        if rows:
            path = f"{base}.{op}.dat"
            with open(path, "w") as f:
                for r in rows:
                    f.write(f"{r[0]} {r[1]:.2f} {r[2]:.2f}\n")
            series.append((op, path))
    if not series:
        return False
    plots = []
    colors = {"ours": "#1b7837", "go": "#2166ac", "rust": "#b2182b"}
    for op, path in series:
        plots.append(f"'{path}' using 1:2 with linespoints lw 2 pt 7 lc rgb '{colors[op]}' title '{LABELS[op]} VmRSS'")
        plots.append(f"'{path}' using 1:3 with lines dt 2 lc rgb '{colors[op]}' title '{LABELS[op]} VmHWM'")
    labels = ""
    for op in doc["operators"]:
        for n in doc["n"]:
            v = doc["summary"].get(op, {}).get(str(n), {})
            if v.get("not_converged") and v.get("rss_steady_mb"):
                labels += (f"set label 'not converged' at {n},{v['rss_steady_mb']['median']:.1f} "
                           f"right offset -1,0 tc rgb '{colors[op]}'\n")
    script = f"""set terminal pngcairo size 900,560 font 'sans,10'
{labels}set output '{png}'
set title 'Operator memory against the number of InferenceServices (each with a Deployment and a Service)'
set xlabel 'InferenceServices (0 = at startup)'
set ylabel 'MB'
set key top left
set grid
set xrange [0:*]
set yrange [0:*]
plot {', '.join(plots)}
"""
    r = subprocess.run([gp], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        # pngcairo may be missing in some gnuplot builds; fall back to png
        r = subprocess.run([gp], input=script.replace("pngcairo", "png"), text=True, capture_output=True)
    for _, path in series:
        os.remove(path)
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr.strip()}")
        return False
    return True


# ---------------------------------------------------------------- metadata


def versions():
    v = {}
    try:
        v["go"] = sh(["go", "version"], capture_output=True).stdout.split()[2]
    except Exception:
        pass
    try:
        v["rustc"] = sh(["rustc", "--version"], capture_output=True).stdout.split()[1]
    except Exception:
        pass
    try:
        with open(os.path.join(REPO, "bench/peers/go/go.mod")) as f:
            gm = f.read()
        for mod in ("sigs.k8s.io/controller-runtime", "k8s.io/client-go"):
            m = re.search(rf"^\s*{re.escape(mod)} (v\S+)", gm, re.M)
            if m:
                v[mod] = m.group(1)
    except OSError:
        pass
    try:
        with open(os.path.join(REPO, "bench/peers/rust/Cargo.lock")) as f:
            lock = f.read()
        for crate in ("kube", "k8s-openapi", "tokio", "rustls", "hyper"):
            m = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
            if m:
                v[crate] = m.group(1)
    except OSError:
        pass
    return v


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB"


def image_size(path):
    return os.path.getsize(path) if path and os.path.exists(path) else None


def webhook_figures(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            d = json.load(f)
        rows = [r for r in d.get("rows", []) if r.get("target") == "ours"]
        return {"source": os.path.relpath(path, REPO), "rows": rows, "rss_kb": d.get("rss_kb", {}).get("ours")}
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- main


def parse_runs(spec, ns_list):
    """--runs: "3" for every N, or "1000:3,5000:1" (an N not named: 1)."""
    if ":" not in spec:
        r = int(spec)
        if r < 1:
            raise ValueError("runs must be at least 1")
        return {n: r for n in ns_list}
    out = {n: 1 for n in ns_list}
    for part in spec.split(","):
        n, _, r = part.partition(":")
        if int(n) not in out or int(r) < 1:
            raise ValueError(f"{part!r}: N must be one of --n and runs at least 1")
        out[int(n)] = int(r)
    return out


def runs_text(meta):
    per = meta.get("runs_per_n") or {}
    if len(set(per.values())) > 1:
        return "runs per cell: " + ", ".join(f"{r} at N={n}" for n, r in per.items()) + \
            " (median (min–max) where more than 1)"
    r = meta["runs"]
    return f"{r} run(s) per cell{', median (min–max)' if r > 1 else ''}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="ours,go,rust", help="operators, comma-separated: ours,go,rust")
    ap.add_argument("--n", default="1000,5000", help="InferenceService counts, comma-separated")
    ap.add_argument("--runs", default="1",
                    help="runs per (operator, N); figures are medians: a count, or per N, e.g. "
                         "'1000:3,5000:1' (an N not named gets 1)")
    ap.add_argument("--steady", type=int, default=120, help="steady-state seconds after convergence")
    ap.add_argument("--workers", type=int, default=8, help="concurrent create requests")
    ap.add_argument("--namespaces", type=int, default=4, help="namespaces per (operator, N, run)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds to wait for convergence")
    ap.add_argument("--ours", default=os.path.join(REPO, "build/inference-operator"), help="our binary")
    ap.add_argument("--ours-args", default="", help="extra serve flags for ours (a diagnostic, e.g. '--qps 1000'; "
                    "recorded in the JSON; the table is meant for defaults)")
    ap.add_argument("--image", default=os.path.join(REPO, "build/image/inference-operator.tar"))
    ap.add_argument("--webhook-json", default=os.path.join(REPO, "build/bench/webhook-bench.json"))
    ap.add_argument("--cluster-dir", default=os.path.join(REPO, "build/bench/cluster"))
    ap.add_argument("--reuse-cluster", action="store_true", help="keep a running control plane (default: fresh)")
    ap.add_argument("--shared-cluster", action="store_true",
                    help="one control plane for every run (default: a fresh one for each operator run, so "
                         "none inherits another's leftovers)")
    ap.add_argument("--keep-cluster", action="store_true", help="leave the control plane running at the end")
    ap.add_argument("--out", default=os.path.join(REPO, "bench/results"))
    ap.add_argument("--no-build", action="store_true", help="skip bench/build.sh")
    ap.add_argument("--report", metavar="JSON", help="only re-render the table and chart of an earlier run")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            doc = json.load(f)
        doc["summary"] = summarize(doc["runs"], doc["operators"], doc["n"])
        write_report(doc, args.report[:-5])
        return
    ops = [o for o in args.only.split(",") if o]
    for o in ops:
        if o not in OPERATORS:
            ap.error(f"unknown operator {o!r} (ours, go, rust)")
    ns_list = [int(x) for x in args.n.split(",") if x]
    try:
        runs_per_n = parse_runs(args.runs, ns_list)
    except ValueError as e:
        ap.error(f"--runs {args.runs!r}: {e}")

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = os.path.join(REPO, "build/bench/runs", stamp)
    os.makedirs(work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)

    if not args.no_build:
        sh([os.path.join(REPO, "bench/build.sh")])
    loadgen = os.path.join(CACHE, "loadgen")
    binaries = {"go": os.path.join(CACHE, "go-peer/inference-operator-go"),
                "rust": os.path.join(CACHE, "rust-peer/release/inference-operator-rust")}
    if "ours" in ops:
        if not os.path.exists(args.ours):
            sys.exit(f"{args.ours} is missing: run make first")
        # Run a copy: a rebuild during the benchmark must not change what runs.
        binaries["ours"] = os.path.join(work, "inference-operator")
        shutil.copy2(args.ours, binaries["ours"])
    for o in ops:
        if not os.path.exists(binaries[o]):
            sys.exit(f"{binaries[o]} is missing: run bench/build.sh")

    sizes = {}
    for o in OPERATORS:
        b = binaries.get(o) if o != "ours" else (binaries.get("ours") or args.ours)
        if b and os.path.exists(b):
            sizes[o] = {"binary_bytes": os.path.getsize(b)}
    for o, b in binaries.items():
        if o in sizes:
            with open(b, "rb") as f:
                sizes[o]["sha256"] = hashlib.sha256(f.read()).hexdigest()
    if "ours" in sizes:
        sizes["ours"]["image_bytes"] = image_size(args.image)
        try:
            ldd = sh(["ldd", binaries.get("ours", args.ours)], capture_output=True).stdout
            sizes["ours"]["shared_libraries"] = len([l for l in ldd.splitlines() if "=>" in l])
            sizes["ours"]["libcurl"] = next((l.split()[0] for l in ldd.splitlines() if "libcurl" in l), "static")
        except Exception:
            pass

    cluster = Cluster(args.cluster_dir)
    log(f"control plane in {args.cluster_dir}")
    cluster.up(fresh=not args.reuse_cluster)
    cluster.install_crd()
    k8s = sh([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "version", "-o", "json"],
             capture_output=True).stdout
    k8s_version = json.loads(k8s).get("serverVersion", {}).get("gitVersion", "?")

    meta = {
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "kubernetes": k8s_version,
        "runs": max(runs_per_n.values()), "runs_per_n": {str(n): r for n, r in runs_per_n.items()}, "steady_s": args.steady,
        "workers": args.workers, "namespaces_per_cell": args.namespaces, "versions": versions(),
        "control_plane": "shared by all runs" if args.shared_cluster else "fresh for each operator run",
        "loadavg_start": os.getloadavg()[0], "ours_args": args.ours_args,
        "frameworks": {"ours": "C, libcurl, own watch caches",
                       "go": "controller-runtime " + versions().get("sigs.k8s.io/controller-runtime", "?"),
                       "rust": "kube " + versions().get("kube", "?")},
        "defaults": {"ours": "4 workers + up to 8 burst workers for new specs / 1000 QPS, burst 2000",
                     "go": "1 worker (MaxConcurrentReconciles) / none (QPS -1)",
                     "rust": "unbounded concurrency / none"},
    }
    doc = {"meta": meta, "operators": ops, "n": ns_list, "sizes": sizes,
           "webhook": webhook_figures(args.webhook_json), "runs": []}
    json_path = os.path.join(args.out, f"{stamp}.json")

    def save():
        doc["summary"] = summarize(doc["runs"], ops, ns_list)
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=2)

    first = True
    try:
        for n in ns_list:
            for run in range(1, runs_per_n[n] + 1):
                for o in ops:
                    nss = [f"bench-{stamp[4:8]}{stamp[9:13]}-{o}-n{n}-r{run}-{i}" for i in range(args.namespaces)]
                    if not first and not args.shared_cluster:
                        log(f"fresh control plane for {o}, n={n}, run {run}")
                        cluster.up(fresh=True)
                        cluster.install_crd()
                    first = False
                    quiet = quiesce(cluster)
                    op = Operator(o, binaries[o], work, cluster.kubeconfig,
                                  args.ours_args.split() if o == "ours" else ())
                    op.start(os.path.join(work, f"{o}-n{n}-r{run}.log"))
                    try:
                        r = measure(op, cluster, loadgen, n, nss, args.steady, args.workers, args.timeout)
                    except Exception as e:  # record and go on with the next operator
                        log(f"{o}: n={n} run {run} failed: {e}")
                        r = {"operator": o, "n": n, "error": str(e), "namespaces": nss}
                    r["run"] = run
                    r["quiesce"] = quiet
                    op.stop()
                    r["exit_code"] = op.proc.returncode
                    doc["runs"].append(r)
                    save()
                    t = time.monotonic()
                    c = subprocess.run([loadgen, "clean", "--kubeconfig", cluster.kubeconfig,
                                        "--namespaces", ",".join(nss)])
                    r["clean_s"] = round(time.monotonic() - t, 1)
                    if c.returncode != 0:  # the next operator's caches will hold what is left
                        r["clean_failed"] = True
                        log(f"cleaning after {o} failed (exit {c.returncode}); going on")
                    else:
                        log(f"cleaned {n} objects of {o} in {r['clean_s']} s")
                    save()
    finally:
        meta["loadavg_end"] = os.getloadavg()[0]
        save()
        if not args.keep_cluster:
            cluster.down()

    write_report(doc, os.path.join(args.out, stamp))


def write_report(doc, base):
    """BASE.md (printed too) and BASE.png beside BASE.json."""
    md = markdown(doc)
    png = base + ".png"
    if gnuplot_chart(doc, png):
        md += f"\n![RSS against N]({os.path.basename(png)})\n"
    with open(base + ".md", "w") as f:
        f.write(md)
    print(md)
    log(f"wrote {base}.json, .md" + (", .png" if os.path.exists(png) else ""))


if __name__ == "__main__":
    main()
