import NIOCore

/// The studio (`GET /studio`): one page, with its script and styles, that works on the
/// runtime's own endpoints as a super user: the tables and their records (browse, edit, create,
/// delete), a query in the URL language with its plan and time, a table's changes live (SSE), jobs
/// and schedules, metrics as small charts, the cluster. No build step, nothing from a CDN.
enum StudioPage {
    static let html = ByteBuffer(string: page)

    private static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Microlith studio</title>
        <style>
          :root { --fg: #1d232b; --muted: #5c6670; --line: #d9dee3; --accent: #0b5cad; --bg: #f6f7f9; --bad: #b42318; --good: #1a7f37; }
          * { box-sizing: border-box; }
          body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
          header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
          header h1 { font-size: 1.05rem; margin: 0; }
          header .who { margin-left: auto; color: var(--muted); }
          main { display: grid; grid-template-columns: 15rem 1fr; min-height: calc(100vh - 3rem); }
          nav { background: #fff; border-right: 1px solid var(--line); padding: .6rem; }
          nav h2 { font-size: .8rem; text-transform: uppercase; color: var(--muted); margin: .8rem 0 .3rem; }
          nav button.table { display: flex; width: 100%; justify-content: space-between; border: 0; background: none; padding: .3rem .4rem;
            text-align: left; border-radius: 4px; cursor: pointer; font: inherit; }
          nav button.table[aria-current="true"] { background: #e7effa; color: var(--accent); font-weight: 600; }
          nav button.table span.count { color: var(--muted); font-variant-numeric: tabular-nums; }
          section.work { padding: .8rem 1rem; overflow: auto; }
          [role="tablist"] { display: flex; gap: .25rem; border-bottom: 1px solid var(--line); margin-bottom: .8rem; }
          [role="tab"] { border: 1px solid transparent; border-bottom: 0; background: none; padding: .4rem .8rem; cursor: pointer; font: inherit;
            border-radius: 4px 4px 0 0; }
          [role="tab"][aria-selected="true"] { background: #fff; border-color: var(--line); font-weight: 600; }
          button, input, textarea, select { font: inherit; }
          button.action { background: var(--accent); color: #fff; border: 0; border-radius: 4px; padding: .35rem .8rem; cursor: pointer; }
          button.quiet { background: #fff; color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: .3rem .7rem;
            cursor: pointer; }
          button.danger { background: var(--bad); }
          :focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
          table.grid { border-collapse: collapse; width: 100%; background: #fff; }
          table.grid th, table.grid td { border: 1px solid var(--line); padding: .25rem .45rem; text-align: left; vertical-align: top;
            max-width: 22rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
          table.grid tr.row { cursor: pointer; }
          table.grid tr.row:hover, table.grid tr.row:focus { background: #eef4fb; }
          textarea { width: 100%; min-height: 14rem; font-family: ui-monospace, monospace; font-size: 13px; }
          input.wide { width: 100%; font-family: ui-monospace, monospace; }
          .bar { display: flex; gap: .5rem; align-items: center; margin: .5rem 0; flex-wrap: wrap; }
          .muted { color: var(--muted); }
          .status { min-height: 1.4rem; }
          .status.bad { color: var(--bad); }
          .status.good { color: var(--good); }
          pre { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow: auto; max-height: 28rem; }
          ol.events { list-style: none; padding: 0; margin: 0; font-family: ui-monospace, monospace; font-size: 12.5px; }
          ol.events li { background: #fff; border: 1px solid var(--line); border-radius: 4px; margin-bottom: .3rem; padding: .3rem .5rem; }
          .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: .8rem; }
          .chart { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
          .chart .value { font-size: 1.2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
          form.signin { max-width: 22rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin: 2rem auto; }
          form.signin label { display: block; margin: .5rem 0 .2rem; }
          form.signin input { width: 100%; }
          [hidden] { display: none !important; }
        </style>
        </head>
        <body>
        <header>
          <h1>Microlith studio</h1>
          <span id="server" class="muted"></span>
          <span class="who"><span id="who"></span> <button id="signout" class="quiet" hidden>Sign out</button></span>
        </header>
        <form id="signin" class="signin" hidden>
          <h2>Sign in</h2>
          <p class="muted">The studio acts as a super user.</p>
          <label for="username">User</label><input id="username" autocomplete="username" required>
          <label for="password">Password</label><input id="password" type="password" autocomplete="current-password" required>
          <div class="bar"><button class="action" type="submit">Sign in</button></div>
          <div id="signin-status" class="status bad" role="alert"></div>
        </form>
        <main id="app" hidden>
          <nav aria-label="Tables"><div id="tables"></div></nav>
          <section class="work">
            <div role="tablist" aria-label="Views">
              <button role="tab" id="tab-records" aria-controls="view-records" aria-selected="true">Records</button>
              <button role="tab" id="tab-query" aria-controls="view-query" aria-selected="false" tabindex="-1">Query</button>
              <button role="tab" id="tab-live" aria-controls="view-live" aria-selected="false" tabindex="-1">Live</button>
              <button role="tab" id="tab-jobs" aria-controls="view-jobs" aria-selected="false" tabindex="-1">Jobs</button>
              <button role="tab" id="tab-metrics" aria-controls="view-metrics" aria-selected="false" tabindex="-1">Metrics</button>
              <button role="tab" id="tab-cluster" aria-controls="view-cluster" aria-selected="false" tabindex="-1">Cluster</button>
            </div>
            <div id="view-records" role="tabpanel" aria-labelledby="tab-records">
              <div class="bar">
                <strong id="records-title"></strong>
                <button id="prev" class="quiet">Previous</button><button id="next" class="quiet">Next</button>
                <span id="records-range" class="muted"></span>
                <button id="new" class="quiet">New record</button>
              </div>
              <div id="records"></div>
              <div id="editor" hidden>
                <h3 id="editor-title"></h3>
                <div class="bar"><label for="record-id">Key</label><input id="record-id"></div>
                <label for="record-json" class="muted">The record as JSON</label>
                <textarea id="record-json" spellcheck="false"></textarea>
                <div class="bar">
                  <button id="save" class="action">Save</button>
                  <button id="delete" class="action danger">Delete</button>
                  <button id="close" class="quiet">Close</button>
                </div>
              </div>
              <div id="records-status" class="status" role="status"></div>
            </div>
            <div id="view-query" role="tabpanel" aria-labelledby="tab-query" hidden>
              <form id="query-form" class="bar">
                <label for="query" class="muted">URL query</label>
                <input id="query" class="wide" placeholder="Table/?attribute=value&amp;sort(-n)&amp;limit(10)">
                <button class="action" type="submit">Run</button>
              </form>
              <div id="query-plan" class="status" role="status"></div>
              <div id="query-result"></div>
            </div>
            <div id="view-live" role="tabpanel" aria-labelledby="tab-live" hidden>
              <div class="bar"><strong id="live-title"></strong><button id="live-toggle" class="quiet">Pause</button>
                <span id="live-status" class="muted" role="status"></span></div>
              <ol id="events" class="events" aria-live="polite"></ol>
            </div>
            <div id="view-jobs" role="tabpanel" aria-labelledby="tab-jobs" hidden>
              <div class="bar"><button id="jobs-refresh" class="quiet">Refresh</button></div>
              <h3>Schedules</h3><div id="schedules"></div>
              <h3>Jobs</h3><div id="jobs"></div>
            </div>
            <div id="view-metrics" role="tabpanel" aria-labelledby="tab-metrics" hidden>
              <p class="muted">Read from <code>GET /metrics</code> every two seconds.</p>
              <div id="charts" class="charts"></div>
            </div>
            <div id="view-cluster" role="tabpanel" aria-labelledby="tab-cluster" hidden>
              <div class="bar"><button id="cluster-refresh" class="quiet">Refresh</button></div>
              <pre id="cluster"></pre>
            </div>
          </section>
        </main>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const state = { token: sessionStorage.getItem("microlith.token"), user: sessionStorage.getItem("microlith.user"),
          tables: [], table: null, start: 0, page: 25, live: null, paused: false, samples: {}, timer: null };

        function text(value) {
          return value === undefined || value === null ? "" : (typeof value === "object" ? JSON.stringify(value) : String(value));
        }
        function element(tag, props = {}, children = []) {
          const node = document.createElement(tag);
          for (const [k, v] of Object.entries(props)) { if (k === "text") node.textContent = v; else node.setAttribute(k, v); }
          for (const child of children) node.append(child);
          return node;
        }
        function say(id, message, kind) { const node = $(id); node.textContent = message; node.className = "status" + (kind ? " " + kind : ""); }

        async function call(method, path, body, extra = {}) {
          // Only this server's own URLs get the token.
          const url = new URL(path, location.origin);
          if (url.origin !== location.origin) throw new Error("not a path of this server: " + path);
          const headers = Object.assign({}, extra);
          if (state.token) headers["Authorization"] = "Bearer " + state.token;
          if (body !== undefined) headers["Content-Type"] = "application/json";
          const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
          if (response.status === 401 && state.token) {
            // The token expired or was revoked: sign in again.
            sessionStorage.removeItem("microlith.token"); state.token = null; stopLive(); showSignIn();
            say("signin-status", "your session ended; sign in again", "bad");
          }
          return response;
        }
        async function problem(response) {
          try { const body = await response.json(); return body.detail || body.title || response.statusText; } catch { return response.statusText; }
        }
        function rest(table) { return "/" + encodeURIComponent(table.exportName || table.name) + "/"; }

        function showSignIn() { $("app").hidden = true; $("signin").hidden = false; $("signout").hidden = true; $("username").focus(); }
        $("signin").addEventListener("submit", async (event) => {
          event.preventDefault();
          const response = await fetch("/_auth/token", { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ username: $("username").value, password: $("password").value }) });
          if (!response.ok) { say("signin-status", await problem(response), "bad"); return; }
          const body = await response.json();
          state.token = body.access_token; state.user = $("username").value;
          sessionStorage.setItem("microlith.token", state.token); sessionStorage.setItem("microlith.user", state.user);
          $("password").value = "";
          await start();
        });
        $("signout").addEventListener("click", () => {
          sessionStorage.clear(); state.token = null; state.user = null; stopLive(); showSignIn();
        });

        async function start() {
          // Without a token, sign in first: an unauthenticated call would get the server's HTTP Basic
          // challenge, and the browser would answer it with its own dialog.
          if (!state.token) { showSignIn(); return; }
          const response = await call("GET", "/_status");
          if (!response.ok) { say("signin-status", await problem(response), "bad"); showSignIn(); return; }
          const status = await response.json();
          $("signin").hidden = true; $("app").hidden = false;
          $("signout").hidden = !state.token;
          $("who").textContent = state.user ? "signed in as " + state.user : "";
          $("server").textContent = "microlith " + status.version + " · node " + status.node + " · up " + Math.round(status.uptimeSeconds) + " s";
          state.tables = status.tables.filter((t) => t.exportName);
          drawTables(status);
          if (!state.table && state.tables.length) selectTable(state.tables[0]);
        }

        function drawTables(status) {
          const nav = $("tables"); nav.replaceChildren();
          for (const database of status.databases) {
            nav.append(element("h2", { text: "Database " + database.name }));
            for (const table of state.tables.filter((t) => t.database === database.name)) {
              const button = element("button", { class: "table", "data-table": table.exportName, "aria-current": String(state.table === table) },
                [element("span", { text: table.exportName }), element("span", { class: "count", text: String(table.records) })]);
              button.addEventListener("click", () => selectTable(table));
              nav.append(button);
            }
          }
        }

        function selectTable(table) {
          state.table = table; state.start = 0;
          for (const b of document.querySelectorAll("nav button.table")) {
            b.setAttribute("aria-current", String(b.dataset.table === table.exportName));
          }
          $("records-title").textContent = table.exportName;
          $("live-title").textContent = "Changes to " + table.exportName;
          if (!$("query").value || !$("query").dataset.touched) $("query").value = table.exportName + "/?limit(10)";
          closeEditor();
          loadRecords();
          if (!$("view-live").hidden) startLive();
        }

        async function loadRecords() {
          const table = state.table; if (!table) return;
          const range = state.start + "," + (state.start + state.page);
          const response = await call("GET", rest(table) + "?sort(+" + table.key + ")&limit(" + range + ")");
          if (!response.ok) { say("records-status", await problem(response), "bad"); return; }
          const rows = await response.json();
          drawGrid($("records"), rows, table, true);
          $("records-range").textContent = rows.length ? "records " + (state.start + 1) + "–" + (state.start + rows.length) : "no records here";
          $("prev").disabled = state.start === 0; $("next").disabled = rows.length < state.page;
        }

        function drawGrid(target, rows, table, editable) {
          const columns = [];
          for (const name of table ? table.attributes : []) if (rows.some((r) => name in r)) columns.push(name);
          for (const row of rows) for (const name of Object.keys(row)) if (!columns.includes(name)) columns.push(name);
          const head = element("tr", {}, columns.map((c) => element("th", { scope: "col", text: c })));
          const body = rows.map((row) => {
            const tr = element("tr", editable ? { class: "row", tabindex: "0", "data-key": text(row[table.key]) } : {},
              columns.map((c) => element("td", { text: text(row[c]), title: text(row[c]) })));
            if (editable) {
              tr.addEventListener("click", () => openEditor(row));
              tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openEditor(row); } });
            }
            return tr;
          });
          target.replaceChildren(rows.length ? element("table", { class: "grid" }, [element("thead", {}, [head]), element("tbody", {}, body)])
            : element("p", { class: "muted", text: "No records." }));
        }

        function openEditor(row) {
          const table = state.table;
          $("editor").hidden = false;
          const key = row ? text(row[table.key]) : "";
          $("editor-title").textContent = row ? "Record " + key : "New record";
          $("record-id").value = key; $("record-id").readOnly = !!row;
          const shown = Object.assign({}, row || {}); delete shown[table.key];
          $("record-json").value = JSON.stringify(shown, null, 2);
          $("delete").hidden = !row;
          (row ? $("record-json") : $("record-id")).focus();
        }
        function closeEditor() { $("editor").hidden = true; }

        $("new").addEventListener("click", () => openEditor(null));
        $("close").addEventListener("click", closeEditor);
        $("prev").addEventListener("click", () => { state.start = Math.max(0, state.start - state.page); loadRecords(); });
        $("next").addEventListener("click", () => { state.start += state.page; loadRecords(); });
        $("save").addEventListener("click", async () => {
          const table = state.table, key = $("record-id").value.trim();
          if (!key) { say("records-status", "give the record a key", "bad"); $("record-id").focus(); return; }
          let body;
          try { body = JSON.parse($("record-json").value || "{}"); } catch (e) { say("records-status", "not JSON: " + e.message, "bad"); return; }
          // The key is the URL's (of whatever type the table's key is); a different one in the body is refused.
          delete body[table.key];
          // A new record must not replace one that has its key.
          const creating = !$("record-id").readOnly;
          const response = await call("PUT", rest(table) + encodeURIComponent(key), body, creating ? { "If-None-Match": "*" } : {});
          if (!response.ok) { say("records-status", await problem(response), "bad"); return; }
          say("records-status", "saved " + key, "good");
          // A new record counts one more (the table's count comes from /_status, which counts every table).
          if (creating) { table.records += 1; drawCount(table); }
          closeEditor(); await loadRecords();
        });
        $("delete").addEventListener("click", async () => {
          const table = state.table, key = $("record-id").value;
          if (!confirm("Delete " + key + "?")) return;
          const response = await call("DELETE", rest(table) + encodeURIComponent(key));
          if (!response.ok) { say("records-status", await problem(response), "bad"); return; }
          say("records-status", "deleted " + key, "good");
          table.records = Math.max(0, table.records - 1); drawCount(table);
          closeEditor(); await loadRecords();
        });
        function drawCount(table) {
          const count = document.querySelector('nav button.table[data-table="' + CSS.escape(table.exportName) + '"] .count');
          if (count) count.textContent = String(table.records);
        }

        $("query").addEventListener("input", () => { $("query").dataset.touched = "1"; });
        $("query-form").addEventListener("submit", async (event) => {
          event.preventDefault();
          let target = $("query").value.trim().replace(/^[\/\\]+/, "");
          if (!target) return;
          const started = performance.now();
          let response;
          try { response = await call("GET", "/" + target); } catch (error) { say("query-plan", error.message, "bad"); return; }
          const elapsed = performance.now() - started;
          if (!response.ok) { say("query-plan", await problem(response), "bad"); $("query-result").replaceChildren(); return; }
          const timing = response.headers.get("Server-Timing") || "";
          const plan = (timing.match(/desc="([^"]*)"/) || [])[1];
          const duration = (timing.match(/dur=([\d.]+)/) || [])[1];
          const body = await response.json();
          const rows = Array.isArray(body) ? body : [body];
          const name = target.split(/[/?]/)[0];
          const table = state.tables.find((t) => t.exportName === name);
          say("query-plan", rows.length + " record" + (rows.length === 1 ? "" : "s") + (plan ? " · plan " + plan : "")
            + (duration ? " · " + duration + " ms in the server" : "") + " · " + elapsed.toFixed(1) + " ms here"
            + (response.headers.get("Warning") ? " · " + response.headers.get("Warning") : ""), "good");
          drawGrid($("query-result"), rows, table, false);
        });

        function stopLive() { if (state.live) { state.live.close(); state.live = null; } }
        function startLive() {
          stopLive();
          const table = state.table; if (!table) return;
          $("events").replaceChildren();
          const url = rest(table) + (state.token ? "?access_token=" + encodeURIComponent(state.token) : "");
          const source = new EventSource(url);
          state.live = source;
          source.onopen = () => { $("live-status").textContent = "listening"; };
          source.onerror = () => { $("live-status").textContent = "reconnecting…"; };
          const show = (kind) => (event) => {
            if (state.paused) return;
            let detail = event.data;
            try { const data = JSON.parse(event.data); detail = JSON.stringify(data); } catch {}
            const item = element("li", { text: new Date().toLocaleTimeString() + "  " + kind + "  " + detail });
            $("events").prepend(item);
            while ($("events").children.length > 200) $("events").lastChild.remove();
          };
          for (const kind of ["put", "patch", "delete", "message"]) source.addEventListener(kind, show(kind));
          source.addEventListener("subscribed", () => { $("live-status").textContent = "listening"; });
          source.addEventListener("reload", () => { $("live-status").textContent = "some changes were missed; reloading"; loadRecords(); });
        }
        $("live-toggle").addEventListener("click", () => {
          state.paused = !state.paused; $("live-toggle").textContent = state.paused ? "Resume" : "Pause";
        });

        async function loadJobs() {
          const schedules = await call("GET", "/_schedules");
          const jobs = await call("GET", "/_jobs?limit=50");
          const s = schedules.ok ? await schedules.json() : null;
          const j = jobs.ok ? await jobs.json() : null;
          const scheduleRows = s ? (s.schedules || s) : [];
          drawGrid($("schedules"), Array.isArray(scheduleRows) ? scheduleRows : [], null, false);
          const jobRows = j ? j.jobs : [];
          drawGrid($("jobs"), jobRows, null, false);
          if (j) $("jobs").prepend(element("p", { class: "muted", text: "counts: " + JSON.stringify(j.counts) }));
        }
        $("jobs-refresh").addEventListener("click", loadJobs);

        async function loadCluster() {
          const response = await call("GET", "/_cluster");
          $("cluster").textContent = response.ok ? JSON.stringify(await response.json(), null, 2) : await problem(response);
        }
        $("cluster-refresh").addEventListener("click", loadCluster);

        const charts = [
          { id: "requests", title: "Requests/s", rate: true, sum: ["microlith_http_requests_total", "microlith_http_cached_answers_total"] },
          { id: "writes", title: "Writes/s", rate: true, sum: ["microlith_store_writes_total"] },
          { id: "commits", title: "Commits/s", rate: true, sum: ["microlith_store_commits_total"] },
          { id: "connections", title: "Open connections", sum: ["microlith_connections_open"] },
          { id: "cache", title: "Records cached", sum: ["microlith_record_cache_entries"] },
          { id: "subscriptions", title: "Subscriptions", sum: ["microlith_subscriptions"] },
        ];
        function parseMetrics(body) {
          const totals = {};
          for (const line of body.split("\n")) {
            if (!line || line.startsWith("#")) continue;
            const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
            if (!match) continue;
            totals[match[1]] = (totals[match[1]] || 0) + Number(match[3]);
          }
          return totals;
        }
        async function sampleMetrics() {
          const response = await call("GET", "/metrics");
          if (!response.ok) { $("charts").replaceChildren(element("p", { class: "muted", text: await problem(response) })); return; }
          const totals = parseMetrics(await response.text());
          const now = performance.now() / 1000;
          for (const chart of charts) {
            const value = chart.sum.reduce((a, name) => a + (totals[name] || 0), 0);
            const series = state.samples[chart.id] || (state.samples[chart.id] = { points: [], last: null });
            let point = value;
            if (chart.rate) {
              point = series.last ? (value - series.last.value) / Math.max(0.001, now - series.last.time) : null;
              series.last = { value, time: now };
            }
            if (point !== null) { series.points.push(point); if (series.points.length > 60) series.points.shift(); }
          }
          drawCharts();
        }
        function drawCharts() {
          const root = $("charts"); root.replaceChildren();
          for (const chart of charts) {
            const points = (state.samples[chart.id] || { points: [] }).points;
            const last = points.length ? points[points.length - 1] : 0;
            const max = Math.max(1, ...points);
            const path = points.map((p, i) => (i ? "L" : "M") + (i * (240 / 59)).toFixed(1) + "," + (58 - (p / max) * 56).toFixed(1)).join(" ");
            const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
            svg.setAttribute("viewBox", "0 0 240 60"); svg.setAttribute("width", "100%"); svg.setAttribute("height", "60");
            svg.setAttribute("role", "img"); svg.setAttribute("aria-label", chart.title + " over the last two minutes");
            const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
            line.setAttribute("d", path || "M0,58 L240,58"); line.setAttribute("fill", "none"); line.setAttribute("stroke", "#0b5cad");
            line.setAttribute("stroke-width", "1.5"); svg.append(line);
            root.append(element("div", { class: "chart", "data-chart": chart.id },
              [element("div", { class: "muted", text: chart.title }),
                element("div", { class: "value", text: Math.round(last).toLocaleString() }), svg]));
          }
        }

        const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
        function selectTab(tab) {
          for (const t of tabs) {
            const selected = t === tab;
            t.setAttribute("aria-selected", String(selected)); t.tabIndex = selected ? 0 : -1;
            $(t.getAttribute("aria-controls")).hidden = !selected;
          }
          tab.focus();
          clearInterval(state.timer); state.timer = null;
          if (tab.id === "tab-live") startLive(); else stopLive();
          if (tab.id === "tab-jobs") loadJobs();
          if (tab.id === "tab-cluster") loadCluster();
          if (tab.id === "tab-metrics") { sampleMetrics(); state.timer = setInterval(sampleMetrics, 2000); }
          if (tab.id === "tab-records") loadRecords();
        }
        for (const tab of tabs) {
          tab.addEventListener("click", () => selectTab(tab));
          tab.addEventListener("keydown", (event) => {
            const i = tabs.indexOf(tab);
            if (event.key === "ArrowRight") selectTab(tabs[(i + 1) % tabs.length]);
            if (event.key === "ArrowLeft") selectTab(tabs[(i + tabs.length - 1) % tabs.length]);
          });
        }

        start().catch((error) => { say("signin-status", error.message, "bad"); });
        </script>
        </body>
        </html>
        """#
}
