#!/usr/bin/env python3
"""hookgate's load benchmark (see bench/README.md; start it with bench/run.sh).

Runs, on loopback, in alternating rounds, each contender started fresh for every run:
  direct    wrk -> upstream                                (the limit)
  nginx     wrk -> nginx proxy_pass -> upstream            (a proxy that verifies nothing)
  hookgate  wrk -> hookgate (github route) -> upstream     (verifies HMAC-SHA256, then forwards)
and, on request (--contenders ...,hyper):
  hyper     wrk -> bench/upstream's bare hyper proxy -> upstream  (hookgate's stack doing nothing
            but relaying: its floor)
  hyper-hmac  the same proxy checking X-Hub-Signature-256 first (the least a verifying gateway
            on hookgate's stack does)
and prints requests/s, p50/p99, CPU us/request and peak RSS of the proxy, with ratios, then the
RSS of each proxy holding --idle-conns idle keep-alive connections.

CPU layout (default): cpu 0 runs wrk and the upstream, cpu 1 the proxy (taskset), as
../shared/bench does; --no-pin lets the scheduler place everything.
"""
import argparse
import asyncio
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# bench/upstream's binaries: the test upstream, and the bare hyper proxy (hookgate's floor).
UPSTREAM_BIN = HERE / "upstream" / "target" / "release" / "bench-upstream"
HYPER_PROXY_BIN = HERE / "upstream" / "target" / "release" / "bench-hyper-proxy"
SECRET = "It's a Secret to Everybody"  # the example secret of GitHub's webhook docs
PORT_UPSTREAM, PORT_NGINX, PORT_HYPER, PORT_HYPER_HMAC, PORT_HOOKGATE = 18180, 18181, 18182, 18183, 18185
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# ------------------------------------------------------------------------------------ payloads
def make_body(size):
    """A compact JSON object of exactly `size` bytes, shaped like a GitHub push delivery."""
    doc = {"ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
           "repository": {"id": 186853002, "full_name": "octo/hooks"}, "pusher": {"name": "octocat"},
           "commits": [], "pad": ""}
    encode = lambda d: json.dumps(d, separators=(",", ":")).encode()
    i = 0
    while len(encode(doc)) < size - 400:
        doc["commits"].append({"id": hashlib.sha1(str(i).encode()).hexdigest(), "message": f"Fix #{i}",
                               "author": {"name": "Octo Cat", "email": "octo@example.invalid"},
                               "modified": [f"src/file{i}.rs"]})
        i += 1
    doc["pad"] = "x" * max(0, size - len(encode(doc)))
    body = encode(doc)
    assert len(body) == size, (len(body), size)
    return body


def sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------------- processes
def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def session_pids(sid):
    """Every process of a session: a proxy's whole tree (nginx master and worker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                    pids.append(int(entry))
            except (OSError, ValueError):
                pass
    return pids


def cpu_seconds(pids, which=(11, 12)):
    """CPU seconds of `pids`: user + system by default; (11,) user only, (12,) system only."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            ticks += sum(int(fields[i]) for i in which)
        except (OSError, ValueError):
            pass
    return ticks / CLK_TCK


def memory_kib(pids, key):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def busy_seconds():
    """CPU seconds the whole machine has been busy (all cpus), from /proc/stat."""
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Proc:
    """A process in a session of its own, so its whole tree can be measured and stopped."""

    def __init__(self, cmd, logfile, env=None, port=None, timeout=30):
        self.log = open(logfile, "ab")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, env=env)
        if port:
            deadline = time.time() + timeout
            while not port_open(port):
                if self.p.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"{cmd[0]}... did not listen on {port} (see {logfile})")
                time.sleep(0.02)

    def pids(self):
        return session_pids(self.p.pid) or [self.p.pid]

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        for pid in session_pids(self.p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


# --------------------------------------------------------------------------------- contenders
NGINX_CONF = """worker_processes 1; daemon off; master_process on; user root;
pid {d}/nginx.pid; error_log {d}/error.log warn; worker_rlimit_nofile 20000;
events {{ worker_connections 8192; use epoll; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 75s;
  client_max_body_size 8m; client_body_buffer_size 2m;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream up {{ server 127.0.0.1:{up}; keepalive 1024; keepalive_requests 10000000; keepalive_timeout 75s; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $http_host; }}
  }}
}}
"""

HOOKGATE_CONF = """listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:0
routes:
  - name: github
    path_prefix: /
    upstream: http://127.0.0.1:{up}
    verify: {{ scheme: github, secret: "${{WEBHOOK_SECRET}}" }}
"""


class Contender:
    def __init__(self, name, port, verifies, start):
        self.name, self.port, self.verifies, self._start = name, port, verifies, start

    def start(self):
        return self._start()


class Bench:
    def __init__(self, args):
        self.a = args
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = Path(args.out or f"/tmp/hookgate-bench/{stamp}")
        self.out.mkdir(parents=True, exist_ok=True)
        self.pin_world = [] if args.no_pin else ["taskset", "-c", args.world_cpus]
        self.pin_proxy = [] if args.no_pin else ["taskset", "-c", args.proxy_cpus]
        self.bodies = {}
        self.runs, self.memory, self.checks = [], {}, {}
        self.contenders = self.make_contenders()

    def make_contenders(self):
        a, out = self.a, self.out
        by_name = {}

        def nginx():
            d = out / "nginx"
            d.mkdir(exist_ok=True)
            conf = d / "nginx.conf"
            conf.write_text(NGINX_CONF.format(d=d, up=PORT_UPSTREAM, port=PORT_NGINX))
            return Proc(self.pin_proxy + ["nginx", "-c", str(conf), "-e", str(d / "error.log")], d / "nginx.log",
                        port=PORT_NGINX)

        by_name["direct"] = Contender("direct", PORT_UPSTREAM, False, lambda: None)
        by_name["nginx"] = Contender("nginx", PORT_NGINX, False, nginx)

        def hyper(port, *verify):
            return Proc(self.pin_proxy + [str(HYPER_PROXY_BIN), *verify, f"127.0.0.1:{port}", f"127.0.0.1:{PORT_UPSTREAM}"],
                        out / f"hyper-proxy-{port}.log", port=port)

        by_name["hyper"] = Contender("hyper", PORT_HYPER, False, lambda: hyper(PORT_HYPER))
        by_name["hyper-hmac"] = Contender("hyper-hmac", PORT_HYPER_HMAC, True,
                                          lambda: hyper(PORT_HYPER_HMAC, "--verify-github", SECRET))
        variants = a.variant or [f"hookgate={a.hookgate}"]
        for i, spec in enumerate(variants):
            # name=binary[,VAR=value...]: extra builds or settings to compare side by side
            name, _, rest = spec.partition("=")
            binary, *env_pairs = rest.split(",")
            env = dict(os.environ, WEBHOOK_SECRET=SECRET)
            env["RUST_LOG"] = a.hookgate_log
            env.update(pair.split("=", 1) for pair in env_pairs)
            port = PORT_HOOKGATE + i

            def start(name=name, binary=binary, env=env, port=port):
                d = out / name
                d.mkdir(exist_ok=True)
                conf = d / "hookgate.yaml"
                conf.write_text(HOOKGATE_CONF.format(port=port, up=PORT_UPSTREAM))
                return Proc(self.pin_proxy + [binary, "--config", str(conf)], d / "hookgate.log", env=env, port=port)

            by_name[name] = Contender(name, port, True, start)
        wanted = [c for c in a.contenders.split(",") if c]
        if "hookgate" in wanted:
            wanted[wanted.index("hookgate"):wanted.index("hookgate") + 1] = [v.partition("=")[0] for v in variants]
        return [by_name[n] for n in wanted]

    # -------------------------------------------------------------------------------- upstream
    def start_upstream(self):
        if port_open(PORT_UPSTREAM):
            raise SystemExit(f"port {PORT_UPSTREAM} is in use: is another benchmark running?")
        if self.a.upstream == "echo":
            cmd = [self.a.hookgate, "echo", "--listen", f"127.0.0.1:{PORT_UPSTREAM}"]
        else:
            cmd = [str(UPSTREAM_BIN), f"127.0.0.1:{PORT_UPSTREAM}"]
        self.upstream = Proc(self.pin_world + cmd, self.out / "upstream.log", port=PORT_UPSTREAM)

    def upstream_requests(self):
        if self.a.upstream == "echo":
            return None
        c = http.client.HTTPConnection("127.0.0.1", PORT_UPSTREAM, timeout=5)
        c.request("GET", "/__stats")
        text = c.getresponse().read().decode()
        c.close()
        return int(text.strip().split("=")[1])

    # ----------------------------------------------------------------------------- correctness
    @staticmethod
    def post(port, body, signature):
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.request("POST", "/webhook", body=body, headers=headers)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    def check(self, contender):
        """Signed bodies pass; for verifiers, a tampered body or a wrong secret is refused
        (4xx) and never reaches the upstream."""
        proc = contender.start()
        results = {}
        try:
            for size, (_, body, signature) in sorted(self.bodies.items()):
                results[f"signed {size} B"] = self.post(contender.port, body, signature) == 200
            if contender.verifies:
                _, body, signature = self.bodies[min(self.bodies)]
                forged = {"tampered body": (body[:-2] + b"y}", signature), "wrong secret": (body, sign(body, "guess"))}
                for name, (b, s) in forged.items():
                    before = self.upstream_requests()
                    status = self.post(contender.port, b, s)
                    reached = (self.upstream_requests() or 0) - (before or 0)
                    results[name] = 400 <= status < 500 and reached == 0
        finally:
            if proc:
                proc.stop()
        self.checks[contender.name] = results
        ok = all(results.values())
        log(f"  check {contender.name:<10} {'ok' if ok else 'FAILED'}: " +
            ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in results.items()))
        return ok

    # ------------------------------------------------------------------------------------ load
    def wrk(self, port, conns, seconds, size, delay_ms=0):
        path, _, signature = self.bodies[size]
        cmd = self.pin_world + ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "-s",
                                str(HERE / "post.lua"), f"http://127.0.0.1:{port}/webhook", "--", str(path),
                                signature, str(delay_ms)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        for line in r.stdout.splitlines():
            if line.startswith("WRKJSON "):
                return json.loads(line[8:])
        raise RuntimeError(f"wrk failed: {r.stdout}\n{r.stderr}")

    def wait_quiet(self):
        """Waits (up to 20 s) until processes that are not ours use < 15% of a core."""
        deadline = time.time() + 20
        own = self.upstream.pids()
        while time.time() < deadline:
            b0, c0 = busy_seconds(), cpu_seconds(own)
            time.sleep(0.5)
            if 100 * ((busy_seconds() - b0) - (cpu_seconds(own) - c0)) / 0.5 < 15:
                return

    def run_once(self, contender, cell, rnd):
        a = self.a
        self.wait_quiet()
        proc = contender.start()
        try:
            target = proc or self.upstream
            if a.warmup:
                self.wrk(contender.port, cell["conns"], a.warmup, cell["size"], cell["delay"])
            pids, up_pids = target.pids(), self.upstream.pids()
            s0 = cpu_seconds(pids, (12,))
            c0, u0, w0, b0, t0 = cpu_seconds(pids), cpu_seconds(up_pids), children_cpu(), busy_seconds(), time.time()
            w = self.wrk(contender.port, cell["conns"], a.duration, cell["size"], cell["delay"])
            c1, u1, w1, b1, t1 = cpu_seconds(pids), cpu_seconds(up_pids), children_cpu(), busy_seconds(), time.time()
            s1 = cpu_seconds(pids, (12,))
            rss = memory_kib(pids, "VmHWM" if proc else "VmRSS") / 1024
        finally:
            if proc:
                proc.stop()
        own = (w1 - w0) + (u1 - u0) + ((c1 - c0) if proc else 0)
        rec = dict(contender=contender.name, cell=cell["name"], round=rnd,
                   rps=w["requests"] / (w["duration_us"] / 1e6), p50=w["p50"] / 1000, p99=w["p99"] / 1000,
                   errors=w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"],
                   cpu_pct=100 * (c1 - c0) / (t1 - t0), us_per_req=1e6 * (c1 - c0) / max(1, w["requests"]),
                   sys_us_per_req=1e6 * (s1 - s0) / max(1, w["requests"]),
                   rss_mib=rss, foreign_pct=100 * ((b1 - b0) - own) / (t1 - t0))
        self.runs.append(rec)
        log(f"  r{rnd} {cell['name']:<12} {contender.name:<10} {rec['rps']:>8.0f} req/s  p50 {rec['p50']:.3f}  "
            f"p99 {rec['p99']:.3f} ms  {rec['us_per_req']:5.1f} us/req (kernel {rec['sys_us_per_req']:.1f}; {rec['cpu_pct']:.0f}% cpu)  "
            f"rss {rss:.1f} MiB  err {rec['errors']}  foreign {rec['foreign_pct']:.0f}%")

    def idle_memory(self, contender):
        """RSS fresh, then while --idle-conns keep-alive connections sit idle after one request each."""
        proc = contender.start()
        if not proc:
            return
        try:
            time.sleep(0.3)
            fresh = memory_kib(proc.pids(), "VmRSS")
            path, _, signature = self.bodies[min(self.bodies)]
            client = subprocess.Popen(self.pin_world + [sys.executable, __file__, "--idle-client", str(contender.port),
                                                        str(self.a.idle_conns), str(path), signature],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ready = client.stdout.readline().strip()
            time.sleep(1.0)
            held = memory_kib(proc.pids(), "VmRSS")
            client.stdin.close()
            client.wait(20)
        finally:
            proc.stop()
        self.memory[contender.name] = dict(fresh=fresh / 1024, held=held / 1024,
                                           per_conn_kib=(held - fresh) / self.a.idle_conns, client=ready)
        log(f"  idle {contender.name:<10} fresh {fresh / 1024:.1f} MiB, with {self.a.idle_conns} idle conns "
            f"{held / 1024:.1f} MiB ({(held - fresh) / self.a.idle_conns:.1f} KiB/conn) [{ready}]")

    # ---------------------------------------------------------------------------------- report
    def report(self):
        lines = []
        cells = list(dict.fromkeys(r["cell"] for r in self.runs))
        names = [c.name for c in self.contenders]

        def agg(cell, name):
            rs = [r for r in self.runs if r["cell"] == cell and r["contender"] == name]
            if not rs:
                return None
            med = lambda k: statistics.median(r[k] for r in rs)
            return dict(rps=med("rps"), lo=min(r["rps"] for r in rs), hi=max(r["rps"] for r in rs), p50=med("p50"),
                        p99=med("p99"), us=med("us_per_req"), sys=med("sys_us_per_req"), cpu=med("cpu_pct"), rss=max(r["rss_mib"] for r in rs),
                        err=sum(r["errors"] for r in rs), foreign=max(r["foreign_pct"] for r in rs), n=len(rs))

        for cell in cells:
            d, n = agg(cell, "direct"), agg(cell, "nginx")
            lines += [f"### {cell}", "",
                      "| contender | req/s median (min-max) | vs direct | vs nginx | p50 ms | p99 ms | p50/p99 added vs direct ms "
                      "| proxy CPU us/req (of it kernel) | vs nginx | proxy CPU % | peak RSS MiB | errors | max foreign % |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for name in names:
                x = agg(cell, name)
                if not x:
                    continue
                ratio = lambda v, ref, k: f"{v[k] / ref[k]:.2f}" if ref and ref[k] else "-"
                added = f"{x['p50'] - d['p50']:+.3f} / {x['p99'] - d['p99']:+.3f}" if d and name != "direct" else "-"
                proxy = name != "direct"
                lines.append(
                    f"| {name} | {x['rps']:,.0f} ({x['lo']:,.0f}-{x['hi']:,.0f}) | {ratio(x, d, 'rps')} | "
                    f"{ratio(x, n, 'rps')} | {x['p50']:.3f} | {x['p99']:.3f} | {added} | "
                    f"{x['us']:.1f} ({x['sys']:.1f}) | {ratio(x, n, 'us') if proxy else '-'} | {x['cpu']:.0f} | "
                    f"{x['rss']:.1f}{'' if proxy else ' (upstream)'} | {x['err']} | {x['foreign']:.0f} |"
                    if proxy else
                    f"| {name} | {x['rps']:,.0f} ({x['lo']:,.0f}-{x['hi']:,.0f}) | 1.00 | {ratio(x, n, 'rps')} | "
                    f"{x['p50']:.3f} | {x['p99']:.3f} | - | - | - | - | {x['rss']:.1f} (upstream) | {x['err']} | "
                    f"{x['foreign']:.0f} |")
            lines.append("")
        if self.memory:
            lines += [f"### {self.a.idle_conns} idle keep-alive connections", "",
                      "| proxy | RSS fresh MiB | RSS holding them MiB | KiB per connection |", "|---|---|---|---|"]
            for name, m in self.memory.items():
                lines.append(f"| {name} | {m['fresh']:.1f} | {m['held']:.1f} | {m['per_conn_kib']:.1f} |")
            lines.append("")
        lines.append("Medians over rounds; runs alternate the contender order. A 'max foreign %' above ~15 means "
                     "other processes used the CPU during a run: treat that row as noisy.")
        return "\n".join(lines)

    def run(self):
        a = self.a
        for size in a.sizes:
            body = make_body(size)
            path = self.out / f"body-{size}.json"
            path.write_bytes(body)
            self.bodies[size] = (path, body, sign(body))
        meta = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), argv=sys.argv[1:],
                    cpu=next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
                    nproc=os.cpu_count(), kernel=os.uname().release,
                    nginx=subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
                    hookgate=subprocess.run([a.hookgate, "--version"], capture_output=True, text=True).stdout.strip(),
                    upstream=a.upstream, hookgate_log=a.hookgate_log,
                    pinning="off" if a.no_pin else f"wrk+upstream on cpu {a.world_cpus}, proxy on cpu {a.proxy_cpus}")
        log("output:", self.out)
        for k, v in meta.items():
            log(f"  {k}: {v}")
        self.start_upstream()
        try:
            log("correctness")
            for c in list(self.contenders):
                if not self.check(c):
                    log(f"  !! {c.name} failed its checks: not timed")
                    self.contenders.remove(c)
            cells = [dict(name=f"{s // 1024}KiB/c{c}", size=s, conns=c, delay=0) for s in a.sizes for c in a.conns]
            if a.latency_conns:
                cells.append(dict(name=f"light 1KiB/c{a.latency_conns}", size=min(a.sizes), conns=a.latency_conns,
                                  delay=a.latency_delay_ms))
            log(f"timing: {len(cells)} cells x {len(self.contenders)} contenders x {a.rounds} rounds x "
                f"({a.warmup}+{a.duration}) s")
            for rnd in range(1, a.rounds + 1):
                order = self.contenders if rnd % 2 else list(reversed(self.contenders))
                for cell in cells:
                    for c in order:
                        self.run_once(c, cell, rnd)
            if a.idle_conns:
                log(f"memory: {a.idle_conns} idle keep-alive connections")
                for c in self.contenders:
                    self.idle_memory(c)
        finally:
            self.upstream.stop()
        text = "\n".join([f"## hookgate load benchmark, {meta['date']}", ""] +
                         [f"- {k}: `{v}`" for k, v in meta.items() if k != "date"] + ["", self.report()])
        (self.out / "results.md").write_text(text + "\n")
        (self.out / "results.json").write_text(json.dumps(dict(meta=meta, runs=self.runs, memory=self.memory,
                                                               checks=self.checks), indent=1))
        print("\n" + text)
        log("wrote", self.out / "results.md")


# ------------------------------------------------------------------------------ idle client
async def idle_client(port, n, body_file, signature):
    """Opens n keep-alive connections, sends one signed POST on each, reads the answer, prints
    READY, then holds them idle until stdin closes."""
    body = Path(body_file).read_bytes()
    request = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"X-GitHub-Event: push\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    gate = asyncio.Semaphore(64)

    async def one():
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            return int(head.split(b" ", 2)[1]), writer

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    ok = sum(1 for r in results if not isinstance(r, BaseException) and r[0] == 200)
    print(f"ok={ok} failed={n - ok}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--idle-client":
        port, n, body_file, signature = sys.argv[2:6]
        asyncio.run(idle_client(int(port), int(n), body_file, signature))
        return
    ints = lambda s: [int(x) for x in s.split(",")]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contenders", default="direct,nginx,hookgate", help="comma list of direct, nginx, hookgate, hyper (a bare hyper proxy), "
                    "hyper-hmac (the same, verifying the signature)")
    ap.add_argument("--hookgate", default=str(REPO / "target" / "release" / "hookgate"), help="the binary to run")
    ap.add_argument("--hookgate-log", default="info",
                    help="RUST_LOG for hookgate (info, as shipped: refusals only; hookgate=debug adds a line per forwarded request)")
    ap.add_argument("--variant", action="append",
                    help="NAME=BINARY[,VAR=value...]: run these hookgate builds/settings in place of 'hookgate' "
                         "(repeatable), e.g. --variant access-log=target/release/hookgate,RUST_LOG=hookgate=debug")
    ap.add_argument("--upstream", choices=["tiny", "echo"], default="tiny",
                    help="tiny: bench/upstream (answers 'ok'); echo: `hookgate echo` (answers the body back)")
    ap.add_argument("--sizes", type=ints, default=[1024, 65536])
    ap.add_argument("--conns", type=ints, default=[16, 128])
    ap.add_argument("--duration", type=int, default=5, help="seconds per timed run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of untimed load first")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latency-conns", type=int, default=16, help="light-load cell connections (0: none)")
    ap.add_argument("--latency-delay-ms", type=int, default=8, help="pause per connection between requests there")
    ap.add_argument("--idle-conns", type=int, default=1000, help="idle keep-alive connections for RSS (0: skip)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--world-cpus", default="0")
    ap.add_argument("--proxy-cpus", default="1")
    ap.add_argument("--out", help="results folder (default /tmp/hookgate-bench/<time>)")
    args = ap.parse_args()
    for tool in ["wrk", "nginx"] + ([] if args.no_pin else ["taskset"]):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: run bench/run.sh, which installs it")
    Bench(args).run()


if __name__ == "__main__":
    main()
