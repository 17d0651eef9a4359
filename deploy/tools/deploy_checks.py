#!/usr/bin/env python3
"""Checks of deploy/ that need neither a cluster nor a container engine.

.ci/deploy-checks runs these with the tools it installs (a virtualenv with the packages in
deploy/tools/requirements.txt); each subcommand says what it checked and exits 1 on a problem.

  kubernetes OUT     every manifest against the Kubernetes JSON schemas (kubernetes-validate,
                     strict: unknown fields fail), as written and as `kubectl kustomize` renders
                     it; the kustomizations; the pods' security settings. Writes the
                     prometheus-operator resources to OUT/crds.json for validate-crds.mjs.
  configs HOOKGATE   `HOOKGATE check` on every config a manifest embeds, with the environment the
                     manifest gives the container (secrets replaced by a dummy), and on
                     deploy/gateway.container.yaml.
  dockerfile OUT     the Dockerfile's invariants, and the build context that .dockerignore leaves,
                     staged into OUT/context the way the Dockerfile's COPY lines take it.
  prometheus OUT     the rule tests cover every alert, firing and not; the PrometheusRule holds
                     exactly the rules file; the dashboard is what dashboard.py writes and well
                     formed, and its queries are written to OUT/dashboard.rules.yml for
                     `promtool check rules`.
  sync               regenerate deploy/kubernetes/monitoring/prometheusrule.yaml from
                     deploy/prometheus/hookgate.rules.yml, and deploy/grafana/hookgate.json from
                     deploy/tools/dashboard.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # `sync` needs no YAML parser; everything else runs in the tools' virtualenv
    yaml = None

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "hookgate.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests"
PROMETHEUS_RULE = K8S / "monitoring" / "prometheusrule.yaml"
DASHBOARD = DEPLOY / "grafana" / "hookgate.json"

# The oldest Kubernetes the manifests support (the preStop `sleep` action is on by default from
# 1.30) and the newest whose schemas kubernetes-validate bundles.
K8S_MIN_VERSION = "1.30.0"
CRD_GROUPS = ("monitoring.coreos.com/",)
# What the container environment gives a `${VAR}` that comes from a Secret: valid for every
# shared-secret scheme, Standard Webhooks' whsec_ base64 included.
DUMMY_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DEFAULT_CONFIG = "/etc/hookgate/gateway.yaml"


class Problems:
    """Collects problems so that one run reports all of them."""

    def __init__(self, what: str):
        self.what = what
        self.items: list[str] = []
        self.checked = 0

    def add(self, message: str) -> None:
        self.items.append(message)
        print(f"FAIL {message}")

    def ok(self, message: str) -> None:
        self.checked += 1
        print(f"ok   {message}")

    def finish(self) -> int:
        if self.items:
            print(f"{self.what}: {len(self.items)} problem(s)")
            return 1
        print(f"{self.what}: all {self.checked} checks passed")
        return 0


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_docs(path: Path) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.is_file())


def is_crd(doc: dict) -> bool:
    return str(doc.get("apiVersion", "")).startswith(CRD_GROUPS)


def is_kustomization(doc: dict) -> bool:
    return doc.get("kind") == "Kustomization"


def pod_spec(doc: dict) -> dict | None:
    """The pod template's spec of a workload, or None."""
    spec = doc.get("spec") or {}
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return (spec.get("template") or {}).get("spec")
    if doc.get("kind") == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if doc.get("kind") == "Pod":
        return spec
    return None


def image_name(image: str) -> str:
    """`registry/path/name:tag@digest` -> `registry/path/name`."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return image[: len(image) - len(last)] + last.split(":", 1)[0]


def is_hookgate(container: dict) -> bool:
    return image_name(container.get("image", "")).rsplit("/", 1)[-1] == "hookgate"


# ---- kubernetes -----------------------------------------------------------------------------------


def schema_check(doc: dict, source: str, problems: Problems) -> None:
    import kubernetes_validate

    what = f"{source}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
    for version in (K8S_MIN_VERSION, kubernetes_validate.latest_version()):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.absolute_path)
            problems.add(f"{what} (Kubernetes {version}): {path}: {e.message}")
            return
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.add(f"{what}: {e.message}")
            return
    problems.ok(f"{what} (Kubernetes {K8S_MIN_VERSION} and {kubernetes_validate.latest_version()}, strict)")


def pod_policy_check(doc: dict, source: str, problems: Problems) -> None:
    """What the issue asks of every pod: non-root, no privilege escalation, read-only root, no
    capabilities, resources, and probes on hookgate's admin port."""
    spec = pod_spec(doc)
    if spec is None:
        return
    what = f"{source}: {doc['kind']}/{doc['metadata']['name']}"
    errors = []
    pod_sc = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        errors.append("automountServiceAccountToken must be false (hookgate needs no API access)")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        errors.append("securityContext.seccompProfile.type must be RuntimeDefault")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            errors.append(f"container {name}: runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
            errors.append(f"container {name}: runAsUser must be a non-zero uid")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"container {name}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"container {name}: readOnlyRootFilesystem must be true")
        if sc.get("privileged"):
            errors.append(f"container {name}: must not be privileged")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            errors.append(f"container {name}: capabilities.drop must contain ALL")
        if (sc.get("capabilities") or {}).get("add"):
            errors.append(f"container {name}: must add no capabilities")
        res = c.get("resources") or {}
        for key in ("cpu", "memory"):
            if key not in (res.get("requests") or {}):
                errors.append(f"container {name}: resources.requests.{key} missing")
        if "memory" not in (res.get("limits") or {}):
            errors.append(f"container {name}: resources.limits.memory missing")
        if is_hookgate(c):
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
            if set(ports) < {"http", "admin"}:
                errors.append(f"container {name}: needs ports named http and admin, has {sorted(ports)}")
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = (c.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path or get.get("port") not in ("admin", ports.get("admin")):
                    errors.append(f"container {name}: {probe} must GET {path} on the admin port")
            if ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") is None:
                errors.append(f"container {name}: needs a preStop sleep (endpoints drop the pod first)")
    if errors:
        for e in errors:
            problems.add(f"{what}: {e}")
    else:
        problems.ok(f"{what}: non-root, no escalation, read-only root, no capabilities, resources, probes")


def kustomization_check(path: Path, problems: Problems) -> None:
    doc = load_docs(path)[0]
    directory = path.parent
    listed = [directory / r for r in doc.get("resources", [])]
    errors = []
    for r in listed:
        if not r.exists():
            errors.append(f"resource {r.name} does not exist")
    for f in sorted(directory.glob("*.yaml")):
        if f.name != "kustomization.yaml" and f not in listed:
            errors.append(f"{f.name} is in the directory but not in resources")
    images = {i["name"] for i in doc.get("images", [])}
    used = set()
    for r in listed:
        if r.exists():
            for d in load_docs(r):
                spec = pod_spec(d) or {}
                for c in spec.get("containers", []) + spec.get("initContainers", []):
                    used.add(image_name(c["image"]))
    for name in sorted(used - images):
        errors.append(f"image {name} has no `images` entry: it would be pulled as is")
    for name in sorted(images - used):
        errors.append(f"`images` entry {name} matches no container")
    if errors:
        for e in errors:
            problems.add(f"{rel(path)}: {e}")
    else:
        problems.ok(f"{rel(path)}: resources complete, every image mapped")


def kustomize_render(directory: Path, problems: Problems) -> list[dict] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print(f"skip {rel(directory)}: no kubectl here to render it (its files are checked one by one)")
        return None
    run = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    if run.returncode != 0:
        problems.add(f"kubectl kustomize {rel(directory)}: {run.stderr.strip()}")
        return None
    docs = [d for d in yaml.safe_load_all(run.stdout) if d is not None]
    for d in docs:
        spec = pod_spec(d) or {}
        for c in spec.get("containers", []):
            if "/" not in image_name(c["image"]):
                problems.add(f"kubectl kustomize {rel(directory)}: container {c['name']} image {c['image']} was not rewritten")
    problems.ok(f"kubectl kustomize {rel(directory)}: {len(docs)} resources")
    return docs


def cmd_kubernetes(out: Path) -> int:
    import kubernetes_validate

    print(f"kubernetes-validate {kubernetes_validate.__version__}; schemas for Kubernetes {K8S_MIN_VERSION} and {kubernetes_validate.latest_version()}")
    problems = Problems("kubernetes")
    crds = []
    for path in manifest_files():
        for doc in load_docs(path):
            if is_kustomization(doc):
                kustomization_check(path, problems)
            elif is_crd(doc):
                crds.append({"source": rel(path), "doc": doc})
            else:
                schema_check(doc, rel(path), problems)
                pod_policy_check(doc, rel(path), problems)
        if path.name == "kustomization.yaml":
            rendered = kustomize_render(path.parent, problems)
            for doc in rendered or []:
                source = f"kustomize {rel(path.parent)}"
                if is_crd(doc):
                    crds.append({"source": source, "doc": doc})
                else:
                    schema_check(doc, source, problems)
    out.mkdir(parents=True, exist_ok=True)
    (out / "crds.json").write_text(json.dumps(crds, indent=1))
    return problems.finish()


# ---- configs --------------------------------------------------------------------------------------


def embedded_configs(problems: Problems) -> list[tuple[str, str, dict[str, str]]]:
    """(where, config text, environment) for every hookgate container in the manifests."""
    found = []
    for directory in sorted({p.parent for p in manifest_files()}):
        docs = [(p, d) for p in sorted(directory.glob("*.yaml")) for d in load_docs(p)]
        by_kind: dict[tuple[str, str], dict] = {(d.get("kind"), (d.get("metadata") or {}).get("name")): d for _, d in docs}
        for path, doc in docs:
            spec = pod_spec(doc)
            if spec is None:
                continue
            for c in spec.get("containers", []):
                if not is_hookgate(c):
                    continue
                where = f"{rel(path)}: {doc['kind']}/{doc['metadata']['name']} container {c['name']}"
                args = c.get("args") or ["--config", DEFAULT_CONFIG]
                config_path = DEFAULT_CONFIG
                for flag in ("--config", "-c"):
                    if flag in args:
                        config_path = args[args.index(flag) + 1]
                mount = next(
                    (m for m in c.get("volumeMounts", [])
                     if config_path == m["mountPath"] or config_path.startswith(m["mountPath"].rstrip("/") + "/")),
                    None,
                )
                if mount is None:
                    problems.add(f"{where}: nothing is mounted at {config_path}")
                    continue
                volume = next((v for v in spec.get("volumes", []) if v["name"] == mount["name"]), {})
                if "configMap" not in volume:
                    problems.add(f"{where}: {config_path} is not from a ConfigMap")
                    continue
                key = mount.get("subPath") or config_path[len(mount["mountPath"].rstrip("/")) + 1:]
                for item in volume["configMap"].get("items", []):
                    if item["path"] == key:
                        key = item["key"]
                cm = by_kind.get(("ConfigMap", volume["configMap"]["name"]))
                if cm is None or key not in (cm.get("data") or {}):
                    problems.add(f"{where}: no ConfigMap {volume['configMap']['name']} with key {key} beside it")
                    continue
                env = {}
                for e in c.get("env", []):
                    if "value" in e:
                        env[e["name"]] = e["value"]
                        continue
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        secret = by_kind.get(("Secret", ref["name"]))
                        keys = set((secret or {}).get("stringData") or {}) | set((secret or {}).get("data") or {})
                        if secret is not None and ref["key"] not in keys:
                            problems.add(f"{where}: env {e['name']}: Secret {ref['name']} has no key {ref['key']}")
                    env[e["name"]] = DUMMY_SECRET
                for e in c.get("envFrom", []):
                    ref = e.get("secretRef") or e.get("configMapRef") or {}
                    source = by_kind.get(("Secret" if "secretRef" in e else "ConfigMap", ref.get("name")))
                    for k in set((source or {}).get("stringData") or {}) | set((source or {}).get("data") or {}):
                        env[e.get("prefix", "") + k] = DUMMY_SECRET
                found.append((f"{where} ({cm['metadata']['name']}/{key})", cm["data"][key], env))
    container_config = DEPLOY / "gateway.container.yaml"
    found.append((rel(container_config), container_config.read_text(), {}))
    return found


def cmd_configs(hookgate: str) -> int:
    problems = Problems("configs")
    configs = embedded_configs(problems)
    tmp = ROOT / "target" / "deploy-checks" / "configs"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, (where, text, env) in enumerate(configs):
        path = tmp / f"config-{i}.yaml"
        path.write_text(text)
        run = subprocess.run(
            [hookgate, "check", "--config", str(path)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            problems.add(f"{where}: hookgate check exit {run.returncode}:\n{run.stdout}{run.stderr}")
        else:
            names = ", ".join(sorted(env)) or "none"
            problems.ok(f"{where}: hookgate check passes (env: {names})")
    return problems.finish()


# ---- dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        patterns.append((negate, pattern))
    return patterns


def ignored(relpath: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern that matches the path, or one of its parent directories,
    decides; `*` does not cross `/`, `**` does."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, pattern in patterns:
        regex = "^" + re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        if any(re.match(regex, p) for p in prefixes):
            result = not negate
    return result


def build_context() -> list[str]:
    """The files `docker build .` sends, after .dockerignore."""
    patterns = dockerignore_patterns()
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        keep = []
        for d in dirnames:
            relpath = os.path.relpath(os.path.join(dirpath, d), ROOT)
            # An ignored directory no exception reaches into (target/, .git/) is not walked.
            reachable = any(neg and (p + "/").startswith(relpath + "/") for neg, p in patterns)
            if not ignored(relpath, patterns) or reachable:
                keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            relpath = os.path.relpath(os.path.join(dirpath, name), ROOT)
            if not ignored(relpath, patterns):
                files.append(relpath)
    return sorted(files)


def stage_copy(args: str, workdir: str, context: list[str], staged: Path) -> list[str]:
    """Copies what `COPY args` (in a stage whose WORKDIR is `workdir`) takes from the context into
    `staged`, which stands for the WORKDIR. Returns the sources that matched nothing."""
    *sources, dest = [x for x in args.split() if not x.startswith("--")]
    dest_dir = os.path.relpath(dest if dest.startswith("/") else os.path.join(workdir, dest), workdir)
    into_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
    missing = []
    for source in sources:
        source = os.path.normpath(source)
        if source in context:
            target = os.path.join(dest_dir, os.path.basename(source)) if into_dir else dest_dir
            pairs = [(source, target)]
        else:
            pairs = [(f, os.path.join(dest_dir, os.path.relpath(f, source))) for f in context if f.startswith(source + "/")]
        if not pairs:
            missing.append(source)
        for f, target in pairs:
            (staged / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, staged / target)
    return missing


def cargo_targets(manifest: Path) -> list[tuple[str, tuple[str, ...]]]:
    """The lib/bin/build-script targets of a package, after `cargo fetch --locked` read its
    manifest the way a build does: a [[test]] or [[bench]] whose file the context lacks fails."""
    fetch = subprocess.run(["cargo", "fetch", "--locked", "--manifest-path", str(manifest)], capture_output=True, text=True)
    if fetch.returncode != 0:
        raise RuntimeError(fetch.stderr.strip())
    run = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1", "--manifest-path", str(manifest)],
        capture_output=True, text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip())
    meta = json.loads(run.stdout)
    return sorted(
        (t["name"], tuple(t["kind"]))
        for p in meta["packages"] for t in p["targets"]
        if set(t["kind"]) & {"lib", "bin", "custom-build", "rlib", "cdylib", "staticlib"}
    )


def cmd_dockerfile(out: Path) -> int:
    problems = Problems("dockerfile")
    dockerfile = DEPLOY / "Dockerfile"
    instructions = dockerfile_instructions(dockerfile)
    stages: list[dict] = []
    for word, args in instructions:
        if word == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            stages.append({"image": m.group(1), "name": m.group(2), "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((word, args))

    def check(condition: bool, message: str) -> None:
        (problems.ok if condition else problems.add)(f"deploy/Dockerfile: {message}")

    check(len(stages) >= 2, f"multi-stage ({len(stages)} stages)")
    if not stages:
        return problems.finish()
    build, final = stages[0], stages[-1]
    check(build["image"].startswith("rust:") and "bookworm" in build["image"], f"builder is a Debian bookworm Rust image ({build['image']})")
    build_runs = " ".join(a for w, a in build["instructions"] if w == "RUN")
    check("rustup target add x86_64-unknown-linux-musl" in build_runs, "builder adds the x86_64-unknown-linux-musl target")
    build_env = " ".join(a for w, a in build["instructions"] if w == "ENV")
    check("musl-tools" in build_runs and "CC_x86_64_unknown_linux_musl=musl-gcc" in build_env,
          "builder installs musl-tools and compiles C for the target with musl-gcc (.ci/deploy-checks --musl does the same)")
    check(re.search(r"cargo build --release --locked --target x86_64-unknown-linux-musl", build_runs) is not None,
          "builder runs `cargo build --release --locked --target x86_64-unknown-linux-musl`")
    check(final["image"] in ("gcr.io/distroless/static-debian12:nonroot", "scratch"),
          f"runtime base is distroless static nonroot or scratch ({final['image']})")
    final_words = [w for w, _ in final["instructions"]]
    check("RUN" not in final_words, "runtime stage runs nothing (no shell there)")
    users = [a for w, a in final["instructions"] if w == "USER"]
    uid = users[-1].split(":")[0] if users else ""
    check(bool(users) and uid.isdigit() and uid != "0",
          f"runtime user is numeric and not root ({users[-1] if users else 'no USER'}), so runAsNonRoot can verify it")
    check(all(w != "HEALTHCHECK" for w, _ in instructions), "no HEALTHCHECK (Kubernetes probes /healthz and /readyz)")
    exposed = {p.split("/")[0] for w, a in final["instructions"] if w == "EXPOSE" for p in a.split()}
    check({"8080", "9090"} <= exposed, f"EXPOSE 8080 and 9090 ({' '.join(sorted(exposed))})")
    entry = [a for w, a in final["instructions"] if w == "ENTRYPOINT"]
    cmd = [a for w, a in final["instructions"] if w == "CMD"]
    check(bool(entry) and json.loads(entry[-1]) == ["/hookgate"], 'ENTRYPOINT ["/hookgate"] (exec form)')
    check(bool(cmd) and json.loads(cmd[-1]) == ["--config", DEFAULT_CONFIG], f'CMD ["--config", "{DEFAULT_CONFIG}"] (exec form)')
    names = {s["name"] for s in stages if s["name"]}
    for w, a in final["instructions"]:
        if w == "COPY":
            m = re.search(r"--from=(\S+)", a)
            check(m is not None and m.group(1) in names, f"runtime COPY takes from a build stage ({a})")

    # The build context: what .dockerignore leaves, and what the build stage's COPY lines take.
    context = build_context()
    check(not any(f.startswith(("target/", ".git/")) for f in context), f"context leaves out target/ and .git/ ({len(context)} files)")
    check(not any(f.startswith(("tests/", "deploy/")) or f.endswith(".md") for f in context), "context holds no tests, deploy files or docs")
    staged = out / "context"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    workdir = "/"
    for w, a in build["instructions"]:
        if w == "WORKDIR":
            workdir = a
        elif w in ("COPY", "ADD") and "--from" not in a:
            missing = stage_copy(a, workdir, context, staged)
            check(not missing, f"{w} {a}: every source is in the build context" + (f" (missing: {missing})" if missing else ""))
    try:
        repo_targets = cargo_targets(ROOT / "Cargo.toml")
        staged_targets = cargo_targets(staged / "Cargo.toml")
        check(repo_targets == staged_targets,
              f"Cargo reads the staged context's manifest and sees the repository's lib/bin targets ({', '.join(n for n, _ in staged_targets)})")
    except RuntimeError as e:
        problems.add(f"Cargo on the staged build context: {e}")
    print(f"staged build context: {staged}")
    return problems.finish()


# ---- prometheus and grafana -----------------------------------------------------------------------


def prometheusrule_text() -> str:
    rules = RULES.read_text()
    body = rules[rules.index("\ngroups:") + 1:]
    indented = "".join(("  " + line if line.strip() else line) for line in body.splitlines(keepends=True))
    return (
        "# GENERATED from deploy/prometheus/hookgate.rules.yml by\n"
        "#   python3 deploy/tools/deploy_checks.py sync\n"
        "# Edit the rules file, then run that: .ci/deploy-checks fails while the two differ.\n"
        "apiVersion: monitoring.coreos.com/v1\n"
        "kind: PrometheusRule\n"
        "metadata:\n"
        "  name: hookgate\n"
        "  labels:\n"
        "    app.kubernetes.io/name: hookgate\n"
        "spec:\n" + indented
    )


def dashboard_text() -> str:
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, str(Path(__file__).parent))
    import dashboard

    return dashboard.render()


def cmd_sync() -> int:
    PROMETHEUS_RULE.write_text(prometheusrule_text())
    print(f"wrote {rel(PROMETHEUS_RULE)}")
    DASHBOARD.write_text(dashboard_text())
    print(f"wrote {rel(DASHBOARD)}")
    return 0


GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def grafana_to_promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    # Template variables stand inside regex matchers: any regex will do for a syntax check.
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every query in the dashboard, label_values() reduced to its selector."""
    queries = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['id']} ({panel['title']}) {target.get('refId')}", target.get("expr", "")))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            queries.append((f"annotation {annotation['name']}", annotation["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"\s*label_values\((?:(.*),\s*)?(\w+)\)\s*", q)
            queries.append((f"variable {var['name']}", f"count({m.group(1)})" if m and m.group(1) else q))
    return queries


def cmd_prometheus(out: Path) -> int:
    problems = Problems("prometheus")

    # Every alert has a test where it fires and one where it must not.
    alerts = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
    fires: set[str] = set()
    quiet: set[str] = set()
    for test_file in sorted(RULE_TESTS.glob("*.yml")):
        tests = yaml.safe_load(test_file.read_text())
        rule_files = {(test_file.parent / f).resolve() for f in tests.get("rule_files", [])}
        if RULES.resolve() not in rule_files:
            problems.add(f"{rel(test_file)}: does not load {rel(RULES)}")
        for group in tests.get("tests", []):
            for case in group.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    for alert in alerts:
        if alert in fires and alert in quiet:
            problems.ok(f"alert {alert}: tested firing and not firing")
        else:
            problems.add(f"alert {alert}: needs an alert_rule_test where it fires and one where it does not "
                         f"(firing: {alert in fires}, not firing: {alert in quiet})")
    for name in sorted((fires | quiet) - set(alerts)):
        problems.add(f"{rel(RULE_TESTS)}: tests alert {name}, which the rules do not define")

    # The PrometheusRule is the rules file, verbatim.
    if not PROMETHEUS_RULE.exists() or PROMETHEUS_RULE.read_text() != prometheusrule_text():
        problems.add(f"{rel(PROMETHEUS_RULE)} differs from {rel(RULES)}: run `python3 deploy/tools/deploy_checks.py sync`")
    elif load_docs(PROMETHEUS_RULE)[0]["spec"] != yaml.safe_load(RULES.read_text()):
        problems.add(f"{rel(PROMETHEUS_RULE)}: spec is not the rules file")
    else:
        problems.ok(f"{rel(PROMETHEUS_RULE)} holds exactly {rel(RULES)}")

    # The dashboard: generated, well formed, and its queries as recording rules for promtool's parser.
    if DASHBOARD.read_text() != dashboard_text():
        problems.add(f"{rel(DASHBOARD)} differs from what deploy/tools/dashboard.py writes: run `python3 deploy/tools/deploy_checks.py sync`")
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        problems.add(f"{rel(DASHBOARD)}: panel ids repeat")
    occupied: dict[tuple[int, int], int] = {}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            problems.add(f"{rel(DASHBOARD)}: panel {p['id']} ({p['title']}) is wider than the grid")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in occupied:
                    problems.add(f"{rel(DASHBOARD)}: panel {p['id']} overlaps panel {occupied[(x, y)]}")
                    break
                occupied[(x, y)] = p["id"]
        if p["type"] == "row":
            continue
        sources = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]
        if any((s or {}).get("uid") != "${datasource}" for s in sources):
            problems.add(f"{rel(DASHBOARD)}: panel {p['id']} ({p['title']}) does not use the $datasource variable")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(refs) != len(set(refs)) or not all(t.get("expr") for t in p["targets"]):
            problems.add(f"{rel(DASHBOARD)}: panel {p['id']} ({p['title']}) needs targets with an expr and distinct refIds")
    queries = dashboard_queries(dashboard)
    for where, expr in queries:
        for used in re.findall(r"\$\{?(\w+)\}?", expr):
            if not used.startswith("__") and used not in variables:
                problems.add(f"{rel(DASHBOARD)}: {where} uses ${used}, which is no dashboard variable")
    problems.ok(f"{rel(DASHBOARD)}: {len(ids)} panels on the grid, {len(queries)} queries, variables {sorted(variables)}")
    out.mkdir(parents=True, exist_ok=True)
    rules = {"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)} for i, (_, expr) in enumerate(queries)
    ]}]}
    (out / "dashboard.rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False, width=1000))
    return problems.finish()


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    command, args = sys.argv[1], sys.argv[2:]
    if command == "kubernetes":
        return cmd_kubernetes(Path(args[0]))
    if command == "configs":
        return cmd_configs(args[0])
    if command == "dockerfile":
        return cmd_dockerfile(Path(args[0]))
    if command == "prometheus":
        return cmd_prometheus(Path(args[0]))
    if command == "sync":
        return cmd_sync()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
