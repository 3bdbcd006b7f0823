// One request of an Express application with express-session and
// connect-redis over node-redis (the npm packages in package.json).
// The session id travels in the signed cookie, as in a browser.
//
// Usage: HATCHECK_ADDR=host:port [SESSION_TTL=s] node session.js ACTION [COOKIE]
// Actions as in ../php/session.php; create and regenerate print the cookie.
"use strict";
const http = require("http");
const express = require("express");
const session = require("express-session");
const RedisStore = require("connect-redis").default;
const { createClient } = require("redis");

const [action, cookie] = process.argv.slice(2);
const pass = process.env.HATCHECK_PASSWORD || undefined;

async function main() {
  const client = createClient({ url: `redis://${process.env.HATCHECK_ADDR}`, password: pass });
  client.on("error", (err) => console.error("redis:", err.message));
  await client.connect();
  const app = express();
  app.use(session({
    store: new RedisStore({ client }),
    secret: "hatcheck-compat",
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: Number(process.env.SESSION_TTL || 1440) * 1000 },
  }));
  let out;
  app.get("/", (req, res, next) => {
    const s = req.session;
    const done = () => res.end("ok");
    switch (action) {
      case "create":
        s.n = 0;
        s.user = "alice";
        return done();
      case "read": {
        const data = {};
        for (const k of Object.keys(s).sort()) if (k !== "cookie") data[k] = s[k];
        out = Object.keys(data).length ? JSON.stringify(data) : "[]";
        return done();
      }
      case "incr": {
        const n = s.n;
        return setTimeout(() => { s.n = n + 1; done(); }, 30);
      }
      case "regenerate": {
        const { n, user } = s;
        return s.regenerate((err) => {
          if (err) return next(err);
          Object.assign(req.session, { n, user });
          done();
        });
      }
      case "destroy":
        return s.destroy((err) => (err ? next(err) : done()));
      default:
        return next(new Error("unknown action " + action));
    }
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const headers = cookie ? { cookie: "connect.sid=" + cookie } : {};
  const res = await new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port: server.address().port, path: "/", headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res));
    }).on("error", reject);
  });
  if (res.statusCode !== 200) throw new Error("status " + res.statusCode);
  const set = (res.headers["set-cookie"] || []).join(";").match(/connect\.sid=([^;]*)/);
  if (out !== undefined) console.log(out);
  if (action === "create" || action === "regenerate") console.log(set ? set[1] : "");
  server.close();
  await client.quit();
}

main().catch((err) => { console.error(err); process.exit(1); });
