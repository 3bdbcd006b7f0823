// ioredis's Sentinel support against a hatcheck cluster, through a leader
// kill. Same protocol as ../python/sentinel_failover.py:
// node sentinel_failover.js <service> host:port [host:port ...]
// prints "ready <master>", waits for a line on stdin, writes until a write
// succeeds again, prints "ok <old master> -> <new master> <value read back>".
"use strict";
const Redis = require("ioredis");
const readline = require("readline");

const [service, ...addrs] = process.argv.slice(2);
const sentinels = addrs.map((a) => {
  const i = a.lastIndexOf(":");
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
});

// master asks the sentinels which node leads, as ioredis does internally.
async function master() {
  for (const sn of sentinels) {
    const c = new Redis({ host: sn.host, port: sn.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await c.connect();
      const [host, port] = await c.call("SENTINEL", "get-master-addr-by-name", service);
      c.disconnect();
      return `${host}:${port}`;
    } catch (e) {
      c.disconnect();
    }
  }
  throw new Error("no sentinel answered");
}

async function main() {
  const client = new Redis({ sentinels, name: service, sentinelRetryStrategy: () => 100, retryStrategy: () => 100 });
  client.on("error", () => {});
  await client.set("node:session", "before");
  if ((await client.get("node:session")) !== "before") throw new Error("read back");
  const before = await master();
  console.log("ready", before);
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise((r) => rl.once("line", r));
  rl.close();
  const deadline = Date.now() + 20000;
  let lastErr;
  for (;;) {
    try {
      await client.set("node:session", "after");
      break;
    } catch (e) {
      lastErr = e;
      if (Date.now() > deadline) {
        console.log("fail: no write succeeded after the leader was killed:", lastErr.message);
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const after = await master();
  const value = await client.get("node:session");
  console.log("ok", before, "->", after, value);
  client.disconnect();
}

main().catch((e) => { console.error(e); process.exit(1); });
