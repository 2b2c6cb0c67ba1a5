// The well-behaved clients of the abuse measurements, in a process of
// their own (so that an attacker's loop never delays their event loop):
// prints their ack latencies after `ms` as JSON.
//
//   node bench/abuse/calm.mjs <server url> <jwt secret> <thread> <ms>
import { sleep, wellBehaved } from "./lib.mjs";

const [url, secret, thread, ms] = process.argv.slice(2);
const calm = await wellBehaved(url, secret, 10, thread);
await sleep(Number(ms));
console.log(JSON.stringify(await calm.stop()));
process.exit(0);
