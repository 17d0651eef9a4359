#!/usr/bin/env python3
"""Profiles hookgate under the load benchmark's conditions (see bench/README.md, "Profiles").

  perf       hookgate pinned to cpu 1, wrk + upstream on cpu 0 (as loadbench.py), sampled with
             `perf record -e cpu-clock` (a software clock: works in VMs without PMU counters);
             prints the hottest symbols, the shared objects, and allocator totals.
  callgrind  hookgate under valgrind's callgrind serving exactly --requests signed POSTs over
             16 keep-alive connections after a warm-up; prints instructions per request and the
             functions that spend them (repeatable to ~1%, unlike any timing on a shared box).

    bench/profile.sh perf --size 1024
    bench/profile.sh callgrind --size 65536 --requests 5000
    bench/profile.sh callgrind --env RUST_LOG=off        # compare: per-request log line off
"""
import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadbench  # noqa: E402  (payloads, processes)

UPSTREAM, GATEWAY = 18190, 18195


async def fixed_load(port, body, signature, total, conns=16):
    """Sends exactly `total` signed POSTs over `conns` keep-alive connections; returns statuses."""
    request = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"User-Agent: GitHub-Hookshot/bench\r\nAccept: */*\r\nX-GitHub-Event: push\r\n"
               f"X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\nX-Hub-Signature-256: {signature}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    statuses = {}

    async def one(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(n):
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                           if l.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(one(total // conns + (i < total % conns)) for i in range(conns)))
    return statuses


def allocator_calls(dump):
    """Calls into malloc/free/realloc recorded in a callgrind dump."""
    names, counts, callee = {}, {"malloc": 0, "free": 0, "realloc": 0, "write": 0, "writev": 0}, None
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("fn=(", "cfn=(")):
            ident, _, name = line.split("=", 1)[1].partition(")")
            if name.strip():
                names[ident] = name.strip()
            callee = names.get(ident) if line.startswith("cfn") else callee
        elif line.startswith("calls=") and callee in counts:
            counts[callee] += int(line[6:].split()[0])
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["perf", "callgrind"])
    ap.add_argument("--hookgate", default=str(loadbench.REPO / "target" / "release" / "hookgate"))
    ap.add_argument("--hyper-hmac", action="store_true",
                    help="profile the verifying floor (bench-hyper-proxy --verify-github) in hookgate's place")
    ap.add_argument("--env", action="append", default=[], help="VAR=value for hookgate (repeatable)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--conns", type=int, default=16, help="perf: wrk connections")
    ap.add_argument("--seconds", type=int, default=8, help="perf: seconds sampled")
    ap.add_argument("--callgraph", action="store_true", help="perf: record call graphs (dwarf; heavier)")
    ap.add_argument("--requests", type=int, default=10000, help="callgrind: requests counted")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = Path(a.out or f"/tmp/hookgate-profile/{a.mode}-{a.size}-{time.strftime('%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    body = loadbench.make_body(a.size)
    (out / "body.json").write_bytes(body)
    signature = loadbench.sign(body)
    conf = out / "hookgate.yaml"
    conf.write_text(loadbench.HOOKGATE_CONF.format(port=GATEWAY, up=UPSTREAM))
    env = dict(os.environ, WEBHOOK_SECRET=loadbench.SECRET, RUST_LOG="info")
    env.update(pair.split("=", 1) for pair in a.env)
    gateway = [a.hookgate, "--config", str(conf)]
    if a.hyper_hmac:
        gateway = [str(loadbench.HYPER_PROXY_BIN), "--verify-github", loadbench.SECRET, "--config", str(conf)]
    upstream = loadbench.Proc(["taskset", "-c", "0", str(loadbench.UPSTREAM_BIN),
                               f"127.0.0.1:{UPSTREAM}"], out / "upstream.log", port=UPSTREAM)
    try:
        if a.mode == "perf":
            gate = loadbench.Proc(["taskset", "-c", "1", *gateway], out / "hookgate.log",
                                  env=env, port=GATEWAY)
            try:
                wrk = ["taskset", "-c", "0", "wrk", "-t1", f"-c{a.conns}", "--timeout", "5s", "-s",
                       str(loadbench.HERE / "post.lua"), f"http://127.0.0.1:{GATEWAY}/webhook", "--",
                       str(out / "body.json"), signature]
                subprocess.run(wrk + ["-d2s"], capture_output=True, check=True)
                load = subprocess.Popen(wrk + [f"-d{a.seconds + 2}s"], stdout=subprocess.PIPE, text=True)
                time.sleep(1)
                data = out / "perf.data"
                record = ["perf", "record", "-e", "cpu-clock", "-F", "999" if a.callgraph else "4999", "-o", str(data),
                          "-p", str(gate.p.pid)] + (["--call-graph", "dwarf,16384"] if a.callgraph else [])
                subprocess.run(record + ["--", "sleep", str(a.seconds)], capture_output=True, check=True)
                print(next((l for l in load.communicate()[0].splitlines() if l.startswith("WRKJSON")), "no wrk summary"))
            finally:
                gate.stop()
            report = lambda *extra: subprocess.run(["perf", "report", "-i", str(data), "--stdio", *extra],
                                                   capture_output=True, text=True).stdout
            text = report("--no-children", "--sort", "dso,symbol", "--percent-limit", "0.7")
            (out / "report.txt").write_text(text)
            print("\n".join(l for l in text.splitlines() if l.strip() and not l.startswith("#"))[:12000])
            print("\n-- by shared object --")
            print("\n".join(l for l in report("--no-children", "--sort", "dso").splitlines()
                            if l.strip() and not l.startswith("#"))[:2000])
            if a.callgraph:
                children = report("--children", "--sort", "symbol", "--percent-limit", "2", "-g", "none")
                (out / "children.txt").write_text(children)
                print("\n-- inclusive (children) --")
                print("\n".join(l for l in children.splitlines() if l.strip() and not l.startswith("#"))[:8000])
        else:
            cg_out = out / "callgrind.out"
            gate = loadbench.Proc(["taskset", "-c", "1", "valgrind", "--tool=callgrind", "--instr-atstart=no",
                                   f"--callgrind-out-file={cg_out}", *gateway],
                                  out / "hookgate.log", env=env, port=GATEWAY, timeout=120)
            try:
                warm = asyncio.run(fixed_load(GATEWAY, body, signature, 500))
                subprocess.run(["callgrind_control", "-i", "on", str(gate.p.pid)], capture_output=True, check=True)
                t0 = time.time()
                statuses = asyncio.run(fixed_load(GATEWAY, body, signature, a.requests))
                elapsed = time.time() - t0
                subprocess.run(["callgrind_control", "-d", str(gate.p.pid)], capture_output=True, check=True)
                subprocess.run(["callgrind_control", "-i", "off", str(gate.p.pid)], capture_output=True)
                print(f"warm-up {warm}, counted {statuses} in {elapsed:.1f} s under valgrind")
            finally:
                gate.stop()
            dump = out / "callgrind.out.1"  # the dump taken right after the counted requests
            total = 0
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("summary:") or line.startswith("totals:"):
                    total = int(line.split()[1])
            sha = sum(int(l.split()[0].replace(",", "")) for l in subprocess.run(
                ["callgrind_annotate", "--auto=no", "--inclusive=no", "--threshold=100", str(dump)], capture_output=True,
                text=True).stdout.splitlines() if "compress256" in l or "digest_blocks" in l)
            allocations = allocator_calls(dump)
            print(f"instructions: {total / a.requests:,.0f} per request; {(total - sha) / a.requests:,.0f} without "
                  f"SHA-256 compression (valgrind hides SHA-NI, so sha2 runs its software path here); "
                  + ", ".join(f"{name} {n / a.requests:.1f}" for name, n in allocations.items()) + " calls per request")
            for inclusive in ("no", "yes"):
                text = subprocess.run(["callgrind_annotate", "--auto=no", f"--inclusive={inclusive}", "--threshold=95", str(dump)],
                                      capture_output=True, text=True).stdout
                (out / f"annotate-inclusive-{inclusive}.txt").write_text(text)
                lines = [l for l in text.splitlines() if l[:1].isdigit()][:45 if inclusive == "no" else 70]
                print(f"\n-- {'exclusive' if inclusive == 'no' else 'inclusive'} --")
                print("\n".join(lines))
    finally:
        upstream.stop()
    print(f"\nfiles: {out}")


if __name__ == "__main__":
    main()
