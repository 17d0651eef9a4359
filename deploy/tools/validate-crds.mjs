// Validates prometheus-operator custom resources (ServiceMonitor, PrometheusRule, PodMonitor)
// against the CRDs' OpenAPI schemas as the npm package @kubernetes-models/prometheus-operator
// compiles them, and, because those schemas accept unknown fields (the API server would prune
// them silently, so a misspelt `intervall` would just vanish), also against the field names that
// the package's type declarations list for every object.
//
//   node validate-crds.mjs <node_modules dir> <resources.json>
//
// resources.json: [{"source": "where it came from", "doc": {...}}, ...], written by
// deploy_checks.py. Exit status 1 if any resource is invalid.
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, resourcesFile] = process.argv.slice(2);
const operator = join(nodeModules, "@kubernetes-models/prometheus-operator");
const KINDS = { ServiceMonitor: "v1", PrometheusRule: "v1", PodMonitor: "v1" };

// ---- field names from the type declarations ---------------------------------------------------

const classCache = new Map();

// The properties of the one class declared in a .d.ts file: name -> { type, map } where `map`
// says the value is a free-form object ({ [key: string]: ... }). null for a plain type alias.
function classProps(dts) {
  if (classCache.has(dts)) return classCache.get(dts);
  const text = readFileSync(dts, "utf8").replace(/\/\*\*[\s\S]*?\*\//g, "");
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^export declare class \w+/.test(l));
  let result = null;
  if (start >= 0) {
    result = { imports: new Map(), props: new Map(), dts };
    for (const l of lines) {
      const m = l.match(/^import \{ (\w+) \} from "([^"]+)";/);
      if (m) result.imports.set(m[1], m[2]);
    }
    let depth = 0;
    for (const l of lines.slice(start + 1)) {
      if (depth === 0 && /^}/.test(l)) break;
      const m = depth === 0 && l.match(/^ {4}"([^"]+)"\??: (.*?);?$/);
      if (m) result.props.set(m[1], { type: m[2], map: m[2].trim() === "{" });
      depth += (l.match(/\{/g) || []).length - (l.match(/\}/g) || []).length;
    }
  }
  classCache.set(dts, result);
  return result;
}

// The .d.ts file that declares the interface `name`, as imported by `cls`'s file.
function resolve(cls, name) {
  const from = cls.imports.get(name);
  if (!from) return null;
  let file;
  if (from.startsWith(".")) file = join(dirname(cls.dts), from.replace(/\.js$/, ".d.ts"));
  else file = join(nodeModules, from.replace(/\.js$/, "") + ".d.ts");
  return existsSync(file) ? classProps(file) : null;
}

function checkFields(value, cls, path, problems) {
  if (!cls || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkFields(v, cls, `${path}[${i}]`, problems));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const prop = cls.props.get(key);
    if (!prop) {
      problems.push(`${path}.${key}: unknown field (known: ${[...cls.props.keys()].join(", ")})`);
      continue;
    }
    if (prop.map) continue;
    const iface = prop.type.match(/\bI[A-Z]\w+/);
    if (iface) checkFields(v, resolve(cls, iface[0]), `${path}.${key}`, problems);
  }
}

// ---- main -------------------------------------------------------------------------------------

const resources = JSON.parse(readFileSync(resourcesFile, "utf8"));
let failed = 0;
for (const { source, doc } of resources) {
  const version = KINDS[doc.kind];
  const where = `${source}: ${doc.kind}/${doc.metadata?.name}`;
  if (doc.apiVersion !== `monitoring.coreos.com/${version}` || !version) {
    console.log(`FAIL ${where}: unsupported apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
    failed++;
    continue;
  }
  const base = join(operator, `monitoring.coreos.com/${version}/${doc.kind}`);
  const problems = [];
  const { [doc.kind]: Model } = await import(pathToFileURL(base + ".js").href);
  try {
    new Model(doc).validate();
  } catch (error) {
    problems.push(`schema: ${error.message}`);
  }
  checkFields(doc, classProps(base + ".d.ts"), "", problems);
  if (problems.length) {
    failed++;
    console.log(`FAIL ${where}`);
    for (const p of problems) console.log(`  - ${p}`);
  } else {
    console.log(`ok   ${where}`);
  }
}
const pkg = JSON.parse(readFileSync(join(operator, "package.json"), "utf8"));
console.log(`${resources.length - failed} valid, ${failed} invalid (@kubernetes-models/prometheus-operator ${pkg.version})`);
process.exit(failed ? 1 : 0);
