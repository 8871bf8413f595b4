#!/usr/bin/env python3
"""bench/run: gatelog's benchmarks, each measured against a baseline in the same run.

1. module: the same NGINX binary and configuration without (A) and with the module:
   B `gatelog PATH`, C `gatelog PATH buffer=64k flush=1s`, D `gatelog PATH` +
   `gatelog_metrics zone=gatelog:1m;`. The headline: instructions per request under
   callgrind (NGINX as one process, a fixed number of requests), which machine noise does
   not move. Then wrk over loopback in alternating runs (A X A X ...) for a static file, a
   PHP page through a real php8.2-fpm, and two failure storms (502 from a missing FastCGI
   socket, 504 from an upstream that never answers); records written versus failures
   answered; worker RSS over a long 502 storm.
2. analyzer: `gatelog analyze --format text` and `--format json` on generated inputs
   (bench/gen: a mostly quiet server, and an incident hour dense with failures), next to
   `grep -c upstream` and lnav over the same files; peak RSS, linearity, report size; the
   generated records validated against docs/gatelog.v1.schema.json.

Every target is printed with met/missed. See docs/benchmarks.md. Only the Python
standard library is used.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
GEN = os.path.join(ROOT, "target", "release", "gatelog-bench-gen")
ANALYZER = os.path.join(ROOT, "target", "release", "gatelog")
FPM_BIN = "php-fpm8.2"


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# Processes we start are tracked here and stopped by pid on exit, whatever the reason.

class Procs:
    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append((name, p))
        return p

    @staticmethod
    def stop(p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is not None:
            return
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass

    def stop_all(self):
        while self.procs:
            _, p = self.procs.pop()
            self.stop(p)

    def forget(self, p):
        self.procs = [(n, q) for (n, q) in self.procs if q is not p]


PROCS = Procs()
atexit.register(PROCS.stop_all)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _on_signal)


# ----------------------------------------------------------------------------------------
# Small helpers.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            out.append(int(d))
                except (OSError, IndexError, ValueError):
                    pass
        return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ns(pid):
    """CPU time the process has used, in ns (schedstat; falls back to utime+stime)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 10_000_000


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_int(n):
    return f"{n:,}"


def fmt_ratio(vals, digits=3):
    if not vals:
        return "–"
    return f"{median(vals):.{digits}f} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**MISSED**"


def cmd_out(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ----------------------------------------------------------------------------------------
# wrk

WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_latency(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * WRK_UNITS[m.group(2)] if m else float("nan")


def run_wrk(url, conns, duration, cpu, worker_pid, script=None, timeout_s="5s"):
    argv = []
    if cpu is not None:
        argv += ["taskset", "-c", str(cpu)]
    argv += ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", timeout_s]
    if script:
        argv += ["-s", script]
    argv.append(url)
    c0 = cpu_ns(worker_pid)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    c1 = cpu_ns(worker_pid)
    out = r.stdout
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr.strip()} {out}")
    res = {"cpu_ns": c1 - c0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    res["p99_ms"] = parse_latency(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    res["cpu_per_req_us"] = res["cpu_ns"] / 1000 / res["requests"] if res["requests"] else float("nan")
    return res


# ----------------------------------------------------------------------------------------
# Optional profiles (--perf): perf record with DWARF call graphs, summarized as text.

def perf_summary(data, out_txt, focus, keep=False):
    """Writes the top symbols (self and inclusive) of a perf.data file to out_txt."""
    parts = []
    for title, args in (("self (--no-children), by shared object", ["--no-children", "--sort", "dso"]),
                        ("self (--no-children), by symbol", ["--no-children", "--sort", "sym"]),
                        ("inclusive (--children), by symbol", ["--children", "--sort", "sym"])):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", "--percent-limit", "0.3"] + args,
                           capture_output=True, text=True)
        rows = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        if "inclusive" in title:
            rows = [ln for ln in rows if any(f in ln for f in focus)]
        parts.append(f"== {title}\n" + "\n".join(rows[:60]))
    with open(out_txt, "w") as f:
        f.write("\n\n".join(parts) + "\n")
    if not keep:
        os.unlink(data)  # DWARF stacks make these large; --keep keeps them for perf report


def perf_attach(pid, seconds, data):
    return PROCS.start("perf", ["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,16384", "-p", str(pid),
                                "-o", data, "--", "sleep", str(seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ----------------------------------------------------------------------------------------
# Part 1: the module inside NGINX.

NGINX_CONF = """\
{load_module}
{user}
worker_processes 1;
{daemon}
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    default_type text/html;
    access_log {dir}/access.log combined;
{gatelog}
{metrics}
    client_body_temp_path {dir}/tmp/body;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    proxy_temp_path {dir}/tmp/proxy;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name bench.gatelog;
        root {www};
        location = /static.html {{ }}
        location = /fast.php {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root/fast.php;
            fastcgi_pass unix:{fpm_sock};
        }}
        location = /fail502 {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root/fast.php;
            fastcgi_pass unix:{missing_sock};
        }}
        location = /fail504 {{
            proxy_pass http://127.0.0.1:{hang_port};
            proxy_read_timeout {read_timeout};
        }}
    }}
}}
"""

METRICS_DIRECTIVE = "gatelog_metrics zone=gatelog:1m;"

FPM_CONF = """\
[global]
error_log = {dir}/php-fpm.log
pid = {dir}/fpm.pid
daemonize = no
[bench]
{user}
listen = {sock}
{listen_owner}
listen.mode = 0660
pm = static
pm.max_children = {children}
"""



class Nginx:
    """One NGINX instance on its own prefix: `module` None is the baseline (A). With
    `callgrind` the configuration leaves `daemon` to the command line, for
    `-g 'daemon off; master_process off;'` under valgrind."""

    def __init__(self, name, binary, prefix, port, module, cpu, common, gatelog_args="", metrics=False,
                 callgrind=False):
        self.name = name
        self.module = module
        self.gatelog_args = gatelog_args
        self.metrics = metrics
        self.dir = os.path.join(prefix, name)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = port
        self.binary = binary
        self.cpu = cpu
        root = os.geteuid() == 0
        conf = NGINX_CONF.format(
            load_module=f"load_module {module};" if module else "# (no load_module: baseline)",
            user="user www-data;" if root else "",
            daemon="# daemon: from -g" if callgrind else "daemon off;",
            gatelog=f"    gatelog {self.dir}/gatelog.json{gatelog_args};" if module else "    # (no gatelog: baseline)",
            metrics=f"    {METRICS_DIRECTIVE}" if metrics else "",
            dir=self.dir,
            port=port,
            **common,
        )
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = None
        self.worker = None

    def opts(self):
        return ["-p", self.dir, "-e", os.path.join(self.dir, "startup.log"), "-c", self.conf]

    def test(self):
        """`nginx -t`: None when the configuration is accepted, else NGINX's message."""
        t = subprocess.run([self.binary, "-t"] + self.opts(), capture_output=True, text=True)
        return None if t.returncode == 0 else t.stderr.strip()

    def describe(self):
        if not self.module:
            return "no module"
        d = f"`gatelog PATH{self.gatelog_args}`"
        return d + (f" + `{METRICS_DIRECTIVE}`" if self.metrics else "")

    def start(self):
        argv = []
        if self.cpu is not None:
            argv += ["taskset", "-c", str(self.cpu)]
        argv += [self.binary] + self.opts()
        err = self.test()
        if err:
            raise RuntimeError(f"nginx -t failed for {self.name}: {err}")
        self.proc = PROCS.start(f"nginx-{self.name}", argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), what=f"nginx {self.name} on port {self.port}")
        wait_for(lambda: len(children(self.proc.pid)) == 1, what=f"nginx {self.name} worker")
        self.worker = children(self.proc.pid)[0]

    def stop(self):
        if self.proc:
            PROCS.stop(self.proc, signal.SIGQUIT, timeout=30)
            PROCS.forget(self.proc)
            self.proc = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def count_access_statuses(path):
    counts = {}
    pat = re.compile(rb'" (\d{3}) ')
    with open(path, "rb") as f:
        for line in f:
            m = pat.search(line)
            if m:
                counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
    return counts


def count_records(path):
    total, by_status = 0, {}
    pat = re.compile(rb'^\{"schema":"gatelog.v1".*?,"status":(\d{3}),"origin"')
    with open(path, "rb") as f:
        for line in f:
            total += 1
            m = pat.match(line)
            if m:
                s = int(m.group(1))
                by_status[s] = by_status.get(s, 0) + 1
    return total, by_status


# ----------------------------------------------------------------------------------------
# Instructions per request: callgrind's instruction count (Ir) does not move with what else
# the machine is doing, unlike time. NGINX runs as one process under valgrind
# (`-g 'daemon off; master_process off;'`) and serves a fixed number of requests; two runs
# with N1 and N2 requests give (Ir2 - Ir1) / (N2 - N1): start-up, shutdown and the
# connections' own cost (the same in both runs) cancel out.

def drive(port, path, n, conc):
    """Sends exactly n GET requests over `conc` keep-alive connections; returns the statuses."""
    import http.client
    import threading
    statuses = {}
    lock = threading.Lock()
    shares = [n // conc + (1 if i < n % conc else 0) for i in range(conc)]

    def worker(count):
        conn = None
        done = 0
        while done < count:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                done += 1
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                done += 1
                with lock:
                    statuses["error"] = statuses.get("error", 0) + 1
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in shares if c]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"{path}: no summary line")


def quit_single_process(p, every=2.0, timeout=300):
    """SIGQUIT, repeated until NGINX exits. With `master_process off` NGINX checks its quit
    flag before it blocks in epoll_wait with no timer left; a signal that lands between the
    check and the call (a wide window under valgrind) is only noticed at the next wake-up,
    which never comes in an idle server. The next SIGQUIT is that wake-up."""
    end = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < end:
        try:
            p.send_signal(signal.SIGQUIT)
            p.wait(timeout=every)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    if p.poll() is None:
        p.kill()
        p.wait()


def callgrind_run(inst, path, n, conc, out):
    """NGINX under callgrind serving n requests to `path`; returns (Ir, statuses)."""
    argv = [] if inst.cpu is None else ["taskset", "-c", str(inst.cpu)]
    argv += ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}",
             inst.binary] + inst.opts() + ["-g", "daemon off; master_process off;"]
    err = inst.test()
    if err:
        raise RuntimeError(f"nginx -t failed for {inst.name}: {err}")
    vlog = out + ".log"
    with open(vlog, "wb") as err_f:
        p = PROCS.start(f"callgrind-{inst.name}", argv, stdout=subprocess.DEVNULL, stderr=err_f)
    try:
        wait_for(lambda: port_open(inst.port), timeout=120, what=f"nginx {inst.name} under valgrind")
        statuses = drive(inst.port, path, n, conc)
    finally:
        quit_single_process(p)
        PROCS.forget(p)
    try:
        return callgrind_total(out), statuses
    except (OSError, RuntimeError) as e:
        # say why: valgrind's and NGINX's last words, and how NGINX ended
        tail = []
        for path_ in (vlog, os.path.join(inst.dir, "startup.log"), os.path.join(inst.dir, "error.log")):
            try:
                with open(path_, "rb") as f:
                    tail += [ln.decode(errors="replace").strip() for ln in f.read().splitlines()[-3:]]
            except OSError:
                pass
        raise RuntimeError(f"{e}; exit {p.returncode}; " + " / ".join(t for t in tail if t)[-600:]) from e


def instruction_counts(cfg, binary, module, prefix, cpu, common, metrics_ok):
    if not shutil.which("valgrind"):
        log("instructions: valgrind not found, skipped")
        return {"error": "valgrind not found"}
    n1, n2 = cfg.callgrind_requests
    variants = [("A", None, "", False), ("B", module, "", False), ("C", module, cfg.buffer_args, False)]
    if metrics_ok:
        variants.append(("D", module, "", True))
    paths = [("502", "/fail502", cfg.callgrind_conc), ("504", "/fail504", cfg.callgrind_conc),
             ("static", "/static.html", cfg.callgrind_conc), ("php", "/fast.php", cfg.callgrind_conc)]
    res = {"requests": [n1, n2], "rows": {}}
    for key, path, conc in paths:
        row = {}
        for label, mod, args, metrics in variants:
            inst = Nginx(f"cg-{label}-{key}", binary, prefix, free_port(), mod, cpu, common, args, metrics=metrics,
                         callgrind=True)
            try:
                ir1, st1 = callgrind_run(inst, path, n1, conc, os.path.join(inst.dir, "callgrind.1"))
                ir2, st2 = callgrind_run(inst, path, n2, conc, os.path.join(inst.dir, "callgrind.2"))
            except (RuntimeError, OSError, ValueError) as e:
                log(f"instructions: {key} {label}: {e}")
                row[label] = {"error": str(e)[:200]}
                continue
            per = (ir2 - ir1) / (n2 - n1)
            row[label] = {"ir": [ir1, ir2], "per_request": per, "statuses": [st1, st2]}
            log(f"instructions: {key} {label}: {per:,.0f} Ir per request ({n1} and {n2} requests)")
        res["rows"][key] = row
    return res


def module_bench(cfg):
    flavour = cfg.flavour
    out = os.path.join(ROOT, "nginx-build", "out", flavour)
    binary = os.path.realpath(os.path.join(out, "nginx"))
    module = os.path.join(out, "ngx_http_gatelog_module.so")
    if not (os.access(binary, os.X_OK) and os.path.isfile(module)):
        raise RuntimeError(f"{out} is incomplete: run scripts/setup (or nginx-build/build.sh all)")
    ncpu = os.cpu_count() or 1
    load_cpu, nginx_cpu = (0, 1) if ncpu >= 2 and not cfg.no_pin else (None, None)

    prefix = tempfile.mkdtemp(prefix="gatelog-bench.", dir=cfg.tmp)
    os.chmod(prefix, 0o755)
    info = {"prefix": prefix, "flavour": flavour, "nginx": binary, "module": module,
            "cpus": {"load": load_cpu, "nginx": nginx_cpu}}
    log(f"module: prefix {prefix}, NGINX {binary}, wrk on CPU {load_cpu}, NGINX on CPU {nginx_cpu}")
    try:
        www = os.path.join(prefix, "www")
        os.makedirs(www)
        os.chmod(www, 0o755)
        with open(os.path.join(www, "static.html"), "w") as f:
            body = "<!doctype html><title>gatelog bench</title>\n"
            f.write(body + "<p>" + "static file body " * ((cfg.static_bytes - len(body)) // 17) + "</p>\n")
        with open(os.path.join(www, "fast.php"), "w") as f:
            f.write('<?php echo "hello from php-fpm\\n";\n')

        # php-fpm on its own prefix, pm static
        fpm_dir = os.path.join(prefix, "fpm")
        os.makedirs(fpm_dir)
        os.chmod(fpm_dir, 0o755)
        root = os.geteuid() == 0
        fpm_sock = os.path.join(fpm_dir, "php-fpm.sock")
        fpm_conf = os.path.join(fpm_dir, "php-fpm.conf")
        with open(fpm_conf, "w") as f:
            f.write(FPM_CONF.format(
                dir=fpm_dir, sock=fpm_sock, children=cfg.fpm_children,
                user="user = www-data\ngroup = www-data" if root else "",
                listen_owner="listen.owner = www-data\nlisten.group = www-data" if root else "",
            ))
        fpm_argv = ([] if load_cpu is None else ["taskset", "-c", str(load_cpu)]) + [FPM_BIN, "-F", "-y", fpm_conf]
        PROCS.start("php-fpm", fpm_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(fpm_sock), what="php-fpm socket")

        # the upstream that never answers
        bh_argv = ([] if load_cpu is None else ["taskset", "-c", str(load_cpu)]) + [GEN, "blackhole"]
        bh = PROCS.start("blackhole", bh_argv, stdout=subprocess.PIPE, text=True)
        hang_port = int(bh.stdout.readline())

        common = dict(www=www, fpm_sock=fpm_sock, missing_sock=os.path.join(prefix, "missing.sock"),
                      hang_port=hang_port, read_timeout=cfg.read_timeout)
        A = Nginx("without", binary, prefix, free_port(), None, nginx_cpu, common)
        B = Nginx("with", binary, prefix, free_port(), module, nginx_cpu, common)
        C = Nginx("with-buffer", binary, prefix, free_port(), module, nginx_cpu, common, cfg.buffer_args)
        D = Nginx("with-metrics", binary, prefix, free_port(), module, nginx_cpu, common, metrics=True)
        insts = {"B": B, "C": C, "D": D}
        info["metrics_error"] = D.test()
        if info["metrics_error"]:
            log(f"module: metrics row skipped, nginx -t refuses `{METRICS_DIRECTIVE}`: {info['metrics_error']}")
            del insts["D"]
        for inst in [A] + list(insts.values()):
            inst.start()
        info["rss_start_kib"] = {"without": rss_kib(A.worker), "with": rss_kib(B.worker)}
        info["version"] = cmd_out([binary, "-v"]).split("/")[-1]
        info["instances"] = {k: v.describe() for k, v in insts.items()}

        storm504 = "504 storm: upstream never answers, proxy_read_timeout %s" % cfg.read_timeout
        # (key, title, path, connections, kind, instance, target throughput B÷A)
        scenarios = [
            ("static", "static file (%d B)" % cfg.static_bytes, "/static.html", cfg.conns, "normal", "B", 0.99),
            ("php", "PHP page via php8.2-fpm (pm static, %d children)" % cfg.fpm_children, "/fast.php", cfg.conns,
             "normal", "B", 0.99),
            ("502", "502 storm: fastcgi_pass to a missing unix socket", "/fail502", cfg.conns, "storm", "B", 0.90),
            ("504", storm504, "/fail504", cfg.conns_504, "storm", "B", 0.90),
            ("502buf", "502 storm", "/fail502", cfg.conns, "storm", "C", 0.95),
            ("504buf", storm504, "/fail504", cfg.conns_504, "storm", "C", 0.95),
            ("static-metrics", "static file (%d B)" % cfg.static_bytes, "/static.html", cfg.conns, "normal", "D", 0.99),
            ("502-metrics", "502 storm", "/fail502", cfg.conns, "storm", "D", 0.90),
            ("504-metrics", storm504, "/fail504", cfg.conns_504, "storm", "D", 0.90),
        ]
        scenarios = [sc for sc in scenarios if sc[5] in insts]
        if cfg.scenarios:
            scenarios = [sc for sc in scenarios if sc[0] in cfg.scenarios]
        results = []
        for key, title, path, conns, kind, which, target in scenarios:
            X = insts[which]
            log(f"module: {key}: {cfg.pairs} pairs of {cfg.duration}s runs, {conns} connections")
            for inst in (A, X):  # warm-up, not counted
                run_wrk(inst.url(path), conns, cfg.warmup, load_cpu, inst.worker)
            pairs = []
            for i in range(cfg.pairs):
                a = run_wrk(A.url(path), conns, cfg.duration, load_cpu, A.worker)
                b = run_wrk(X.url(path), conns, cfg.duration, load_cpu, X.worker)
                pairs.append({"without": a, "with": b})
                log(f"  pair {i + 1}: {a['rps']:.0f} vs {b['rps']:.0f} req/s, p99 {a['p99_ms']:.2f} vs {b['p99_ms']:.2f} ms, "
                    f"CPU/req {a['cpu_per_req_us']:.1f} vs {b['cpu_per_req_us']:.1f} us")
            results.append({"key": key, "title": title, "path": path, "conns": conns, "kind": kind, "pairs": pairs,
                             "instance": which, "gatelog": X.describe(), "target": target})
            if cfg.perf:
                for label, inst in (("without", A), ("with", X)):
                    data = os.path.join(cfg.results, f"perf-{key}-{label}.data")
                    pp = perf_attach(inst.worker, cfg.duration, data)
                    time.sleep(0.3)
                    run_wrk(inst.url(path), conns, cfg.duration + 1, load_cpu, inst.worker)
                    pp.wait()
                    PROCS.forget(pp)
                    perf_summary(data, data[:-5] + ".txt", ["gatelog", "ngx_http_", "RAND", "EVP_", "ngx_log"], cfg.keep)
                    log(f"  perf profile of {label}: {data[:-5]}.txt")
        info["scenarios"] = results
        info["rss_after_pairs_kib"] = {"without": rss_kib(A.worker), "with": rss_kib(B.worker)}

        # worker RSS over a long 502 storm (with the module)
        if cfg.rss_failures > 0:
            log(f"module: RSS: {fmt_int(cfg.rss_failures)} failing requests (502) through the module")
            time.sleep(0.5)
            r0 = rss_kib(B.worker)
            t0 = time.monotonic()
            done, non2xx, samples = 0, 0, []
            rate = median([p["with"]["rps"] for s in results if s["key"] == "502" for p in s["pairs"]]) \
                if any(s["key"] == "502" for s in results) else 5000.0
            while done < cfg.rss_failures:
                # wrk cannot stop after N requests by itself: run it in chunks until N are done
                chunk = max(1, min(20, int((cfg.rss_failures - done) / max(rate, 1.0)) + 1))
                res = run_wrk(B.url("/fail502"), cfg.conns, chunk, load_cpu, B.worker)
                done += res["requests"]
                non2xx += res["non2xx"]
                rate = res["rps"] or rate
                samples.append((done, rss_kib(B.worker)))
            elapsed = time.monotonic() - t0
            time.sleep(0.5)
            r1 = rss_kib(B.worker)
            info["rss_storm"] = {"failures": done, "non2xx": non2xx, "before_kib": r0, "after_kib": r1,
                                 "seconds": elapsed, "rps": done / elapsed, "samples": samples}
            log(f"  RSS {r0} -> {r1} KiB over {fmt_int(done)} requests in {elapsed:.0f}s")

        # records versus failures (after a graceful stop: everything is written)
        for inst in [A] + list(insts.values()):
            inst.stop()
        info["records"] = {}
        for inst in insts.values():
            acc = count_access_statuses(os.path.join(inst.dir, "access.log"))
            rec_total, rec_by = count_records(os.path.join(inst.dir, "gatelog.json"))
            info["records"][inst.name] = {
                "gatelog": inst.describe(),
                "records": rec_total, "records_by_status": rec_by, "access": acc,
                "failures": acc.get(502, 0) + acc.get(504, 0),
            }
        info["access_without"] = count_access_statuses(os.path.join(A.dir, "access.log"))
        for name, d in [(i.name, i.dir) for i in [A] + list(insts.values())]:
            try:
                with open(os.path.join(d, "error.log"), "rb") as f:
                    alerts = [ln.decode(errors="replace").strip() for ln in f
                              if b"[alert]" in ln or b"[emerg]" in ln or b"panic" in ln]
            except OSError:
                alerts = []
            info.setdefault("alerts", {})[name] = alerts[:5]

        if cfg.callgrind_requests:
            info["instructions"] = instruction_counts(cfg, binary, module, prefix, nginx_cpu, common,
                                                      metrics_ok=not info["metrics_error"])
        return info
    finally:
        PROCS.stop_all()
        if not cfg.keep:
            shutil.rmtree(prefix, ignore_errors=True)
        else:
            log(f"module: kept {prefix}")


def instructions_table(info):
    ins = info.get("instructions")
    if not ins:
        return []
    lines = ["#### Headline: instructions per request (callgrind)", ""]
    if "error" in ins:
        return lines + [f"Not measured: {ins['error']}.", ""]
    n1, n2 = ins["requests"]
    labels = [k for k in ("A", "B", "C", "D") if any(k in row for row in ins["rows"].values())]
    inst_desc = {"A": "no module", "B": "`gatelog PATH`", "C": f"`gatelog PATH{info.get('buffer_args', '')}`",
                 "D": f"`gatelog PATH` + `{METRICS_DIRECTIVE}`"}
    lines.append("NGINX alone under `valgrind --tool=callgrind` (`-g 'daemon off; master_process off;'`), "
                 f"instructions (Ir) per request = (Ir after {n2:,} requests − Ir after {n1:,}) ÷ {n2 - n1:,}: "
                 "start-up and shutdown cancel out, machine noise does not enter. "
                 + "; ".join(f"{k} = {inst_desc[k]}" for k in labels) + ".")
    lines.append("")
    head = "| requests | " + " | ".join(f"Ir/req {k}" for k in labels) + " | " + \
        " | ".join(f"{k} − A" for k in labels if k != "A") + " | " + " | ".join(f"{k} ÷ A" for k in labels if k != "A") + " |"
    lines.append(head)
    lines.append("|---|" + "---:|" * (3 * len(labels) - 2))
    titles = {"502": "502 storm (missing FastCGI socket)", "504": "504 storm (upstream never answers)",
              "static": "static file", "php": "PHP page"}
    for key, row in ins["rows"].items():
        def per(k):
            return row.get(k, {}).get("per_request")
        cells = []
        for k in labels:
            v = per(k)
            cells.append(f"{v:,.0f}" if v is not None else "failed")
        a = per("A")
        for k in labels:
            if k != "A":
                v = per(k)
                cells.append(f"{v - a:+,.0f}" if (v is not None and a) else "–")
        for k in labels:
            if k != "A":
                v = per(k)
                cells.append(f"{v / a:.3f}" if (v is not None and a) else "–")
        bad = sorted({f"{k}: {r['error'][:80]}" for k, r in row.items() if "error" in r})
        want = {"502": "502", "504": "504", "static": "200", "php": "200"}.get(key)
        for k, r in row.items():
            for st in r.get("statuses", []):
                other = {code: n for code, n in st.items() if str(code) != want}
                if other:
                    bad.append(f"{k}: answered {other} besides {want}")
        lines.append(f"| {titles.get(key, key)}{' (' + '; '.join(bad) + ')' if bad else ''} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def module_table(info, cfg):
    lines = []
    lines.append(f"### Module cost inside NGINX ({info['flavour']}, nginx {info.get('version', '?')})")
    lines.append("")
    info["buffer_args"] = cfg.buffer_args
    lines += instructions_table(info)
    lines.append("#### Throughput")
    lines.append("")
    lines.append(f"Same binary and configuration, without (A) and with the module, 1 worker; wrk -t1 on CPU "
                 f"{info['cpus']['load']}, NGINX on CPU {info['cpus']['nginx']}; {cfg.pairs} pairs A X of "
                 f"{cfg.duration} s. Ratios are X ÷ A per pair: median (min–max). X is B (`gatelog PATH`), "
                 f"C (`gatelog PATH{cfg.buffer_args}`) or D (`gatelog PATH` + `{METRICS_DIRECTIVE}`).")
    if info.get("metrics_error"):
        lines.append(f"No metrics rows: `nginx -t` refuses `{METRICS_DIRECTIVE}` with this module build: "
                     f"`{info['metrics_error'][-200:]}`.")
    lines.append("")
    lines.append("| scenario | X | conns | req/s A | req/s X | throughput X÷A | p99 A | p99 X | p99 X÷A | worker CPU/req X÷A | target | |")
    lines.append("|---|---|---:|---:|---:|---|---:|---:|---|---|---|---|")
    checks = []
    for s in info["scenarios"]:
        thr = [p["with"]["rps"] / p["without"]["rps"] for p in s["pairs"]]
        p99 = [p["with"]["p99_ms"] / p["without"]["p99_ms"] for p in s["pairs"]]
        cpu = [p["with"]["cpu_per_req_us"] / p["without"]["cpu_per_req_us"] for p in s["pairs"]]
        ra = median([p["without"]["rps"] for p in s["pairs"]])
        rb = median([p["with"]["rps"] for p in s["pairs"]])
        pa = median([p["without"]["p99_ms"] for p in s["pairs"]])
        pb = median([p["with"]["p99_ms"] for p in s["pairs"]])
        target = s.get("target")
        ok = median(thr) >= target if target else None
        bad = []
        for p in s["pairs"]:
            for side in ("without", "with"):
                r = p[side]
                if s["kind"] == "normal" and r["non2xx"]:
                    bad.append(f"{r['non2xx']} non-2xx")
                if s["kind"] != "normal" and r["non2xx"] != r["requests"]:
                    bad.append(f"{r['requests'] - r['non2xx']} answered 2xx")
                if r["socket_errors"]:
                    bad.append(f"{r['socket_errors']} socket errors")
        note = verdict(ok) + (f" ({'; '.join(sorted(set(bad)))})" if bad else "")
        lines.append(f"| {s['title']} | {s.get('instance', 'B')}: {s.get('gatelog', '')} | {s['conns']} | {ra:,.0f} | "
                     f"{rb:,.0f} | {fmt_ratio(thr)} | {pa:.2f} ms | {pb:.2f} ms | {fmt_ratio(p99, 2)} | "
                     f"{fmt_ratio(cpu, 2)} | {'≥ ' + str(target) if target else '–'} | {note} |")
        if ok is not None:
            checks.append(ok)
    lines.append("")
    lines.append("| check (whole run) | measured | target | |")
    lines.append("|---|---|---|---|")
    for name, rec in info["records"].items():
        fails = rec["failures"]
        if name != "with" and not fails:
            lines.append(f"| records written vs 502/504 answered, {rec['gatelog']} | no 502/504 answered "
                         f"(no storm scenario ran on it) | equal | n/a |")
            continue
        a502, a504 = rec["access"].get(502, 0), rec["access"].get(504, 0)
        r502, r504 = rec["records_by_status"].get(502, 0), rec["records_by_status"].get(504, 0)
        rec_ok = rec["records"] == fails and r502 == a502 and r504 == a504
        lines.append(f"| records written vs 502/504 answered (access log), {rec['gatelog']} | {fmt_int(rec['records'])} vs "
                     f"{fmt_int(fails)} (502: {fmt_int(r502)} vs {fmt_int(a502)}; 504: {fmt_int(r504)} vs {fmt_int(a504)}) "
                     f"| equal | {verdict(rec_ok)} |")
        checks.append(rec_ok)
    if "rss_storm" in info:
        r = info["rss_storm"]
        growth_mib = (r["after_kib"] - r["before_kib"]) / 1024
        per_million = growth_mib / (r["failures"] / 1e6) if r["failures"] else float("nan")
        rss_ok = per_million < 2.0
        lines.append(f"| worker RSS over {fmt_int(r['failures'])} failing requests (502 storm, {r['rps']:,.0f} req/s) | "
                     f"{r['before_kib'] / 1024:.1f} → {r['after_kib'] / 1024:.1f} MiB = {per_million:+.2f} MiB per million | "
                     f"< 2 MiB per million | {verdict(rss_ok)} |")
        checks.append(rss_ok)
    s0, s1 = info["rss_start_kib"], info["rss_after_pairs_kib"]
    lines.append(f"| worker RSS over the paired runs (for reference) | A {s0['without'] / 1024:.1f} → {s1['without'] / 1024:.1f} MiB, "
                 f"B {s0['with'] / 1024:.1f} → {s1['with'] / 1024:.1f} MiB | – | |")
    for name, alerts in info.get("alerts", {}).items():
        if alerts:
            lines.append(f"| [alert]/[emerg] lines in the error log of {name} | {len(alerts)}: `{alerts[0][:120]}` | none | **MISSED** |")
            checks.append(False)
    return lines, checks


# ----------------------------------------------------------------------------------------
# Part 2: the analyzer on generated inputs.

FILES = ["error.log", "php8.2-fpm.log", "kern.log", "gatelog.json"]


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)B?", s.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r}")
    return int(m.group(1)) * {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}[m.group(2)]


def size_label(n):
    if n >= 10**9 and n % 10**9 == 0:
        return f"{n // 10**9} GB"
    if n >= 10**6:
        return f"{n / 10**6:g} MB"
    return f"{n} B"


def generate(size, seed, input_kind):
    """The generated input of that size: `quiet` (hours of a mostly quiet server) or
    `incident` (one hour where most error-log lines are upstream failures)."""
    prefix = "" if input_kind == "quiet" else "incident-"
    d = os.path.join(BENCH, "data", f"{prefix}seed{seed}-{size}")
    manifest = os.path.join(d, "manifest.json")
    if os.path.exists(manifest) and os.path.getmtime(manifest) >= os.path.getmtime(GEN) and \
            all(os.path.exists(os.path.join(d, f)) for f in FILES):
        log(f"analyzer: reusing {d}")
    else:
        log(f"analyzer: generating {input_kind} {size_label(size)} into {d}")
        extra = ["--incident"] if input_kind == "incident" else []
        subprocess.run([GEN, "--size", str(size), "--seed", str(seed), "--out", d] + extra, check=True)
    with open(manifest) as f:
        return d, json.load(f)


VALIDATOR_NOTE_MISSING = "records not validated: validate-json missing"


def validator_available():
    """The harness's schema validator (`gatelog-e2e --bin validate-json`), when this tree has it."""
    try:
        with open(os.path.join(ROOT, "tests", "Cargo.toml")) as f:
            return re.search(r'name\s*=\s*"validate-json"', f.read()) is not None
    except OSError:
        return False


def validate_records(path, cfg):
    """Validates the generated records against docs/gatelog.v1.schema.json."""
    if not validator_available():
        return {"ok": None, "note": VALIDATOR_NOTE_MISSING}
    argv = ["cargo", "run", "--release", "-q", "-p", "gatelog-e2e", "--bin", "validate-json", "--",
            os.path.join(ROOT, "docs", "gatelog.v1.schema.json"), path]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip().splitlines()
    note = out[-1] if out else f"exit {r.returncode}"
    return {"ok": r.returncode == 0, "note": note[:300]}


def timed(argv, stdout_path, timeout, env=None):
    """Runs argv under `gatelog-bench-gen measure`; returns a dict with wall_s, user_s,
    sys_s, maxrss_kib (peak RSS of the command itself), exit and stderr (tail)."""
    report = stdout_path + ".measure.json"
    if os.path.exists(report):
        os.unlink(report)
    with open(stdout_path, "wb") as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([GEN, "measure", "--report", report, "--"] + argv, stdout=out, stderr=err, env=env)
        PROCS.procs.append(("timed", p))
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            PROCS.stop(p, signal.SIGKILL)
        PROCS.forget(p)
        err.seek(0)
        tail = err.read()[-400:].decode(errors="replace").strip()
    try:
        with open(report) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {"wall_s": None, "user_s": None, "sys_s": None, "maxrss_kib": None,
               "exit": "timeout" if p.returncode == -signal.SIGKILL else p.returncode}
    res["stderr"] = tail
    return res


def check_report(path):
    """What the analyzer wrote: one JSON document, and how many failures it reports (read
    from its summary, near the end; the report can be hundreds of MB, so it is not parsed
    whole). A stub or a crash writes nothing."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    if size == 0:
        return {"ok": False, "note": "empty output", "failures": None, "bytes": 0}
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
        f.seek(max(0, size - (4 << 20)))
        tail = f.read()
    if not head.startswith(b"{") or not tail.rstrip().endswith(b"}"):
        return {"ok": False, "note": f"output is not a JSON document ({size:,} B)", "failures": None, "bytes": size}
    failures = None
    k = tail.rfind(b'"summary":')
    if k >= 0:
        m = re.compile(rb'"failures":(\d+)').search(tail, k)
        failures = int(m.group(1)) if m else None
    return {"ok": True, "note": f"JSON report, {size / 1e6:,.1f} MB", "failures": failures, "bytes": size}


TOOLS = ("grep", "lnav", "text", "json")
TOOL_TITLES = {"grep": "grep -c upstream", "lnav": "lnav headless count", "text": "gatelog analyze --format text",
               "json": "gatelog analyze --format json"}


def measure_input(cfg, d, env_lnav, have_analyzer, label):
    paths = [os.path.join(d, f) for f in FILES]
    for p in paths:  # warm cache
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    tools = [
        ("grep", ["grep", "-c", "upstream"] + paths, None),
        ("lnav", ["lnav", "-n", "-c", ';SELECT count(*) FROM all_logs WHERE log_text LIKE "%upstream%"'] + paths,
         env_lnav),
    ]
    if have_analyzer:
        tools.append(("text", [ANALYZER, "analyze", "--format", "text"] + paths, None))
        tools.append(("json", [ANALYZER, "analyze", "--format", "json"] + paths, None))
    runs = {name: [] for name, _, _ in tools}
    outs = {}
    for rep in range(cfg.reps):
        for name, argv, env in tools:
            out_path = os.path.join(d, f"out.{name}.txt")
            m = timed(argv, out_path, cfg.tool_timeout, env)
            status = m["exit"]
            ok = status == 0 or (name == "grep" and status == 1)
            runs[name].append({"wall": m["wall_s"], "cpu": (m["user_s"] or 0) + (m["sys_s"] or 0),
                               "rss_kib": m["maxrss_kib"], "status": status,
                               "stderr": m["stderr"] if not ok else ""})
            outs[name] = out_path
            if m["wall_s"] is not None:
                log(f"analyzer: {label} {name} rep {rep + 1}: {m['wall_s']:.2f}s, "
                    f"{m['maxrss_kib'] / 1024:.0f} MiB, exit {status}")
            else:
                log(f"analyzer: {label} {name} rep {rep + 1}: {status}")
    summary = {}
    for name, rs in runs.items():
        good = [r for r in rs if r["status"] == 0 or (name == "grep" and r["status"] == 1)]
        summary[name] = {
            "wall": median([r["wall"] for r in good]) if good else None,
            "cpu": median([r["cpu"] for r in good]) if good else None,
            "rss_kib": max(r["rss_kib"] for r in good) if good else None,
            "failed": [r for r in rs if r not in good],
            "output_bytes": os.path.getsize(outs[name]) if os.path.exists(outs[name]) else 0,
        }
    report = check_report(outs["json"]) if "json" in outs else None
    text_bytes = summary["text"]["output_bytes"] if "text" in summary else 0
    if cfg.perf and have_analyzer:
        data = os.path.join(cfg.results, f"perf-analyzer-{os.path.basename(d)}.data")
        subprocess.run(["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,32768", "-o", data, "--",
                        ANALYZER, "analyze", "--format", "json"] + paths,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        perf_summary(data, data[:-5] + ".txt", ["gatelog_analyzer::"], cfg.keep)
        log(f"analyzer: perf profile: {data[:-5]}.txt")
    for name in ("json", "text"):  # hundreds of MB each: keep only the measurements
        if name in outs and not cfg.keep and os.path.exists(outs[name]):
            os.unlink(outs[name])
    return {"summary": summary, "runs": runs, "report": report, "text_bytes": text_bytes,
            "bytes": sum(os.path.getsize(p) for p in paths)}


def analyzer_bench(cfg):
    info = {"inputs": [], "analyzer": ANALYZER if os.access(ANALYZER, os.X_OK) else None}
    home = tempfile.mkdtemp(prefix="gatelog-bench-lnav.", dir=cfg.tmp)
    env_lnav = dict(os.environ, HOME=home)
    try:
        for input_kind, sizes in (("quiet", cfg.sizes), ("incident", cfg.incident_sizes)):
            for size in sizes:
                d, manifest = generate(size, cfg.seed, input_kind)
                label = f"{input_kind} {size_label(size)}"
                validation = validate_records(os.path.join(d, "gatelog.json"), cfg)
                log(f"analyzer: {label}: {validation['note']}")
                m = measure_input(cfg, d, env_lnav, info["analyzer"] is not None, label)
                m.update({"input": input_kind, "size": size, "dir": d, "manifest": manifest,
                          "validation": validation})
                info["inputs"].append(m)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return info


def analyzer_table(info, cfg):
    lines = []
    lines.append("### Analyzer throughput")
    lines.append("")
    lines.append(f"Generated inputs (bench/gen, seed {cfg.seed}), each the four files NGINX error log + PHP-FPM "
                 f"log + kernel log + gatelog records: *quiet* = hours of a mostly quiet server with failure "
                 f"episodes, *incident* = one hour where most error-log lines are upstream failures of every kind "
                 f"(`--incident`). Warm page cache; median of {cfg.reps} runs; CPU = user + sys; peak RSS = the "
                 f"command's maxrss (getrusage; ~2 MiB is the floor any process shows). `grep` = `grep -c "
                 f"upstream FILES`, `lnav` = `lnav -n -c ';SELECT count(*) FROM all_logs WHERE log_text LIKE "
                 f"\"%upstream%\"' FILES`, `text`/`json` = `gatelog analyze --format text|json FILES`.")
    lines.append("")
    lines.append("| input | failures in it | tool | wall | CPU | MB/s | peak RSS | output |")
    lines.append("|---|---:|---|---:|---:|---:|---:|---|")
    checks = []
    for s in info["inputs"]:
        sm = s["summary"]
        lab = f"{s['input']} {size_label(s['size'])}"
        nf = fmt_int(s["manifest"]["failures"]["total"])
        for name in TOOLS:
            if name not in sm:
                lines.append(f"| {lab} | {nf} | {name} | not available ({ANALYZER} missing: analyzer not built) | | | | |")
                continue
            r = sm[name]
            if r["wall"] is None:
                fail = r["failed"][0]
                lines.append(f"| {lab} | {nf} | {name} | failed: exit {fail['status']} "
                             f"`{fail['stderr'][-150:].replace('|', '/')}` | | | | |")
                continue
            mbps = s["bytes"] / 1e6 / r["wall"]
            out = ""
            if name == "json" and s.get("report"):
                rep = s["report"]
                found = f"; {fmt_int(rep['failures'])} failures reported" if rep.get("failures") is not None else ""
                out = f"{rep['note']}{found}"
            elif name == "text":
                out = f"{r['output_bytes'] / 1e6:,.1f} MB" if r["output_bytes"] >= 1e6 else \
                    f"{r['output_bytes'] / 1e3:,.1f} kB"
            lines.append(f"| {lab} | {nf} | {name} | {r['wall']:.3f} s | {r['cpu']:.3f} s | {mbps:,.0f} | "
                         f"{r['rss_kib'] / 1024:.1f} MiB | {out} |")
    lines.append("")
    lines.append("| target | measured | |")
    lines.append("|---|---|---|")

    def row(name, measured, ok):
        lines.append(f"| {name} | {measured} | {verdict(ok)} |")
        if ok is not None:
            checks.append(ok)

    for s in info["inputs"]:
        sm = s["summary"]
        lab = f"{s['input']} {size_label(s['size'])}"
        v = s["validation"]
        row(f"generated records valid against docs/gatelog.v1.schema.json ({lab})", v["note"], v["ok"])
        g, l = sm["grep"]["wall"], sm["lnav"]["wall"]
        rep = s.get("report") or {"ok": False, "note": "no output"}
        for fmt in ("text", "json"):
            a = sm.get(fmt, {})
            an = a.get("wall")
            if an is None:
                row(f"analyzer --format {fmt} ≤ 4× grep, ≤ 0.5× lnav, RSS < 100 MB ({lab})", "no analyzer result", False)
                continue
            if fmt == "json" and not rep["ok"]:
                row(f"analyzer --format json targets ({lab})",
                    f"the analyzer ran but wrote no report ({rep['note']}): its times measure nothing", False)
                continue
            if fmt == "text" and not a.get("output_bytes"):
                row(f"analyzer --format text targets ({lab})", "the analyzer ran but wrote nothing", False)
                continue
            row(f"--format {fmt} time ≤ 4× grep ({lab})", f"{an / g:.2f}× ({an:.2f} s vs {g:.2f} s)" if g else "–",
                an <= 4 * g if g else None)
            row(f"--format {fmt} time ≤ 0.5× lnav ({lab})", f"{an / l:.2f}× ({an:.2f} s vs {l:.2f} s)" if l else "–",
                an <= 0.5 * l if l else None)
            mb = a["rss_kib"] * 1024 / 1e6
            row(f"--format {fmt} peak RSS < 100 MB ({lab})", f"{mb:.0f} MB", mb < 100)
        if rep.get("ok"):
            ratio = rep["bytes"] / s["bytes"]
            measured = f"{ratio:.2f}× ({rep['bytes'] / 1e6:,.1f} MB for {s['bytes'] / 1e6:,.1f} MB)"
            # the target is the incident's; on the quiet input the ratio is shown for reference
            row(f"JSON report ≤ 0.5× input ({lab})", measured, ratio <= 0.5 if s["input"] == "incident" else None)
    for input_kind in ("quiet", "incident"):
        for fmt in ("text", "json"):
            good = [s for s in info["inputs"] if s["input"] == input_kind and s["summary"].get(fmt, {}).get("wall")
                    and (fmt == "text" or (s.get("report") or {}).get("ok"))]
            if len(good) < 2:
                continue
            small, big = good[0], good[-1]
            factor = big["bytes"] / small["bytes"]
            t = big["summary"][fmt]["wall"] / small["summary"][fmt]["wall"]
            limit = 1.1 * factor
            row(f"--format {fmt} time linear in size, {input_kind} {size_label(small['size'])} → "
                f"{size_label(big['size'])} (≤ 1.1 × {factor:.1f} = {limit:.1f}×)", f"{t:.2f}×", t <= limit)
            r0 = small["summary"][fmt]["rss_kib"]
            r1 = big["summary"][fmt]["rss_kib"]
            row(f"--format {fmt} peak RSS flat, {input_kind} {size_label(small['size'])} → "
                f"{size_label(big['size'])} (≤ 1.25× + 4 MiB)", f"{r0 / 1024:.0f} → {r1 / 1024:.0f} MiB",
                r1 <= 1.25 * r0 + 4096)
    return lines, checks


# ----------------------------------------------------------------------------------------

def build_analyzer(cfg):
    if cfg.no_build:
        return
    log("building the analyzer: cargo build --release -p gatelog-analyzer")
    r = subprocess.run(["cargo", "build", "--release", "-q", "-p", "gatelog-analyzer"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        log("analyzer build failed; using " + (ANALYZER if os.path.exists(ANALYZER) else "nothing") + ":\n" +
            r.stderr.strip()[-1500:])
        return "failed"
    return "ok"


def binary_note(path):
    try:
        t = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
        return f"{path} built {t.strftime('%Y-%m-%d %H:%M UTC')}"
    except OSError:
        return f"{path} missing"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024 // 1024
    commit = cmd_out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    parts = {}
    for part in ("ngx-module", "analyzer"):
        c = cmd_out(["git", "-C", ROOT, "log", "-1", "--format=%h", "--", part])
        d = cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--", part])
        parts[part] = (c or "?") + (" + uncommitted changes" if d else "")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "mem_gib": mem,
        "kernel": platform.release(),
        "load": os.getloadavg(),
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "parts": parts,
        "php": cmd_out([FPM_BIN, "-v"]).split("\n")[0],
        "wrk": cmd_out(["wrk", "-v"]).split("\n")[0].split(" [")[0],
        "lnav": cmd_out(["lnav", "-V"]),
    }


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, fewer and shorter runs (a try-out, ~2 min)")
    ap.add_argument("--flavour", default="deb-1.22", choices=["deb-1.22", "vendored-1.28"])
    ap.add_argument("--only", choices=["module", "analyzer"], help="run one part only")
    ap.add_argument("--scenarios", help="comma-separated subset of static,php,502,504,502buf,504buf,"
                                        "static-metrics,502-metrics,504-metrics")
    ap.add_argument("--pairs", type=int, help="A/B pairs per scenario (default 7, quick 3)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 3, quick 2)")
    ap.add_argument("--rss-failures", type=int, help="failing requests for the RSS check (default 1000000, quick 100000; 0 = skip)")
    ap.add_argument("--sizes", help="sizes of the quiet input for the analyzer (default 100M,1G; quick 10M,100M)")
    ap.add_argument("--incident-sizes",
                    help="sizes of the incident input (default 100M,200M,1G; quick 10M,50M; 0 = none)")
    ap.add_argument("--callgrind-requests",
                    help="N1,N2: requests per callgrind run for the instruction counts (default 500,2500; quick "
                         "100,400; 0 = skip)")
    ap.add_argument("--reps", type=int, help="runs per tool and size (default 3, quick 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "latest.md"), help="where to write the table")
    ap.add_argument("--perf", action="store_true",
                    help="also profile (perf record --call-graph dwarf): one extra run per scenario for A and B, and the "
                         "analyzer per size; summaries in bench/results/perf-*.txt")
    ap.add_argument("--keep", action="store_true", help="keep the NGINX prefix (logs, records) of the module part")
    ap.add_argument("--no-pin", action="store_true", help="do not pin wrk and NGINX to CPUs 0 and 1")
    ap.add_argument("--no-build", action="store_true", help="do not run the builds (module, analyzer)")
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="where the NGINX prefix goes (default /tmp)")
    cfg = ap.parse_args()
    q = cfg.quick
    cfg.pairs = cfg.pairs or (3 if q else 7)
    cfg.duration = cfg.duration or (2 if q else 3)
    cfg.warmup = 1
    cfg.rss_failures = cfg.rss_failures if cfg.rss_failures is not None else (100_000 if q else 1_000_000)
    cfg.sizes = [parse_size(s) for s in (cfg.sizes or ("10M,100M" if q else "100M,1G")).split(",") if s != "0"]
    cfg.incident_sizes = [parse_size(s) for s in
                          (cfg.incident_sizes or ("10M,50M" if q else "100M,200M,1G")).split(",") if s != "0"]
    cr = cfg.callgrind_requests or ("100,400" if q else "500,2500")
    cfg.callgrind_requests = None if cr == "0" else tuple(int(x) for x in cr.split(","))
    if cfg.callgrind_requests and (len(cfg.callgrind_requests) != 2 or
                                   cfg.callgrind_requests[1] <= cfg.callgrind_requests[0]):
        ap.error("--callgrind-requests wants N1,N2 with N2 > N1")
    cfg.callgrind_conc = 20
    cfg.reps = cfg.reps or (2 if q else 3)
    cfg.scenarios = cfg.scenarios.split(",") if cfg.scenarios else None
    cfg.conns = 32
    cfg.buffer_args = " buffer=64k flush=1s"
    cfg.conns_504 = 400
    cfg.read_timeout = "100ms"
    cfg.static_bytes = 4096
    cfg.fpm_children = 2
    cfg.tool_timeout = 600
    cfg.results = os.path.dirname(os.path.abspath(cfg.out))
    os.makedirs(cfg.results, exist_ok=True)
    if cfg.perf and not shutil.which("perf"):
        ap.error("--perf needs perf (Debian: linux-perf)")

    t_start = time.monotonic()
    mach = machine()
    lines = [f"## Benchmark run {mach['date']}", ""]
    lines.append(f"Machine: {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']} GiB RAM, Linux {mach['kernel']}, "
                 f"load average at start {mach['load'][0]:.2f}. gatelog {mach['commit']} (ngx-module last changed in "
                 f"{mach['parts']['ngx-module']}, analyzer in {mach['parts']['analyzer']}). {mach['php']}; "
                 f"{mach['wrk']}; lnav {mach['lnav'].split()[-1] if mach['lnav'] else '?'}. "
                 f"Command: `bench/run{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`.")
    lines.append("")
    checks = []
    raw = {"machine": mach, "args": sys.argv[1:]}
    if cfg.only in (None, "module"):
        if os.environ.get("GATELOG_BENCH_MODULE_BUILD") == "failed":
            so = os.path.join(ROOT, "nginx-build", "out", cfg.flavour, "ngx_http_gatelog_module.so")
            lines.append(f"**Note:** `nginx-build/build.sh all` failed, so the module measured is the one already "
                         f"there: {binary_note(so)}.")
            lines.append("")
        info = module_bench(cfg)
        raw["module"] = info
        l, c = module_table(info, cfg)
        lines += l + [""]
        checks += c
    if cfg.only in (None, "analyzer"):
        if build_analyzer(cfg) == "failed":
            lines.append(f"**Note:** `cargo build --release -p gatelog-analyzer` failed (the working tree was being "
                         f"edited), so the analyzer measured is the binary already there: {binary_note(ANALYZER)}.")
            lines.append("")
        info = analyzer_bench(cfg)
        raw["analyzer"] = info
        l, c = analyzer_table(info, cfg)
        lines += l + [""]
        checks += c
    elapsed = time.monotonic() - t_start
    met = sum(1 for c in checks if c)
    lines.append(f"{met} of {len(checks)} targets met; the run took {elapsed / 60:.1f} min "
                 f"(load average at the end {os.getloadavg()[0]:.2f}).")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
    with open(cfg.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(cfg.out)[0] + ".json", "w") as f:
        json.dump(raw, f, indent=1, default=str)
    log(f"table written to {cfg.out}")


if __name__ == "__main__":
    main()
