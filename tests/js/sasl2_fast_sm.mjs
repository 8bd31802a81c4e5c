// @xmpp/client against a Meerkat node over direct TLS: SASL2 + Bind 2 + stream management,
// a FAST token, an aborted socket resumed inline with FAST, and a fresh FAST login.
//
// Usage: node sasl2_fast_sm.mjs <direct-tls port> <domain>
// Prints one JSON object: what was sent and received (tests/e2e/test_sasl2.py checks it).
// Run with NODE_TLS_REJECT_UNAUTHORIZED=0: the node's certificate is self-signed.

import { client, xml } from "@xmpp/client";

const [port, domain] = process.argv.slice(2);
const service = `xmpps://127.0.0.1:${port}`;
const AGENT = "7a1e6f5c-2b3d-4c8e-9f0a-1b2c3d4e5f60";
const userAgent = () =>
  xml("user-agent", { id: AGENT }, xml("software", {}, "meerkat-js-test"));

const report = { logins: [], alice_received: [], bob_received: [], errors: [] };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(predicate, what, timeout = 10000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function watchLogins(entity, name) {
  entity.on("send", (el) => {
    if (el.is("authenticate", "urn:xmpp:sasl:2")) {
      report.logins.push({
        who: name,
        mechanism: el.attrs.mechanism,
        resume: !!el.getChild("resume", "urn:xmpp:sm:3"),
        bind: !!el.getChild("bind", "urn:xmpp:bind:0"),
        request_token: !!el.getChild("request-token", "urn:xmpp:fast:0"),
        fast: !!el.getChild("fast", "urn:xmpp:fast:0"),
      });
    }
  });
  entity.on("nonza", (el) => {
    const login = report.logins.findLast((l) => l.who === name);
    if (!login) return;
    if (el.is("success", "urn:xmpp:sasl:2")) {
      login.outcome = "success";
      login.jid = el.getChildText("authorization-identifier");
      login.resumed = !!el.getChild("resumed", "urn:xmpp:sm:3");
      login.token = !!el.getChild("token", "urn:xmpp:fast:0");
      login.sm_enabled = !!el.getChild("bound", "urn:xmpp:bind:0")?.getChild("enabled", "urn:xmpp:sm:3");
    } else if (el.is("failure", "urn:xmpp:sasl:2")) {
      login.outcome = "failure";
    }
  });
  entity.on("error", (err) => report.errors.push(`${name}: ${err.message ?? err}`));
}

// COMPAT: @xmpp/client 0.14's start() registers its "open" listener only after the stream
// header was written; a local server can answer before that, and start() then rejects with a
// TimeoutError although the session comes up. Wait for "online" instead.
async function start(entity) {
  const { service, domain, lang } = entity.options;
  await entity.connect(service);
  const online = new Promise((resolve) => entity.once("online", resolve));
  entity.open({ domain, lang }).catch(() => {});
  await online;
}

function bodies(entity, into) {
  entity.on("stanza", (st) => {
    if (st.is("message") && st.getChildText("body")) into.push(st.getChildText("body"));
  });
}

const alice = client({ service, domain, username: "alice", password: "secret", resource: "js", userAgent: userAgent() });
const bob = client({ service, domain, username: "bob", password: "secret", resource: "js" });
alice.reconnect.delay = 100;
watchLogins(alice, "alice");
watchLogins(bob, "bob");
bodies(alice, report.alice_received);
bodies(bob, report.bob_received);
let resumed = 0;
alice.streamManagement.on("resumed", () => (resumed += 1));

try {
  await start(alice);
  await start(bob);
  report.alice_jid = alice.jid.toString();
  report.sm_id = alice.streamManagement.id;
  await alice.send(xml("presence"));
  await bob.send(xml("presence"));
  for (let i = 0; i < 5; i++) {
    await bob.send(xml("message", { to: report.alice_jid, type: "chat" }, xml("body", {}, `b${i}`)));
  }
  await until(() => report.alice_received.length >= 3, "the first messages");
  alice.socket.socket.destroy(); // the socket dies: no closing tag, no TLS close_notify
  for (let i = 5; i < 10; i++) {
    await bob.send(xml("message", { to: report.alice_jid, type: "chat" }, xml("body", {}, `b${i}`)));
  }
  await until(() => resumed > 0, "the resumption");
  await alice.send(xml("message", { to: bob.jid.toString(), type: "chat" }, xml("body", {}, "back")));
  await until(() => report.alice_received.length >= 10 && report.bob_received.length >= 1, "all messages");
  await sleep(300); // nothing more may arrive
  report.resumed = resumed;
  const token = await alice.fast.fetchToken();
  report.had_token = !!token;
  await alice.stop();

  // A fresh client instance on the same device: FAST login, no password needed.
  const again = client({ service, domain, username: "alice", password: "wrong", resource: "js", userAgent: userAgent() });
  again.fast.fetchToken = async () => token;
  watchLogins(again, "again");
  await start(again);
  report.again_jid = again.jid.toString();
  await again.stop();
  await bob.stop();
} catch (err) {
  report.errors.push(String(err?.stack ?? err));
}
console.log(JSON.stringify(report));
process.exit(0);
