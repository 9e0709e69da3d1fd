// RealGuardIO web UI: the dashboard and the system page. Arm and disarm
// buttons, and the live state: a Server-Sent Events stream from the BFF
// (/events/securitysystems) tells the page the current state of each shown
// system that changes, as the signed-in user sees it (the BFF asks the
// Security System Service with the user's token), so what another user
// does appears here within a second.
"use strict";

(function () {
  const rg = window.RealGuardIO;
  if (!rg) return;
  const { api, explain } = rg;
  const verbs = { ARM: "Arm", DISARM: "Disarm" };

  // useful are the actions that change the state: the services allow
  // arming an armed system as a no-op, but a button for it only confuses.
  function useful(sys) {
    return (sys.actions || []).filter((a) => !(a === "ARM" && sys.state === "ARMED") && !(a === "DISARM" && sys.state === "DISARMED"));
  }

  // render redraws a system's state and Actions cell; why, when given,
  // replaces the explanation of a row without buttons (undefined keeps it).
  function render(box, sys, why) {
    const state = box.querySelector('[data-testid="state"]');
    if (state.textContent !== sys.state) {
      box.classList.remove("flash");
      void box.offsetWidth; // restart the highlight
      box.classList.add("flash");
    }
    state.textContent = sys.state;
    state.className = "state state-" + String(sys.state).toLowerCase();
    const row = box.querySelector(".action-row");
    const name = box.dataset.name || "";
    const acts = useful(sys);
    row.replaceChildren(...acts.map((a) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.action = a;
      b.dataset.id = sys.id;
      if (a === "DISARM") b.className = "warn";
      b.textContent = verbs[a] || a;
      b.setAttribute("aria-label", (verbs[a] || a) + " " + name);
      return b;
    }));
    const w = box.querySelector(".why");
    if (acts.length) w.textContent = "";
    else if (why !== undefined) w.textContent = why;
    // Without buttons the row says why; when the reason is unknown, at
    // least what the user may do.
    if (!acts.length && !w.textContent) {
      const s = document.createElement("span");
      s.className = "muted view-only";
      s.textContent = (sys.actions || []).length ? "nothing to do now" : "view only";
      row.append(s);
    }
  }

  function boxOf(id) {
    return document.querySelector('[data-system="' + CSS.escape(id) + '"]');
  }

  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    const box = btn.closest("[data-system]");
    const msg = box.querySelector(".row-msg");
    const id = btn.dataset.id;
    box.querySelectorAll("button[data-action]").forEach((b) => (b.disabled = true));
    msg.className = "row-msg";
    msg.textContent = (verbs[btn.dataset.action] || btn.dataset.action) + "ing…";
    const r = await api("PUT", "/api/securitysystems/" + encodeURIComponent(id), { action: btn.dataset.action });
    if (r.status === 401) return;
    // Either way the row then shows the system as it is now, with the
    // actions the user has now: after a denial the refused button goes.
    // /ui/ adds why the user can do nothing with it now, when so.
    const g = await api("GET", "/ui/securitysystems/" + encodeURIComponent(id));
    if (g.status === 200) render(box, g.body, g.body.why || "");
    else box.querySelectorAll("button[data-action]").forEach((b) => (b.disabled = false));
    if (r.status === 200) {
      msg.className = "row-msg ok";
      msg.textContent = "Now " + String((g.status === 200 ? g.body : r.body).state).toLowerCase() + ".";
    } else {
      msg.className = "row-msg bad";
      msg.textContent = explain(r);
    }
  });

  // ---- live state --------------------------------------------------------
  const live = document.querySelector("[data-live]");
  const status = document.getElementById("live-status");
  if (!live || !window.EventSource) return;
  const ids = live.dataset.live;
  let opened = false;
  let es = null;
  let backoff = 1000;

  function say(text, cls) {
    if (!status) return;
    status.textContent = text;
    status.className = "live-status " + (cls || "muted");
  }

  // resync loads the shown systems' current state after a gap in the
  // stream (a reconnect, or more changes than it could look up).
  async function resync() {
    if (document.getElementById("systems")) {
      const q = new URLSearchParams(location.search);
      q.set("limit", "50");
      const r = await api("GET", "/api/securitysystems?" + q.toString());
      if (r.status === 200 && r.body) (r.body.securitySystems || []).forEach((s) => { const b = boxOf(s.id); if (b) render(b, s); });
    } else {
      const r = await api("GET", "/ui/securitysystems/" + encodeURIComponent(ids));
      if (r.status === 200) render(live, r.body, r.body.why || "");
    }
  }

  function connect() {
    es = new EventSource("/events/securitysystems?ids=" + encodeURIComponent(ids));
    es.addEventListener("open", () => {
      backoff = 1000;
      say("● Live", "live-on");
      if (opened) resync();
      opened = true;
    });
    es.addEventListener("system", (ev) => {
      let sys;
      try { sys = JSON.parse(ev.data); } catch (e) { return; }
      const box = boxOf(sys.id);
      if (box) render(box, sys, sys.why || "");
    });
    es.addEventListener("reload", () => resync());
    es.addEventListener("ended", async () => {
      es.close();
      say("Signed out", "muted");
      await api("GET", "/api/me"); // sends the browser to the login page
    });
    es.addEventListener("error", async () => {
      if (es.readyState === EventSource.CONNECTING) { say("Reconnecting…"); return; }
      // Closed for good: a refusal (signed out, live updates off). Ask
      // once whether the session still holds, then try again later.
      es.close();
      say("Live updates paused", "muted");
      const me = await api("GET", "/api/me");
      if (me.status === 401) return;
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    });
  }
  connect();
})();
