#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/, from the public vectors and example configs.

    python3 fuzz/seed_corpus.py          # from the repository root or anywhere

Each target's directory is emptied first, so what libFuzzer found locally is dropped: the
committed corpus is only these seeds (readable names, a few hundred KB), and `cargo test`
replays all of them (tests/fuzz_corpus.rs). The `verify` inputs use the format documented on
`Request` in fuzz/src/lib.rs. PEM keys come from `openssl` when it is installed; the output is
the same on every run.
"""

import glob
import json
import os
import re
import shutil
import subprocess
from base64 import b64decode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
TARGETS = ["form_json", "signature_layout", "timestamp", "template", "config", "verify", "keys"]


def vectors():
    """(file stem, case) for every case of tests/vectors/*.json."""
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "vectors", "*.json"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            for case in json.load(f):
                yield stem, case


def body(case):
    if "body_b64" in case:
        return b64decode(case["body_b64"])
    return case.get("body", "").encode()


def secrets(case):
    value = case["secret"]
    return value if isinstance(value, list) else [value]


def presets_source():
    with open(os.path.join(ROOT, "src", "verify", "presets.rs"), encoding="utf-8") as f:
        return f.read()


class Writer:
    """Writes each target's inputs under readable names, skipping repeated contents."""

    def __init__(self):
        self.seen = {target: set() for target in TARGETS}
        for target in TARGETS:
            directory = os.path.join(CORPUS, target)
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)

    def write(self, target, name, data):
        if isinstance(data, str):
            data = data.encode()
        if data in self.seen[target]:
            return
        self.seen[target].add(data)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        with open(os.path.join(CORPUS, target, name), "wb") as f:
            f.write(data)


def verify_request(case):
    """A vector case in the `verify` target's request format."""
    head = [f"{case.get('method', 'POST')} {case.get('url') or '-'} {case['now']}"]
    head += [f":secret: {secret}" for secret in secrets(case)]
    head += [f"{name}: {value}" for name, value in case["headers"].items()]
    return "\n".join(head).encode() + b"\n\n" + body(case)


def pem_keys():
    """PEM keys of every form `key_material` and `signing_key` read, made by openssl from the
    fuzz targets' fixed seeds (Ed25519: 32 bytes of 7s; P-256: the scalar 0x0909…09)."""
    if shutil.which("openssl") is None:
        return {}
    ed25519_pkcs8 = bytes.fromhex("302e020100300506032b657004220420") + bytes([7] * 32)
    p256_sec1 = (
        bytes.fromhex("30310201010420") + bytes([9] * 32) + bytes.fromhex("a00a06082a8648ce3d030107")
    )

    def openssl(*args, data):
        return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout.decode()

    return {
        "ed25519_private.pem": openssl("pkey", "-inform", "DER", data=ed25519_pkcs8),
        "ed25519_public.pem": openssl("pkey", "-inform", "DER", "-pubout", data=ed25519_pkcs8),
        "p256_private_sec1.pem": openssl("ec", "-inform", "DER", data=p256_sec1),
        "p256_private_pkcs8.pem": openssl("pkey", "-inform", "DER", data=p256_sec1),
        "p256_public.pem": openssl("ec", "-inform", "DER", "-pubout", data=p256_sec1),
    }


CONFIGS = {
    "every_key_source.yaml": """\
listen: ${LISTEN}
admin_listen: 127.0.0.1:9091
max_body_bytes: 65536
upstream_timeout: 2s
shutdown_timeout: 250ms
trust_forwarded_headers: true
routes:
  - name: rotation
    path_prefix: /hooks/
    methods: [POST, PUT]
    upstream: ${UPSTREAM}
    forward_headers: { verified: true, strip_signature: true }
    verify:
      scheme: github
      secrets:
        - ${SECRET}
        - { secret: old-secret, not_after: 2026-12-01T00:00:00Z }
        - { secret_file: relative/key }
  - name: whsec
    path: /hooks/svix
    upstream: echo
    enforce: false
    verify: { scheme: svix, secret: "${WHSEC}", tolerance: 10m }
  - name: discord
    path: /hooks/discord
    upstream: echo
    challenge: answer
    verify:
      scheme: discord
      public_keys:
        - a71959f41d4318d16c009526c18c3f0d1af273dbafb8ea53b254d8b3ea2ae267
        - { public_key_file: discord.pem, not_after: 2030-01-01T00:00:00.5Z }
  - name: enrol
    path: /hooks/freshbooks
    upstream: echo
    verify: { scheme: freshbooks, enrolment: true }
""",
    "generic_schemes.yaml": """\
routes:
  - name: custom
    path: /custom
    upstream: echo
    public_url: ${PUBLIC_URL}/custom
    verify:
      scheme: hmac
      header: X-Signature
      algorithm: sha512
      encoding: base64
      prefix: "v1="
      timestamp_header: X-Timestamp
      timestamp_format: rfc3339
      timestamp_window: past_only
      tolerance: 1h
      message: "{method} {url} {header:x-id|x-request-id} {timestamp} {form_json}"
      secret: custom
  - name: token
    path: /token
    methods: [GET, POST]
    upstream: http://[::1]:3000
    verify: { scheme: token, header: X-Hook-Token, secret: "t0k3n" }
  - name: basic
    path: /basic
    upstream: echo
    verify: { scheme: postmark, secret: "user:pass" }
""",
    "problems.yaml": """\
listen: nonsense
upstream_timeout: soon
routes:
  - name: a
    path: /a
    upstream: http://127.0.0.1:1/base
    verify: { scheme: nope, secret: "${UNSET_VAR}" }
  - name: a
    path: c
    path_prefix: /c
    methods: [post]
    upstream: https://example.com
    max_body_bytes: 0
    verify: { scheme: standard-webhooks, secret: "whsec_!!", header: X, tolerance: forever }
  - name: Bad Name
    path: /a
    upstream: echo
    challenge: answer
    verify: { scheme: hmac, secret: s, header: "bad header", message: "{nonce}", timestamp_header: T }
""",
}


def main():
    out = Writer()
    source = presets_source()
    templates = sorted(set(re.findall(r'message: "([^"]*)"', source)))
    templates.append("{method}{hubspot_url}{header:x-id|x-alt-id}{timestamp}{form_json}{url}")

    for stem, case in vectors():
        name = f"{stem}-{case['name']}"
        data = body(case)
        out.write("verify", name, verify_request(case))
        if b"=" in data and not data.lstrip().startswith((b"{", b"[")):
            out.write("form_json", name, data)
        for header, value in case["headers"].items():
            lower = header.lower()
            if "timestamp" in lower or lower.endswith("-date"):
                out.write("timestamp", f"{stem}-{lower}", value)
            elif lower != "content-type":
                out.write("signature_layout", f"{stem}-{lower}", value)
        for i, secret in enumerate(secrets(case)):
            out.write("keys", f"{stem}-{i}", secret)

    for i, template in enumerate(templates):
        url = "https://hooks.example.com/p%3Aq%2f%3F%40?a=%20%C3%BC%2&bodySHA256=ab"
        out.write("template", f"template-{i}", f"{template}\n{url}\nname=invoice.create&object_id=1&x=%C3%A9")

    for name, text in {
        "plus_percent": "memo=a%2Bb+%3D+c%26d&a+b=%2B",
        "stray_percent": "a=100%&b=%zz&c=%4&d=%%41&e=%4+1",
        "invalid_utf8_escapes": "a=%ff&b=%C3%28&%e2%82=x&c=%C3\u00e9%A9",
        "escapes_json": "q=%22%5C&c=%0A%0D%09%08%0C%00%1F&d=%7F%7E%20&e=%F0%9F%98%80&f=\U0001F600",
        "splitting": "&a=1;b=2&&flag&=v&x=b=c&",
        "duplicate_after_decoding": "a+b=1&a%20b=2",
    }.items():
        out.write("form_json", name, text)

    for name, text in {
        "unix_float": "1718000000.123456",
        "unix_float_long_fraction": "1718000000.1234567891234",
        "unix_ms": "1718000000000",
        "rfc3339_fraction": "2024-06-10T06:13:20.123456789Z",
        "rfc3339_offset": "2024-06-10T06:13:20+02:00",
        "twenty_digits": "99999999999999999999",
        "negative": "-1718000000",
    }.items():
        out.write("timestamp", name, text)

    out.write("signature_layout", "split_signature_timestamp", "t=1,v1=aa,v0=bb,v1=cc,junk,x=y\n1718000000")
    out.write("signature_layout", "versioned_list", "v1,aa v1a,bb v2,cc v1,dd")

    configs = dict(CONFIGS)
    configs["gateway.example.yaml"] = open(os.path.join(ROOT, "gateway.example.yaml")).read()
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))):
        configs[os.path.basename(path)] = open(path).read()
    for name, text in configs.items():
        out.write("config", name, text)

    for name, text in pem_keys().items():
        out.write("keys", name, text)
    out.write("keys", "whsec_unpadded", "whsec_aGVsbG8")
    out.write("keys", "ed25519_seed_hex", "07" * 32)
    out.write("keys", "p256_scalar_hex", "09" * 32)

    total = 0
    for target in TARGETS:
        files = glob.glob(os.path.join(CORPUS, target, "*"))
        size = sum(os.path.getsize(f) for f in files)
        total += size
        print(f"{target:17} {len(files):4} inputs {size / 1024:7.1f} KiB")
    print(f"{'total':17}      {total / 1024:14.1f} KiB")


if __name__ == "__main__":
    main()
