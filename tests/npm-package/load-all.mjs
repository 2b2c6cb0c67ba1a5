// Loads every generated JavaScript module in plain Node, as ES modules
// (esm/*.js, with import) and as CommonJS (cjs/*.js, with require), for the
// example's package and every golden one: a module that does not parse or
// link, or whose two forms export different names, fails here.
//
//   node tests/npm-package/load-all.mjs
import { createRequire } from "node:module";
import { readdirSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const repo = resolve(import.meta.dirname, "../..");
const require = createRequire(import.meta.url);
const packages = [];
for (const dir of readdirSync(join(repo, "generated/ts"))) packages.push(join(repo, "generated/ts", dir));
for (const c of readdirSync(join(repo, "tests/cases"))) {
  const ts = join(repo, "tests/cases", c, "expected/ts");
  if (existsSync(ts)) for (const dir of readdirSync(ts)) packages.push(join(ts, dir));
}
let modules = 0;
for (const pkg of packages) {
  for (const file of readdirSync(join(pkg, "esm")).filter((f) => f.endsWith(".js"))) {
    const esm = await import(pathToFileURL(join(pkg, "esm", file)).href);
    const cjs = require(join(pkg, "cjs", file));
    const names = (m) => Object.keys(m).filter((k) => k !== "default" && k !== "__esModule").sort().join(",");
    if (names(esm) !== names(cjs)) {
      throw new Error(`${pkg}/${file}: ES module exports [${names(esm)}], CommonJS [${names(cjs)}]`);
    }
    modules += 1;
  }
}
if (modules === 0) throw new Error("no generated JavaScript found");
console.log(`ok: ${modules} modules of ${packages.length} packages load as ES modules and as CommonJS, with the same exports`);
