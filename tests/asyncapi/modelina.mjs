// Modelina (npm @asyncapi/modelina 5, installed by the test command into
// target/modelina; MODELINA_DIR names that folder) generates TypeScript
// models from every generated AsyncAPI document: each acked event's reply
// must come out as the wire's envelope, `<Event>AckReply = <success> |
// AckFailure`, with `AckFailure.code` the named `AckFailureCode` enum.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dir = process.env.MODELINA_DIR;
if (!dir) throw new Error("set MODELINA_DIR to a folder with @asyncapi/modelina installed");
const require = createRequire(path.join(path.resolve(dir), "package.json"));
const { TypeScriptGenerator } = require("@asyncapi/modelina");
// Modelina's own parser, so that it recognises the parsed document.
const { Parser } = require(require.resolve("@asyncapi/parser", { paths: [path.dirname(require.resolve("@asyncapi/modelina"))] }));

const docs = ["generated/asyncapi/chat.asyncapi.json"];
for (const c of readdirSync(path.join(root, "tests/cases"))) {
  const expected = path.join(root, "tests/cases", c, "expected/asyncapi");
  for (const f of readdirSync(expected)) docs.push(`tests/cases/${c}/expected/asyncapi/${f}`);
}
let failures = 0;
for (const doc of docs) {
  const text = readFileSync(path.join(root, doc), "utf8");
  const { document } = await new Parser().parse(text);
  if (!document) throw new Error(`${doc}: Modelina's parser rejected it`);
  const models = await new TypeScriptGenerator({ modelType: "interface" }).generate(document);
  const byName = new Map(models.map((m) => [m.modelName, m.result]));
  const replies = Object.values(JSON.parse(text).operations ?? {}).filter((op) => op.reply !== undefined).length;
  const envelopes = [...byName].filter(([name, result]) => /AckReply$/.test(name) && /= \w+ \| AckFailure;/.test(result));
  const problems = [];
  if (envelopes.length !== replies) problems.push(`${replies} acked events, ${envelopes.length} envelope models`);
  if (replies > 0) {
    if (!/code: AckFailureCode;/.test(byName.get("AckFailure") ?? "")) problems.push("no AckFailure with code: AckFailureCode");
    if (!/enum AckFailureCode \{[^}]*INTERNAL = "INTERNAL"/.test(byName.get("AckFailureCode") ?? "")) problems.push("no AckFailureCode enum with the built-in codes");
  }
  if ([...byName.keys()].some((n) => /^AnonymousSchema/.test(n))) problems.push("anonymous models");
  if (problems.length > 0) {
    failures += 1;
    console.error(`error: ${doc}: ${problems.join("; ")} (models: ${[...byName.keys()].join(" ")})`);
  } else {
    console.log(`ok: ${doc}: ${models.length} models, ${envelopes.length} ack envelopes`);
  }
}
if (failures > 0) process.exit(1);
