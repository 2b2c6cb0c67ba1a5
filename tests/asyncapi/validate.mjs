// Every generated AsyncAPI document (the bundled contract and every golden
// case) parsed by the official @asyncapi/parser: zero errors, and its
// operations, actions and replies are what the contract says.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Parser } from "@asyncapi/parser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const pairs = [["schemas/chat.contract.json", "generated/asyncapi/chat.asyncapi.json"]];
for (const c of readdirSync(path.join(root, "tests/cases"))) {
  const dir = `tests/cases/${c}`;
  const contract = readdirSync(path.join(root, dir)).find((f) => f.endsWith(".contract.json"));
  const name = JSON.parse(readFileSync(path.join(root, dir, contract), "utf8")).contract;
  pairs.push([`${dir}/${contract}`, `${dir}/expected/asyncapi/${name}.asyncapi.json`]);
}

const parser = new Parser();
let failures = 0;
const fail = (msg) => {
  failures += 1;
  console.error(`error: ${msg}`);
};
for (const [contractPath, docPath] of pairs) {
  if (!existsSync(path.join(root, docPath))) {
    fail(`${docPath} is missing`);
    continue;
  }
  const text = readFileSync(path.join(root, docPath), "utf8");
  const { document, diagnostics } = await parser.parse(text);
  // Severity 0 is an error, 1 a warning: both fail; infos and hints are printed.
  const errors = diagnostics.filter((d) => d.severity <= 1);
  for (const d of diagnostics) {
    // 3.0.0 on purpose (see src/targets/asyncapi.rs): not worth a line each.
    if (d.code === "asyncapi-latest-version") continue;
    const where = d.path.join("/");
    (d.severity === 0 ? console.error : console.log)(`${docPath}: ${["error", "warning", "info", "hint"][d.severity]} ${d.code} at /${where}: ${d.message}`);
  }
  if (errors.length > 0 || !document) {
    fail(`${docPath}: ${errors.length} error(s)`);
    continue;
  }
  const contract = JSON.parse(readFileSync(path.join(root, contractPath), "utf8"));
  const raw = JSON.parse(text);
  if (contract.license !== undefined && raw.info.license?.name !== contract.license) {
    fail(`${docPath}: info.license is ${JSON.stringify(raw.info.license)}, the contract says ${contract.license}`);
  }
  // Every nested enum and object is named, so model generators name it.
  const untitled = [];
  const walk = (schema, at) => {
    if (schema === null || typeof schema !== "object") return;
    if (!Array.isArray(schema) && (schema.enum || schema.type === "object") && !schema.title && !schema.$ref) untitled.push(at);
    for (const [k, v] of Object.entries(schema)) walk(v, `${at}/${k}`);
  };
  for (const [name, schema] of Object.entries(raw.components.schemas)) walk(schema, `/components/schemas/${name}`);
  if (untitled.length > 0) fail(`${docPath}: schemas without a title: ${untitled.join(", ")}`);
  const ops = new Map(document.operations().all().map((op) => [op.id(), op]));
  let expected = 0;
  for (const [nsPath, ns] of Object.entries(contract.namespaces)) {
    const channel = document.channels().all().find((ch) => ch.address() === nsPath);
    if (!channel) {
      fail(`${docPath}: no channel for namespace ${nsPath}`);
      continue;
    }
    for (const [event, spec] of Object.entries(ns.clientEvents ?? {})) {
      expected += 1;
      const op = ops.get(`${channel.id()}-client-${event}`);
      if (!op) { fail(`${docPath}: no operation for client event ${nsPath} ${event}`); continue; }
      if (op.action() !== "receive") fail(`${docPath}: ${op.id()} is ${op.action()}, expected receive`);
      if (op.messages().all().map((m) => m.name()).join() !== event) fail(`${docPath}: ${op.id()} carries the wrong message`);
      const acked = spec.ack !== undefined;
      if (op.reply() === undefined ? acked : !acked) fail(`${docPath}: ${op.id()} reply is ${op.reply() ? "present" : "absent"}, the contract says acked=${acked}`);
      if (acked && op.reply()) {
        // The reply is the wire's envelope: success with the data, or the failure.
        const payload = op.reply().messages().all()[0]?.payload()?.json();
        const variants = payload?.oneOf ?? [];
        const success = variants.map((v) => v.properties?.success?.const);
        if (variants.length !== 2 || !success.includes(true) || !success.includes(false)) {
          fail(`${docPath}: the reply of ${op.id()} is not the ack envelope: ${JSON.stringify(payload)?.slice(0, 200)}`);
        } else {
          const failure = variants.find((v) => v.properties.success.const === false);
          for (const key of ["code", "message"]) if (!failure.required?.includes(key)) fail(`${docPath}: the failure of ${op.id()} does not require ${key}`);
          if (!failure.properties.code.enum?.includes("UNAVAILABLE")) fail(`${docPath}: the failure codes of ${op.id()} miss the built-in ones`);
        }
      }
    }
    for (const event of Object.keys(ns.serverEvents ?? {})) {
      expected += 1;
      const op = ops.get(`${channel.id()}-server-${event}`);
      if (!op) { fail(`${docPath}: no operation for server event ${nsPath} ${event}`); continue; }
      if (op.action() !== "send") fail(`${docPath}: ${op.id()} is ${op.action()}, expected send`);
      if (op.reply() !== undefined) fail(`${docPath}: ${op.id()} has a reply`);
    }
  }
  if (ops.size !== expected) fail(`${docPath}: ${ops.size} operations, the contract has ${expected} events`);
  console.log(`ok: ${docPath} (${ops.size} operations, ${document.channels().length} channels)`);
}
if (failures > 0) process.exit(1);
