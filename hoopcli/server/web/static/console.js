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

document.addEventListener("DOMContentLoaded", () => { startLive(); startPlayback(); });
