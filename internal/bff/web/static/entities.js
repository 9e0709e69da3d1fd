// RealGuardIO web UI, the organization and entity pages: the editors open
// with the current values the page was rendered with (data-current), show
// what a change would do before it is saved, ask before anything that takes
// access away, and say when a change takes effect under the running
// strategy. The platform page lists the organizations from the services,
// paged and searchable. Calls go through app.js's api(), which adds the CSRF
// token and handles a lost session.
"use strict";

(function () {
  const rg = window.RealGuardIO;
  if (!rg) return;
  const { api, explain } = rg;
  const root = document.querySelector(".entities");
  if (!root) return;
  const effectText = root.dataset.effectText || "";
  const orgURL = root.dataset.orgUrl || "";

  const pretty = (r) => String(r).replace(/^SECURITY_SYSTEM_/, "").replace(/_/g, " ").toLowerCase().replace(/^\w/, (c) => c.toUpperCase());
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const json = (s, fallback) => { try { return s ? JSON.parse(s) : fallback; } catch (e) { return fallback; } };

  // ---- fields, labels and friendly errors ---------------------------------
  function fieldEl(form, name) {
    if (name.startsWith("path:")) return form.querySelector('[data-path-param="' + name.slice(5) + '"]');
    return form.querySelector('[data-json="' + name + '"]');
  }
  // labelOf names a field the way the page shows it, for messages.
  function labelOf(elm) {
    if (!elm) return "";
    if (elm.dataset.label) return elm.dataset.label;
    const l = elm.id && document.querySelector('label[for="' + elm.id + '"]');
    return l ? l.textContent.replace("*", "").trim() : "";
  }
  // choiceText is what the user chose in a field, by name.
  function choiceText(elm) {
    if (!elm) return "";
    if (elm.tagName === "SELECT") {
      const o = elm.selectedOptions[0];
      return o && o.value ? o.textContent.replace(/ <.*>$/, "") : "none";
    }
    if (elm.type === "hidden") return elm.dataset.label || "";
    return elm.value.trim();
  }
  // problemField finds the input a problem's "field" names: by its full
  // JSON path, an indexed element of it (roles[1]) or its last part.
  function problemField(form, field) {
    if (!field) return null;
    const cands = Array.from(form.querySelectorAll("[data-json], [data-path-param], [data-field]"));
    const name = (e) => e.dataset.json || e.dataset.pathParam || e.dataset.field;
    return cands.find((e) => name(e) === field) ||
      cands.find((e) => field.startsWith(name(e) + "[") || field.startsWith(name(e) + ".")) ||
      cands.find((e) => name(e).split(".").pop() === field.split(".").pop()) || null;
  }
  // friendly turns a failed call into a sentence naming the field by its
  // label instead of its JSON path ("Initial password: must be ...").
  function friendly(form, r) {
    const b = r.body || {};
    let msg = explain(r);
    const f = problemField(form, b.field);
    if (f && b.field && typeof msg === "string") {
      const rest = msg.startsWith(b.field + ": ") ? msg.slice(b.field.length + 2) : msg.replace(/^[\w.[\]]+: /, "");
      const label = labelOf(f);
      if (label) msg = label + ": " + rest;
    }
    return { msg, field: f };
  }
  function clear(form) {
    form.querySelectorAll(".field-msg").forEach((m) => (m.textContent = ""));
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    const fm = form.querySelector(".form-msg");
    fm.textContent = "";
    fm.className = "form-msg";
    form.querySelector(".result").replaceChildren();
    hideConfirm(form);
  }
  function fail(form, r) {
    const { msg, field } = friendly(form, r);
    if (field && field.type !== "hidden") {
      const m = document.getElementById(field.id + "-msg") || (field.closest(".field, fieldset") || form).querySelector(".field-msg");
      if (m) {
        m.textContent = msg;
        field.setAttribute("aria-invalid", "true");
        if (field.focus) field.focus();
        return;
      }
    }
    form.querySelector(".form-msg").textContent = msg;
  }
  function note(form, text, ok) {
    const fm = form.querySelector(".form-msg");
    fm.className = ok ? "form-msg ok" : "form-msg";
    fm.textContent = text;
  }
  function validate(form) {
    let ok = true;
    form.querySelectorAll("input[required], input[data-kind=uuid], select[required]").forEach((e) => {
      const v = e.value.trim();
      let msg = "";
      if (e.required && !v) msg = "Required.";
      else if (v && e.dataset.kind === "uuid" && !/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(v)) msg = "Must be an id like 123e4567-e89b-12d3-a456-426614174000.";
      else if (v && e.type === "email" && !/^[^@\s]+@[^@\s]+$/.test(v)) msg = "Must be an e-mail address.";
      if (msg) {
        const m = document.getElementById(e.id + "-msg");
        if (m) m.textContent = msg;
        e.setAttribute("aria-invalid", "true");
        if (ok) e.focus();
        ok = false;
      }
    });
    return ok;
  }

  // ---- confirmation --------------------------------------------------------
  // confirmFirst shows text in the form's confirmation box and resolves
  // true when the user says yes, false on cancel.
  function confirmFirst(form, text, yesLabel) {
    const box = form.querySelector(".confirm");
    box.querySelector(".confirm-text").textContent = text;
    const yes = box.querySelector(".confirm-yes");
    const no = box.querySelector(".confirm-no");
    yes.textContent = yesLabel || "Yes, go ahead";
    box.hidden = false;
    form.querySelector("button[type=submit]").hidden = true;
    yes.focus();
    return new Promise((resolve) => {
      const done = (v) => { hideConfirm(form); yes.onclick = no.onclick = null; resolve(v); };
      yes.onclick = () => done(true);
      no.onclick = () => done(false);
    });
  }
  function hideConfirm(form) {
    const box = form.querySelector(".confirm");
    if (box) box.hidden = true;
    const s = form.querySelector("button[type=submit]");
    if (s) s.hidden = false;
  }
  const effect = () => (effectText ? " Takes effect " + effectText + "." : "");

  // ---- editors with current values ----------------------------------------
  // An editor (data-current) keys its current values by the ids its key
  // fields hold; the value is the one non-key field: a set of roles or a
  // choice.
  function editor(form) {
    if (form.dataset.current === undefined) return null;
    const keys = json(form.dataset.key, []).map((n) => fieldEl(form, n)).filter(Boolean);
    const value = Array.from(form.querySelectorAll("[data-json]")).find((e) => e.type !== "hidden" && !keys.includes(e));
    if (!value) return null;
    return { keys, value, current: json(form.dataset.current, {}) };
  }
  function keyOf(ed) {
    const parts = ed.keys.map((k) => k.value.trim());
    return parts.some((p) => !p) && parts.length ? null : parts.join(" ");
  }
  function stateOf(ed) {
    if (ed.value.dataset.kind === "array") return Array.from(ed.value.querySelectorAll("input:checked")).map((c) => c.value).sort();
    return ed.value.value.trim();
  }
  function originalOf(ed) {
    const k = keyOf(ed);
    if (k === null) return undefined;
    const v = ed.current[k];
    if (ed.value.dataset.kind === "array") return (v || []).slice().sort();
    return v || "";
  }
  function apply(ed) {
    const orig = originalOf(ed);
    if (orig === undefined) return;
    if (ed.value.dataset.kind === "array") ed.value.querySelectorAll("input[type=checkbox]").forEach((c) => (c.checked = orig.includes(c.value)));
    else ed.value.value = orig;
  }
  function optionText(sel, v) {
    if (!v) return "none";
    const o = Array.from(sel.options || []).find((x) => x.value === v);
    return o ? o.textContent.replace(/ <.*>$/, "") : v;
  }
  // change describes the difference between the saved and the edited
  // value: {adds, removes, text}; removes counts what access is taken.
  function change(ed) {
    const orig = originalOf(ed);
    if (orig === undefined) return null;
    const now = stateOf(ed);
    if (ed.value.dataset.kind === "array") {
      const adds = now.filter((r) => !orig.includes(r));
      const removes = orig.filter((r) => !now.includes(r));
      const parts = [];
      if (adds.length) parts.push("adds " + adds.map(pretty).join(", "));
      if (removes.length) parts.push("takes away " + removes.map(pretty).join(", "));
      return { adds: adds.length, removes: removes.length, removed: removes.map(pretty).join(", "), text: parts.join("; ") };
    }
    if (now === orig) return { adds: 0, removes: 0, text: "" };
    const from = optionText(ed.value, orig), to = optionText(ed.value, now);
    return { adds: now ? 1 : 0, removes: orig ? 1 : 0, removed: from, text: labelOf(ed.value) + ": " + from + " → " + to };
  }
  function whom(ed) {
    return ed.keys.map(choiceText).filter(Boolean).join(" at ").replace(/^(.*) at (.*)$/, "$2 at $1");
  }
  function showDiff(form, ed) {
    const box = form.querySelector(".diff");
    const c = change(ed);
    if (!c || !c.text) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.className = "diff" + (c.removes ? " removes" : "");
    box.textContent = "Change" + (whom(ed) ? " for " + whom(ed) : "") + ": " + c.text + ".";
  }

  // ---- created things -------------------------------------------------------
  // offer adds a just-created id to the page's choices of its kind, so the
  // next form can use it at once.
  function offer(kind, id, label) {
    document.querySelectorAll('select[data-id-kind="' + kind + '"]').forEach((sel) => {
      if (Array.from(sel.options).some((o) => o.value === id)) return;
      const o = document.createElement("option");
      o.value = id;
      o.textContent = label || id;
      sel.append(o);
    });
  }
  const orgKinds = { customer: "customer", dealer: "dealer", "monitoring-provider": "monitoring-provider" };
  function pageOf(kind, id) {
    if (orgKinds[kind]) return "/admin/organizations/" + kind + "/" + encodeURIComponent(id);
    if (orgURL && ["employee", "location", "team"].includes(kind)) return orgURL + "/" + kind + "s/" + encodeURIComponent(id);
    return "";
  }
  // secretBox shows a generated password once, whole, with a copy button,
  // and says that it only opens the first login: the IAM then makes the
  // person choose their own (an initial password is the administrator's
  // choice, never the working one).
  function secretBox(who, pw) {
    const wrap = el("div", "secret");
    const id = "pw-" + Math.random().toString(36).slice(2);
    const l = el("label", "", "Initial password for " + who + " (shown only now; hand it over safely):");
    l.htmlFor = id;
    const row = el("div", "secret-row");
    const input = el("input", "mono");
    input.id = id;
    input.readOnly = true;
    input.value = pw;
    // Wide enough for the whole password in the monospace font, never
    // wider than the box: nothing of it is cut off.
    input.style.width = "calc(" + pw.length + "ch + 1.5rem)";
    input.dataset.testid = "initial-password";
    const b = el("button", "secondary", "Copy");
    b.type = "button";
    b.addEventListener("click", async () => {
      input.select();
      try { await navigator.clipboard.writeText(pw); b.textContent = "Copied"; } catch (e) { document.execCommand("copy"); b.textContent = "Copied"; }
    });
    row.append(input, b);
    const note = el("p", "hint", who + " must choose their own password at the first login: the sign-in asks for a new one before anything else, and this one stops working then.");
    note.dataset.testid = "initial-password-note";
    wrap.append(l, row, note);
    return wrap;
  }
  function created(form, body, sent) {
    const out = form.querySelector(".result");
    const kind = form.dataset.remember;
    const name = sent.name || [sent.firstName, sent.lastName].filter(Boolean).join(" ") || sent.email || "";
    const p = el("p", "ok", "Created" + (name ? " " + name : "") + ".");
    const href = body && body.id ? pageOf(kind, body.id) : "";
    if (href) { p.append(" "); const a = el("a", "", "Open"); a.href = href; p.append(a); }
    out.append(p);
    const pw = body && (body.initialPassword || (body.administrator || {}).initialPassword);
    if (pw) out.append(secretBox((sent.administrator || {}).email || sent.email || name, pw));
    if (kind && body && body.id) offer(kind, body.id, name);
    if (body && body.administrator && body.administrator.employeeId) offer("employee", body.administrator.employeeId, (sent.administrator || {}).email);
  }

  // ---- submitting ----------------------------------------------------------
  function setPath(obj, path, value) {
    const parts = path.split(".");
    let o = obj;
    parts.slice(0, -1).forEach((p) => { o = o[p] = o[p] || {}; });
    o[parts[parts.length - 1]] = value;
  }
  function request(form) {
    let path = form.dataset.path;
    const body = {};
    let hasBody = false;
    form.querySelectorAll("[data-path-param]").forEach((e) => {
      path = path.replace("{" + e.dataset.pathParam + "}", encodeURIComponent(e.value.trim()));
    });
    form.querySelectorAll("[data-json]").forEach((e) => {
      if (e.dataset.kind === "array") {
        setPath(body, e.dataset.json, Array.from(e.querySelectorAll("input:checked")).map((c) => c.value));
        hasBody = true;
        return;
      }
      if (e.dataset.kind === "bool") {
        setPath(body, e.dataset.json, e.value === "true");
        hasBody = true;
        return;
      }
      const v = e.value.trim();
      if (v === "") {
        if (e.dataset.null) { setPath(body, e.dataset.json, null); hasBody = true; }
        return;
      }
      setPath(body, e.dataset.json, v);
      hasBody = true;
    });
    return { path, body, hasBody };
  }
  // namesake looks for an existing organization, location or team of the
  // same name, so a second "Globex" is made only on purpose.
  async function namesake(form, name) {
    if (!form.dataset.unique || !name) return false;
    const r = await api("GET", form.dataset.unique + "?limit=50&q=" + encodeURIComponent(name));
    if (r.status !== 200 || !r.body) return false;
    const items = r.body[form.dataset.uniqueKey] || [];
    return items.some((it) => String(it.name).trim().toLowerCase() === name.trim().toLowerCase());
  }
  function member(form) {
    const members = form.dataset.members === undefined ? null : json(form.dataset.members, {});
    if (!members) return null;
    const t = form.querySelector('[data-path-param="teamId"]'), e = form.querySelector('[data-path-param="employeeId"]');
    return { is: !!members[t.value.trim() + " " + e.value.trim()], team: choiceText(t), who: choiceText(e), set: (v) => { members[t.value.trim() + " " + e.value.trim()] = v; form.dataset.members = JSON.stringify(members); } };
  }

  async function submit(form) {
    clear(form);
    if (!validate(form)) return;
    const ed = editor(form);
    const method = form.dataset.method;
    const { path, body, hasBody } = request(form);
    let confirmText = "";
    if (ed) {
      const c = change(ed);
      if (c && !c.text) { note(form, "Nothing to save: that is already the current value.", true); return; }
      if (c && c.removes) confirmText = "This takes away " + c.removed + (whom(ed) ? " for " + whom(ed) : "") + ": access it gives ends" + (effectText ? " " + effectText : "") + ". Save anyway?";
    }
    const m = member(form);
    if (m && method === "DELETE" && !m.is) { note(form, m.who + " is not a member of " + m.team + "; nothing was changed."); return; }
    if (m && method === "PUT" && m.is) { note(form, m.who + " is already a member of " + m.team + "; nothing was changed.", true); return; }
    if (m && method === "DELETE") confirmText = "Remove " + m.who + " from " + m.team + "? They lose the roles the team holds" + (effectText ? ", " + effectText : "") + ".";
    if (!m && form.dataset.danger && method === "DELETE") confirmText = (form.querySelector("button[type=submit]").textContent.trim()) + "? This cannot be undone here.";
    if (form.dataset.confirm) confirmText = form.dataset.confirm;
    if (method === "POST" && await namesake(form, body.name || "")) {
      if (!await confirmFirst(form, "There is already one named “" + body.name + "”. Create another with the same name? People would have to tell them apart by id.", "Create another")) return;
    }
    if (confirmText && !await confirmFirst(form, confirmText, form.dataset.confirmYes || (method === "DELETE" ? "Yes, remove" : "Yes, take it away"))) {
      note(form, "Not saved; nothing was changed.", true);
      return;
    }
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    const r = await api(method, path, hasBody || method === "POST" ? body : undefined);
    btn.disabled = false;
    if (r.status >= 200 && r.status < 300) {
      if (r.status === 201) { created(form, r.body, body); return; }
      // A change the page's facts show (an account's status) reloads the
      // page, so what it says and offers is the new state.
      if (form.dataset.reload) { location.reload(); return; }
      // A deletion leaves the page of what no longer exists.
      if (form.dataset.then) { location.assign(form.dataset.then); return; }
      const out = form.querySelector(".result");
      let text = "Saved.";
      if (m) { m.set(method === "PUT"); text = method === "PUT" ? "Saved: " + m.who + " is now a member of " + m.team + "." : "Saved: " + m.who + " is no longer a member of " + m.team + "."; }
      else if (ed) { const k = keyOf(ed); ed.current[k] = stateOf(ed); form.dataset.current = JSON.stringify(ed.current); }
      else if (method === "DELETE") text = "Removed.";
      out.append(el("p", "ok", text + (form.dataset.effect ? effect() : "")));
      if (ed) showDiff(form, ed);
    } else if (r.status !== 401) {
      fail(form, r);
    }
  }

  document.querySelectorAll("form.api-form").forEach((form) => {
    const ed = editor(form);
    if (ed) {
      apply(ed);
      ed.keys.forEach((k) => k.addEventListener("change", () => { apply(ed); showDiff(form, ed); }));
      form.addEventListener("change", () => showDiff(form, ed));
      form.addEventListener("input", () => showDiff(form, ed));
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(form); });
  });

  // ---- schedule editor -------------------------------------------------
  const sched = document.getElementById("schedule-form");
  if (sched) scheduleEditor(sched);

  function scheduleEditor(form) {
    const current = json(form.dataset.current, {});
    const tzSel = document.getElementById("schedule-timezone");
    const who = document.getElementById("schedule-employee");
    let zones = [];
    try { zones = Intl.supportedValuesOf("timeZone"); } catch (e) { /* old browser */ }
    if (!zones.length) zones = ["Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"];
    if (!zones.includes("UTC")) zones.unshift("UTC");
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    zones.forEach((z) => { const o = document.createElement("option"); o.value = z; o.textContent = z; tzSel.append(o); });
    const list = document.getElementById("shift-list");
    const none = document.getElementById("schedule-none");
    const tpl = document.getElementById("shift-template");
    let n = 0;
    function addShift(sh) {
      const li = tpl.content.firstElementChild.cloneNode(true);
      n++;
      li.querySelector("legend").textContent = "Days of shift " + n;
      li.querySelector(".remove-shift").addEventListener("click", () => { li.remove(); refresh(); });
      if (sh) {
        li.querySelectorAll(".days input").forEach((c) => (c.checked = sh.weekdays.includes(c.value)));
        li.querySelector(".start").value = sh.start;
        li.querySelector(".end").value = sh.end;
      }
      list.append(li);
      refresh();
    }
    const ensureZone = (z) => {
      if (z && !Array.from(tzSel.options).some((o) => o.value === z)) { const o = document.createElement("option"); o.value = o.textContent = z; tzSel.append(o); }
    };
    function original() {
      const id = who.value.trim();
      return id && Object.prototype.hasOwnProperty.call(current, id) ? current[id] : (id ? null : undefined);
    }
    function load() {
      list.replaceChildren();
      n = 0;
      const s = original();
      ensureZone(s ? s.timezone : here);
      tzSel.value = s ? s.timezone : (zones.includes(here) ? here : "UTC");
      if (s) s.shifts.forEach(addShift);
      refresh();
    }
    function edited() {
      return {
        timezone: tzSel.value,
        shifts: Array.from(list.querySelectorAll(".shift")).map((li) => ({
          weekdays: Array.from(li.querySelectorAll(".days input:checked")).map((c) => c.value),
          start: li.querySelector(".start").value,
          end: li.querySelector(".end").value,
        })),
      };
    }
    const days = (w) => w.map((d) => d.charAt(0) + d.slice(1).toLowerCase()).join(", ");
    const describe = (s) => (!s || !s.shifts.length ? "none (any hour)" : s.shifts.map((x) => days(x.weekdays) + " " + x.start + "–" + x.end).join("; ") + " (" + s.timezone + ")");
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    const shiftKey = (x) => x.weekdays.slice().sort().join(",") + " " + x.start + " " + x.end;
    function refresh() {
      none.hidden = list.children.length > 0;
      const box = form.querySelector(".diff");
      const orig = original();
      if (orig === undefined) { box.hidden = true; return; }
      const now = edited();
      const o = orig ? { timezone: orig.timezone, shifts: orig.shifts } : { timezone: now.timezone, shifts: [] };
      if (same(o, now) || (!orig && !now.shifts.length)) { box.hidden = true; return; }
      box.hidden = false;
      box.className = "diff removes";
      box.textContent = "Change for " + choiceText(who) + ": shifts " + describe(orig) + " → " + describe(now) + ".";
    }
    // restricts reports whether saving would take away hours in which the
    // employee may act now: a first schedule, another zone, or a shift gone.
    function restricts(orig, now) {
      if (!orig) return true;
      if (orig.timezone !== now.timezone) return true;
      const keep = new Set(now.shifts.map(shiftKey));
      return orig.shifts.some((x) => !keep.has(shiftKey(x)));
    }
    document.getElementById("add-shift").addEventListener("click", () => addShift());
    if (who.tagName === "SELECT") who.addEventListener("change", load);
    form.addEventListener("change", refresh);
    form.addEventListener("input", refresh);
    load();
    const target = () => form.dataset.base + "/employees/" + encodeURIComponent(who.value.trim()) + "/schedule";
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(form);
      if (!validate(form)) return;
      const now = edited();
      if (!now.shifts.length) { document.getElementById("schedule-shifts-msg").textContent = "Add a shift, or remove the schedule to make the employee unrestricted."; return; }
      if (now.shifts.some((s) => !s.weekdays.length || !s.start || !s.end)) {
        document.getElementById("schedule-shifts-msg").textContent = "Every shift needs at least one day, a start and an end.";
        return;
      }
      const orig = original();
      if (orig && same({ timezone: orig.timezone, shifts: orig.shifts }, now)) { note(form, "Nothing to save: that is already the current schedule.", true); return; }
      if (restricts(orig, now) && !await confirmFirst(form, choiceText(who) + " will arm and disarm only during " + describe(now) + "; outside them access ends" + (effectText ? " " + effectText : "") + ". Save?", "Yes, restrict")) {
        note(form, "Not saved; nothing was changed.", true);
        return;
      }
      const r = await api("PUT", target(), now);
      if (r.status >= 200 && r.status < 300) {
        current[who.value.trim()] = now;
        form.querySelector(".result").append(el("p", "ok", "Schedule saved." + effect()));
        refresh();
      } else if (r.status !== 401) fail(form, r);
    });
    document.getElementById("clear-schedule").addEventListener("click", async () => {
      clear(form);
      if (!validate(form)) return;
      if (original() === null) { note(form, choiceText(who) + " has no schedule; nothing was changed.", true); return; }
      const r = await api("DELETE", target());
      if (r.status >= 200 && r.status < 300) {
        current[who.value.trim()] = null;
        load();
        form.querySelector(".result").append(el("p", "ok", "Schedule removed: the employee is unrestricted." + effect()));
      } else if (r.status !== 401) fail(form, r);
    });
  }

  // ---- organizations listed from the services ------------------------------
  document.querySelectorAll(".org-list").forEach(orgList);

  function orgList(box) {
    const kind = box.dataset.kind;
    const search = el("form", "search");
    search.setAttribute("role", "search");
    const f = el("div", "field grow");
    const id = box.id + "-q";
    const l = el("label", "", "Name contains");
    l.htmlFor = id;
    const q = el("input");
    q.id = id;
    q.type = "search";
    q.maxLength = 200;
    f.append(l, q);
    const go = el("button", "", "Search");
    go.type = "submit";
    search.append(f, go);
    const msg = el("p", "muted");
    msg.setAttribute("aria-live", "polite");
    const table = el("table", "stack");
    table.innerHTML = '<thead><tr><th scope="col">Name</th><th scope="col">Id</th></tr></thead>';
    const tb = el("tbody");
    table.append(tb);
    const wrap = el("div", "table-wrap");
    wrap.append(table);
    const more = el("button", "secondary", "More");
    more.type = "button";
    more.hidden = true;
    box.append(search, msg, wrap, more);
    let cursor = "";
    async function page(reset) {
      if (reset) { tb.replaceChildren(); cursor = ""; }
      msg.textContent = "Loading…";
      let url = box.dataset.list + "?limit=20";
      if (q.value.trim()) url += "&q=" + encodeURIComponent(q.value.trim());
      if (cursor) url += "&cursor=" + encodeURIComponent(cursor);
      const r = await api("GET", url);
      if (r.status !== 200 || !r.body) { msg.textContent = r.status === 401 ? "" : explain(r); return; }
      const items = r.body[box.dataset.key] || [];
      items.forEach((it) => {
        const tr = el("tr");
        tr.dataset.org = it.id;
        const th = el("th");
        th.scope = "row";
        const a = el("a", "", it.name);
        a.href = pageOf(kind, it.id);
        th.append(a);
        const td = el("td", "mono", it.id);
        td.dataset.label = "Id";
        tr.append(th, td);
        tb.append(tr);
      });
      cursor = r.body.nextCursor || "";
      more.hidden = !cursor;
      wrap.hidden = !tb.children.length;
      msg.textContent = tb.children.length ? "" : (q.value.trim() ? "None matches." : "None yet.");
    }
    search.addEventListener("submit", (ev) => { ev.preventDefault(); page(true); });
    more.addEventListener("click", () => page(false));
    page(true);
  }
})();
