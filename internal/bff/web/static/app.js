// RealGuardIO web UI: a little plain JavaScript on top of server-rendered
// pages. Every call goes to the BFF (/api/...), which holds the tokens; state
// changing calls carry the page's CSRF token in the X-CSRF-Token header.
"use strict";

(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // api calls the BFF and returns {status, body}; a lost session sends the
  // user to the login page and comes back here afterwards.
  async function api(method, path, body) {
    const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
      // A request that left with the cookie of just before a refresh made
      // by a parallel request is refused (that copy is superseded) before
      // anything is forwarded, so it is safe to send it once more: the
      // browser holds the refreshed cookie by now.
      if (resp.status === 401) resp = await fetch(path, opts);
    } catch (e) {
      return { status: 0, body: { detail: "The server could not be reached; nothing was changed." } };
    }
    if (resp.status === 401) {
      window.location.assign("/login?returnTo=" + encodeURIComponent(location.pathname + location.search));
      return { status: 401, body: {} };
    }
    let data = null;
    const text = await resp.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = { detail: text }; } }
    return { status: resp.status, body: data };
  }

  // explain turns a failed call into words for people.
  function explain(r) {
    const b = r.body || {};
    if (r.status === 403) {
      if (b.reason === "outside_schedule") return "Not allowed: this is outside your shift.";
      if (b.reason === "no_role") return "Not allowed: you have no role at this location.";
      if (b.reason === "csrf") return "Refused as a possible cross-site request; reload the page.";
      return "Not allowed" + (b.detail ? ": " + b.detail : ".");
    }
    if (r.status === 503) return "The authorization service is unavailable, nothing was changed.";
    if (r.status === 0) return b.detail;
    return b.detail || b.title || ("The request failed (" + r.status + ").");
  }

  // The dashboard and system pages (dashboard.js) and the organization and
  // entity pages (entities.js) call the BFF the same way and explain
  // failures in the same words.
  window.RealGuardIO = { api, explain };

  // ---- form messages (the profile form) ------------------------------------
  function clearMessages(form) {
    form.querySelectorAll(".field-msg").forEach((m) => (m.textContent = ""));
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    form.querySelector(".form-msg").textContent = "";
    const out = form.querySelector(".result");
    if (out) out.replaceChildren();
  }
  // fieldMessage shows msg next to the input a problem's "field" names;
  // services may name nested fields by their full path or their last part.
  function fieldMessage(form, field, msg) {
    if (!field) return false;
    const cands = Array.from(form.querySelectorAll("[data-json], [data-path-param], [data-field]"));
    const match = (el) => {
      const n = el.dataset.json || el.dataset.pathParam || el.dataset.field;
      return n === field || n.split(".").pop() === field || field.split(".").pop() === n.split(".").pop() || field.startsWith(n + "[") || field.startsWith(n + ".");
    };
    const el = cands.find((e) => (e.dataset.json || e.dataset.pathParam || e.dataset.field) === field) || cands.find(match);
    if (!el || el.type === "hidden") return false;
    const m = document.getElementById(el.id + "-msg") || (el.closest(".field, fieldset") || form).querySelector(".field-msg");
    if (!m) return false;
    m.textContent = msg;
    el.setAttribute("aria-invalid", "true");
    if (el.focus) el.focus();
    return true;
  }
  function showFailure(form, r) {
    const b = r.body || {};
    const msg = explain(r);
    if (!fieldMessage(form, b.field, msg)) form.querySelector(".form-msg").textContent = msg;
  }

  // ---- profile -----------------------------------------------------------
  const prof = document.getElementById("profile-form");
  if (prof) {
    const names = ["firstName", "lastName", "phoneNumber"];
    prof.querySelectorAll("input").forEach((el) => (el.dataset.json = el.name));
    (async () => {
      const r = await api("GET", "/api/profiles");
      if (r.status === 200 && r.body) names.forEach((k) => { prof.elements[k].value = r.body[k] || ""; });
      else if (r.status !== 401) prof.querySelector(".form-msg").textContent = explain(r);
    })();
    prof.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearMessages(prof);
      const body = {};
      names.forEach((k) => (body[k] = prof.elements[k].value.trim()));
      const r = await api("PUT", "/api/profiles", body);
      const m = prof.querySelector(".form-msg");
      if (r.status === 200) { m.className = "form-msg ok"; m.textContent = "Profile saved."; }
      else if (r.status !== 401) { m.className = "form-msg"; showFailure(prof, r); }
    });
  }
})();
