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

  // The dashboard and system pages (dashboard.js) share these helpers.
  window.RealGuardIO = { api, explain };

  // ---- id suggestions remembered in this browser -------------------------
  const store = "realguardio.known";
  function known() { try { return JSON.parse(localStorage.getItem(store)) || []; } catch (e) { return []; } }
  // offer adds a just-created id to the page's selects of its kind, so the
  // next form can use it without a reload (the tables catch up on reload).
  function offer(kind, id, label) {
    document.querySelectorAll('select[data-id-kind="' + kind + '"]').forEach((sel) => {
      if (Array.from(sel.options).some((o) => o.value === id)) return;
      const o = document.createElement("option");
      o.value = id;
      o.textContent = label || id;
      sel.append(o);
    });
  }
  function remember(kind, id, name) {
    if (!kind || !id) return;
    offer(kind, id, name);
    const list = known().filter((k) => k.id !== id);
    list.unshift({ kind, id, name: name || "" });
    localStorage.setItem(store, JSON.stringify(list.slice(0, 200)));
    fillDatalists();
  }
  function fillDatalists() {
    document.querySelectorAll("datalist[id^=known-]").forEach((dl) => {
      const kind = dl.id.slice("known-".length);
      dl.replaceChildren(...known().filter((k) => k.kind === kind).map((k) => {
        const o = document.createElement("option");
        o.value = k.id;
        o.label = k.name;
        return o;
      }));
    });
    const box = document.getElementById("known-orgs");
    if (box && !box.dataset.server) {
      const orgs = known().filter((k) => ["customer", "dealer", "monitoring-provider"].includes(k.kind));
      box.replaceChildren(orgTable(orgs.map((k) => ({ kind: k.kind, id: k.id, name: k.name })), "Created from this browser."));
    }
  }
  function orgTable(items, note) {
    const wrap = document.createElement("div");
    if (!items.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "None yet.";
      wrap.append(p);
      return wrap;
    }
    const t = document.createElement("table");
    t.innerHTML = '<thead><tr><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Id</th></tr></thead>';
    const tb = document.createElement("tbody");
    items.forEach((it) => {
      const tr = document.createElement("tr");
      [it.kind.replace("-", " "), it.name, it.id].forEach((v, i) => {
        const td = document.createElement("td");
        td.textContent = v;
        if (i === 2) td.className = "mono";
        tr.append(td);
      });
      tb.append(tr);
    });
    t.append(tb);
    wrap.append(t);
    if (note) { const p = document.createElement("p"); p.className = "hint"; p.textContent = note; wrap.append(p); }
    return wrap;
  }
  async function loadOrgs() {
    const box = document.getElementById("known-orgs");
    if (!box) return;
    const r = await api("GET", box.dataset.listUrl);
    if (r.status === 200 && r.body && Array.isArray(r.body.customers)) {
      box.dataset.server = "1";
      const items = r.body.customers.map((c) => ({ kind: "customer", id: c.id, name: c.name }));
      known().filter((k) => k.kind !== "customer" && ["dealer", "monitoring-provider"].includes(k.kind))
        .forEach((k) => items.push({ kind: k.kind, id: k.id, name: k.name }));
      box.replaceChildren(orgTable(items));
    }
  }

  // ---- generic API forms -----------------------------------------------
  function setPath(obj, path, value) {
    const parts = path.split(".");
    let o = obj;
    parts.slice(0, -1).forEach((p) => { o = o[p] = o[p] || {}; });
    o[parts[parts.length - 1]] = value;
  }
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
  function showResult(form, r, okText) {
    const out = form.querySelector(".result");
    const p = document.createElement("p");
    p.className = "ok";
    p.textContent = okText;
    out.append(p);
    if (r.body && typeof r.body === "object") {
      const pre = document.createElement("pre");
      pre.className = "code";
      pre.textContent = JSON.stringify(r.body, null, 2);
      out.append(pre);
    }
  }
  function showFailure(form, r) {
    const b = r.body || {};
    const msg = explain(r);
    if (!fieldMessage(form, b.field, msg)) form.querySelector(".form-msg").textContent = msg;
  }

  function validate(form) {
    let ok = true;
    form.querySelectorAll("input[required], input[data-kind=uuid], select[required]").forEach((el) => {
      const v = el.value.trim();
      let msg = "";
      if (el.required && !v) msg = "Required.";
      else if (v && el.dataset.kind === "uuid" && !/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(v)) msg = "Must be an id like 123e4567-e89b-12d3-a456-426614174000.";
      else if (v && el.type === "email" && !/^[^@\s]+@[^@\s]+$/.test(v)) msg = "Must be an e-mail address.";
      if (msg) {
        const m = document.getElementById(el.id + "-msg");
        if (m) m.textContent = msg;
        el.setAttribute("aria-invalid", "true");
        if (ok) el.focus();
        ok = false;
      }
    });
    return ok;
  }

  document.querySelectorAll("form.api-form").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearMessages(form);
      if (!validate(form)) return;
      let path = form.dataset.path;
      const body = {};
      let hasBody = false;
      form.querySelectorAll("[data-path-param]").forEach((el) => {
        path = path.replace("{" + el.dataset.pathParam + "}", encodeURIComponent(el.value.trim()));
      });
      form.querySelectorAll("[data-json]").forEach((el) => {
        if (el.dataset.kind === "array") {
          setPath(body, el.dataset.json, Array.from(el.querySelectorAll("input:checked")).map((c) => c.value));
          hasBody = true;
          return;
        }
        const v = el.value.trim();
        if (v === "") {
          if (el.dataset.null) { setPath(body, el.dataset.json, null); hasBody = true; }
          return;
        }
        setPath(body, el.dataset.json, v);
        hasBody = true;
      });
      const method = form.dataset.method;
      const btn = form.querySelector("button[type=submit]");
      btn.disabled = true;
      const r = await api(method, path, hasBody || method === "POST" ? body : undefined);
      btn.disabled = false;
      if (r.status >= 200 && r.status < 300) {
        showResult(form, r, r.status === 201 ? "Created." : "Saved.");
        const who = body.email ? ((body.firstName || "") + " " + (body.lastName || "")).trim() + " <" + body.email + ">" : "";
        if (form.dataset.remember && r.body && r.body.id) remember(form.dataset.remember, r.body.id, body.name || who);
        if (r.body && r.body.administrator && r.body.administrator.employeeId) remember("employee", r.body.administrator.employeeId, (body.administrator || {}).email);
      } else if (r.status !== 401) {
        showFailure(form, r);
      }
    });
  });

  // ---- schedule editor ---------------------------------------------------
  const sched = document.getElementById("schedule-form");
  if (sched) {
    const tzSel = document.getElementById("schedule-timezone");
    let zones = [];
    try { zones = Intl.supportedValuesOf("timeZone"); } catch (e) { /* old browser */ }
    if (!zones.length) zones = ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"];
    if (!zones.includes("UTC")) zones.unshift("UTC");
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    zones.forEach((z) => { const o = document.createElement("option"); o.value = z; o.textContent = z; if (z === here) o.selected = true; tzSel.append(o); });
    const list = document.getElementById("shift-list");
    const tpl = document.getElementById("shift-template");
    let n = 0;
    function addShift() {
      const li = tpl.content.firstElementChild.cloneNode(true);
      n++;
      li.querySelector("legend").textContent = "Days of shift " + n;
      li.querySelector(".remove-shift").addEventListener("click", () => li.remove());
      list.append(li);
    }
    document.getElementById("add-shift").addEventListener("click", addShift);
    addShift();
    const base = sched.dataset.base;
    const target = () => base + "/employees/" + encodeURIComponent(document.getElementById("schedule-employee").value.trim()) + "/schedule";
    sched.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearMessages(sched);
      if (!validate(sched)) return;
      const shifts = Array.from(list.querySelectorAll(".shift")).map((li) => ({
        weekdays: Array.from(li.querySelectorAll(".days input:checked")).map((c) => c.value),
        start: li.querySelector(".start").value,
        end: li.querySelector(".end").value,
      }));
      if (!shifts.length || shifts.some((s) => !s.weekdays.length || !s.start || !s.end)) {
        document.getElementById("schedule-shifts-msg").textContent = "Every shift needs at least one day, a start and an end.";
        return;
      }
      const r = await api("PUT", target(), { timezone: tzSel.value, shifts });
      if (r.status >= 200 && r.status < 300) showResult(sched, r, "Schedule saved.");
      else if (r.status !== 401) showFailure(sched, r);
    });
    document.getElementById("clear-schedule").addEventListener("click", async () => {
      clearMessages(sched);
      if (!validate(sched)) return;
      const r = await api("DELETE", target());
      if (r.status >= 200 && r.status < 300) showResult(sched, { body: null }, "Schedule removed: the employee is unrestricted.");
      else if (r.status !== 401) showFailure(sched, r);
    });
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

  fillDatalists();
  loadOrgs();
})();
