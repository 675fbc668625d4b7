// hoop console: live approval updates and session playback. No build step, no dependencies.
"use strict";

function startLive() {
  const live = document.getElementById("live");
  if (!live) return;
  const feed = live.dataset.feed;
  const watch = live.dataset.watch;
  let baseline = null;
  async function poll() {
    try {
      const resp = await fetch(feed, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.ok) {
        const items = await resp.json();
        let key;
        if (watch) {
          const mine = items.find((a) => a.id === watch);
          key = mine ? mine.status : "";
          const shown = document.getElementById("status");
          if (shown && key && key !== shown.dataset.status) {
            live.textContent = "Decided elsewhere (" + key + "); reloading.";
            window.location.reload();
            return;
          }
        } else {
          key = items.map((a) => a.id + ":" + a.status).sort().join(",");
          if (baseline !== null && key !== baseline) {
            live.textContent = "Updated; reloading.";
            window.location.reload();
            return;
          }
          baseline = key;
        }
      }
    } catch (e) { /* the next poll tries again */ }
    window.setTimeout(poll, 1500);
  }
  poll();
}

function startPlayback() {
  const button = document.getElementById("play");
  const data = document.getElementById("playback-data");
  if (!button || !data) return;
  const commands = JSON.parse(data.textContent || "[]");
  const term = document.getElementById(button.dataset.target);
  const sleep = (ms) => new Promise((r) => window.setTimeout(r, ms));
  button.addEventListener("click", async () => {
    button.disabled = true;
    term.textContent = "";
    const speed = Number(document.getElementById("speed").value);
    let previousEnd = null;
    for (const c of commands) {
      const start = c.started ? Date.parse(c.started) : null;
      const end = c.ended ? Date.parse(c.ended) : null;
      if (speed > 0 && previousEnd !== null && start !== null) {
        await sleep(Math.min(Math.max(start - previousEnd, 0) / speed, 3000));
      }
      if (c.gateway) {          // a request the gateway observed: one line, no output
        term.textContent += "# gateway: " + c.gateway + "\n";
        if (start !== null) previousEnd = start;
        continue;
      }
      term.textContent += "$ aws " + c.argv.join(" ") + "\n";
      if (speed > 0 && start !== null && end !== null) await sleep(Math.min((end - start) / speed, 3000));
      term.textContent += c.stdout + c.stderr;
      if (c.exit_code !== null && c.exit_code !== 0) term.textContent += "[exit " + c.exit_code + "]\n";
      previousEnd = end;
    }
    term.textContent += "— end of session —\n";
    button.disabled = false;
  });
}

// -- passkeys (WebAuthn): add one; approve one's own request with one -----------------------------

function b64urlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function bytesToB64url(buffer) {
  let text = "";
  new Uint8Array(buffer).forEach((b) => { text += String.fromCharCode(b); });
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function postJson(url, csrf, body) {
  const resp = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok || data.ok === false) throw new Error(data.error || ("HTTP " + resp.status));
  return data;
}

function credentialJson(cred) {
  const r = cred.response;
  const out = { id: cred.id, rawId: bytesToB64url(cred.rawId), type: cred.type, clientExtensionResults: {},
                response: { clientDataJSON: bytesToB64url(r.clientDataJSON) } };
  if (r.attestationObject) out.response.attestationObject = bytesToB64url(r.attestationObject);
  if (r.authenticatorData) out.response.authenticatorData = bytesToB64url(r.authenticatorData);
  if (r.signature) out.response.signature = bytesToB64url(r.signature);
  if (r.userHandle) out.response.userHandle = bytesToB64url(r.userHandle);
  if (r.getTransports) out.response.transports = r.getTransports();
  return out;
}

function startPasskeys() {
  const status = document.getElementById("passkey-status");
  const say = (text) => { if (status) status.textContent = text; };
  const add = document.getElementById("passkey-add");
  if (add) add.addEventListener("click", async () => {
    try {
      const o = await postJson("/passkeys/options", add.dataset.csrf);
      o.challenge = b64urlToBytes(o.challenge);
      o.user.id = b64urlToBytes(o.user.id);
      (o.excludeCredentials || []).forEach((c) => { c.id = b64urlToBytes(c.id); });
      const cred = await navigator.credentials.create({ publicKey: o });
      await postJson("/passkeys", add.dataset.csrf, credentialJson(cred));
      say("Passkey added.");
      window.location.reload();
    } catch (err) { say("Could not add a passkey: " + err.message); }
  });
  const approve = document.getElementById("passkey-approve");
  if (approve) approve.addEventListener("click", async () => {
    const id = approve.dataset.approval;
    try {
      const o = await postJson("/approvals/" + encodeURIComponent(id) + "/passkey/options", approve.dataset.csrf);
      o.challenge = b64urlToBytes(o.challenge);
      (o.allowCredentials || []).forEach((c) => { c.id = b64urlToBytes(c.id); });
      const cred = await navigator.credentials.get({ publicKey: o });
      const reason = (document.getElementById("reason") || {}).value || "";
      const done = await postJson("/approvals/" + encodeURIComponent(id) + "/passkey", approve.dataset.csrf,
                                  { credential: credentialJson(cred), reason: reason, call_hash: approve.dataset.callHash });
      window.location.href = done.url;
    } catch (err) { say("Passkey approval refused: " + err.message); }
  });
}

document.addEventListener("DOMContentLoaded", () => { startLive(); startPlayback(); startPasskeys(); });
