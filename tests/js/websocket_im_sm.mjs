// @xmpp/client against a Meerkat node over WebSocket (RFC 7395): alice on ws:// or wss://, bob on TCP
// (direct TLS). Login, a mutual presence subscription, a presence change, messages both ways;
// then alice's WebSocket is closed under her without <close/> and the client resumes its
// stream-management session on a new WebSocket.
//
// Usage: node [--experimental-websocket] websocket_im_sm.mjs <ws url> <direct-tls port> <domain>
// (Node 20 has WebSocket only behind that flag; @xmpp/websocket uses the global WebSocket.)
// Prints one JSON object: what was sent and received (tests/e2e/test_websocket_js.py checks it).
// Run with NODE_TLS_REJECT_UNAUTHORIZED=0: TLS (bob, or alice on wss://) meets the node's
// self-signed certificate.

import { client, xml } from "@xmpp/client";

const [wsUrl, tlsPort, domain] = process.argv.slice(2);

const report = {
  alice_received: [],
  bob_received: [],
  alice_saw: [],
  bob_saw: [],
  alice_logins: [],
  errors: [],
};

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

// COMPAT: @xmpp/client 0.14's start() registers its "open" listener only after the stream
// header was written; a local server can answer before that (see sasl2_fast_sm.mjs).
async function start(entity) {
  const { service, domain, lang } = entity.options;
  await entity.connect(service);
  const online = new Promise((resolve) => entity.once("online", resolve));
  entity.open({ domain, lang }).catch(() => {});
  await online;
}

// Each side approves subscription requests, records presences and message bodies.
function behave(entity, name, received, saw) {
  entity.on("stanza", async (st) => {
    if (st.is("presence") && st.attrs.type === "subscribe") {
      await entity.send(xml("presence", { to: st.attrs.from, type: "subscribed" }));
    } else if (st.is("presence")) {
      saw.push({ from: st.attrs.from, type: st.attrs.type ?? "available", show: st.getChildText("show") });
    } else if (st.is("message") && st.getChildText("body")) {
      received.push(st.getChildText("body"));
    }
  });
  entity.on("error", (err) =>
    report.errors.push(`${name}: ${err.name} ${err.condition ?? ""} ${err.message} ${err.element ?? ""}`),
  );
}

const alice = client({ service: wsUrl, domain, username: "alice", password: "secret", resource: "web" });
const bob = client({ service: `xmpps://127.0.0.1:${tlsPort}`, domain, username: "bob", password: "secret", resource: "tcp" });
alice.reconnect.delay = 100;
behave(alice, "alice", report.alice_received, report.alice_saw);
behave(bob, "bob", report.bob_received, report.bob_saw);
alice.on("send", (el) => {
  if (el.is("authenticate", "urn:xmpp:sasl:2")) {
    report.alice_logins.push({ sasl2: true, resume: !!el.getChild("resume", "urn:xmpp:sm:3") });
  } else if (el.is("auth", "urn:ietf:params:xml:ns:xmpp-sasl")) {
    report.alice_logins.push({ sasl2: false, resume: false });
  }
});
let resumed = 0;
alice.streamManagement.on("resumed", () => (resumed += 1));
const sawFrom = (saw, jid, show) => saw.some((p) => p.from === jid && p.type === "available" && (show === undefined || p.show === show));

try {
  await start(alice);
  await start(bob);
  report.alice_jid = alice.jid.toString();
  report.bob_jid = bob.jid.toString();
  report.alice_transport = alice.socket.constructor.name;
  report.sm_id = alice.streamManagement.id;
  report.sm_enabled = alice.streamManagement.enabled;

  await alice.send(xml("presence"));
  await bob.send(xml("presence"));
  await alice.send(xml("presence", { to: `bob@${domain}`, type: "subscribe" }));
  await bob.send(xml("presence", { to: `alice@${domain}`, type: "subscribe" }));
  await until(() => sawFrom(report.alice_saw, report.bob_jid), "bob's presence at alice");
  await until(() => sawFrom(report.bob_saw, report.alice_jid), "alice's presence at bob");
  await bob.send(xml("presence", {}, xml("show", {}, "away")));
  await until(() => sawFrom(report.alice_saw, report.bob_jid, "away"), "bob away at alice");
  await alice.send(xml("presence", {}, xml("show", {}, "chat")));
  await until(() => sawFrom(report.bob_saw, report.alice_jid, "chat"), "alice chatty at bob");

  await alice.send(xml("message", { to: report.bob_jid, type: "chat" }, xml("body", {}, "hello from ws")));
  await bob.send(xml("message", { to: report.alice_jid, type: "chat" }, xml("body", {}, "hello from tcp")));
  await until(() => report.alice_received.length >= 1 && report.bob_received.length >= 1, "the greetings");

  for (let i = 0; i < 5; i++) {
    await bob.send(xml("message", { to: report.alice_jid, type: "chat" }, xml("body", {}, `b${i}`)));
  }
  await until(() => report.alice_received.length >= 4, "the first messages");
  alice.socket.socket.close(); // the WebSocket goes away under the client: no <close/>
  for (let i = 5; i < 10; i++) {
    await bob.send(xml("message", { to: report.alice_jid, type: "chat" }, xml("body", {}, `b${i}`)));
  }
  await until(() => resumed > 0, "the resumption");
  await alice.send(xml("message", { to: report.bob_jid, type: "chat" }, xml("body", {}, "back")));
  await until(() => report.alice_received.length >= 11 && report.bob_received.length >= 2, "all messages");
  await sleep(300); // nothing more may arrive
  report.resumed = resumed;
  report.jid_after = alice.jid.toString();
  await alice.stop();
  await until(() => report.bob_saw.some((p) => p.from === report.alice_jid && p.type === "unavailable"), "alice offline at bob");
  await bob.stop();
} catch (err) {
  report.errors.push(String(err?.stack ?? err));
}
console.log(JSON.stringify(report));
process.exit(0);
