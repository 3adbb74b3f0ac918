// observra report: draws the runs table, a trace's waterfall, the selected
// span and the totals from the JSON in #report-data. Every text from the
// data goes through textContent, never through HTML. No request is made.
(function () {
  "use strict";
  var started = performance.now();
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE_ROWS = 100, WATERFALL_ROWS = 1000;
  var CONTENT_KEYS = ["gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.tool.definitions"];
  var KIND_LETTER = { client: "C", server: "S", internal: "I", producer: "P", consumer: "U" };
  var state = { agent: "", model: "", status: "", page: 0, trace: null, span: null, drawUpTo: function () {} };

  // ---- helpers ----------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, props, children) {
    var e = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === undefined || v === null) return;
        if (k === "text") e.textContent = v;
        else if (k === "class") e.className = v;
        else if (k === "style") e.setAttribute("style", v);
        else if (k.indexOf("data-") === 0 || k === "title" || k === "tabindex" || k === "role") e.setAttribute(k, v);
        else e[k] = v;
      });
    }
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function num(n) { return (n || 0).toLocaleString("en-US", { maximumFractionDigits: 0 }); }
  function cost(usd) {
    usd = usd || 0;
    return "$" + (usd === 0 ? "0" : usd.toFixed(usd >= 1 ? 2 : usd >= 1e-4 ? 6 : 9));
  }
  function ms(v) {
    if (v === null || v === undefined) return "";
    if (v >= 60000) return (v / 60000).toFixed(1) + " min";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    if (v >= 1) return v.toFixed(1) + " ms";
    return (v * 1000).toFixed(0) + " µs";
  }
  function when(msSinceEpoch) { return new Date(msSinceEpoch).toISOString().replace("T", " ").slice(0, 23); }
  function op(attrs) {
    var o = attrs && attrs["gen_ai.operation.name"];
    if (o === "chat" || o === "text_completion" || o === "generate_content" || o === "embeddings") return "llm";
    if (o === "execute_tool") return "tool";
    if (o === "invoke_agent" || o === "create_agent") return "agent";
    if (o === "invoke_workflow") return "workflow";
    return "other";
  }
  function show(value) {
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }
  function pretty(value) {
    if (typeof value === "string") {
      try { return JSON.stringify(JSON.parse(value), null, 2); } catch (e) { return value; }
    }
    return JSON.stringify(value, null, 2);
  }
  // A table of an object's keys and values, keys sorted unless `asGiven`.
  function kv(obj, asGiven) {
    var keys = Object.keys(obj || {});
    if (!asGiven) keys.sort();
    var rows = keys.map(function (k) {
      return el("tr", null, [el("td", { class: "mono", text: k }), el("td", { class: "mono", text: show(obj[k]) })]);
    });
    return el("table", null, [el("tbody", null, rows)]);
  }

  // ---- header, warnings, cards ------------------------------------------
  function header() {
    var runs = data.runs, lim = data.limits, sel = data.selection;
    var about = "From " + data.sources.join(", ") + " · made " + data.generated.replace("T", " ").slice(0, 19) + " UTC";
    if (sel.since) about += " · since " + sel.since;
    if (sel.until) about += " · until " + sel.until;
    if (sel.trace) about += " · trace " + sel.trace;
    $("about").textContent = about;
    var capped = [];
    if (lim.runs_left_out > 0) {
      capped.push(num(lim.runs_left_out) + " older trace(s) are not listed (at most " + num(lim.max_runs) +
        " rows; the totals include them)");
    }
    if (lim.spans_left_out > 0) {
      capped.push(num(lim.spans_left_out) + " span(s) of listed traces are not embedded (at most " + num(lim.max_spans) +
        " spans in full; rows marked · show figures only). See one trace in full with observra report --trace <id>, " +
        "or raise --max-spans.");
    }
    if (capped.length) { $("notice").textContent = capped.join(". ") + "."; $("notice").hidden = false; }
    if (data.warnings.length) {
      $("warnings").hidden = false;
      $("warnings-title").textContent = data.warnings.length + " problem(s) with the input (skipped or read as noted)";
      data.warnings.forEach(function (w) { $("warnings-list").appendChild(el("li", { text: w })); });
      if (runs.length === 0) $("warnings").querySelector("details").open = true;
    }
  }

  function cards() {
    var t = data.totals, runs = data.runs;
    var tokensIn = 0, tokensOut = 0, calls = 0, budget = 0, evals = 0;
    Object.keys(t.models || {}).forEach(function (m) {
      tokensIn += t.models[m].input_tokens; tokensOut += t.models[m].output_tokens; calls += t.models[m].calls;
    });
    runs.forEach(function (r) { budget += r.budget_crossings; evals += r.evaluations; });
    var list = [
      ["Traces", num(data.limits.traces), null],
      ["Spans", num(t.spans), null],
      ["Model calls", num(calls), null],
      ["Tokens in / out", num(tokensIn) + " / " + num(tokensOut), null],
      ["Cost", cost(t.cost_usd), { "data-cost-usd": String(t.cost_usd), id: "total-cost" }],
      ["Errors", num(t.errors), t.errors > 0 ? "bad" : null],
      ["Budget crossings", num(budget), budget > 0 ? "bad" : null],
      ["Evaluations", num(evals), null]
    ];
    list.forEach(function (c) {
      var props = { class: "card" + (typeof c[2] === "string" ? " " + c[2] : "") };
      var value = el("div", { class: "value", text: c[1] });
      if (c[2] && typeof c[2] === "object") Object.keys(c[2]).forEach(function (k) { value.setAttribute(k, c[2][k]); });
      $("cards").appendChild(el("div", props, [el("div", { class: "label", text: c[0] }), value]));
    });
  }

  // ---- runs -------------------------------------------------------------
  function filters() {
    var agents = {}, models = {};
    data.runs.forEach(function (r) {
      r.agents.forEach(function (a) { agents[a] = 1; });
      r.models.forEach(function (m) { models[m] = 1; });
    });
    [["filter-agent", agents, "agent"], ["filter-model", models, "model"]].forEach(function (f) {
      Object.keys(f[1]).sort().forEach(function (v) { $(f[0]).appendChild(el("option", { value: v, text: v })); });
      $(f[0]).addEventListener("change", function (e) { state[f[2]] = e.target.value; state.page = 0; runs(); });
    });
    $("filter-status").addEventListener("change", function (e) { state.status = e.target.value; state.page = 0; runs(); });
  }

  function visibleRuns() {
    return data.runs.filter(function (r) {
      return (!state.agent || r.agents.indexOf(state.agent) >= 0) &&
        (!state.model || r.models.indexOf(state.model) >= 0) &&
        (!state.status || r.status === state.status);
    });
  }

  function runRow(r) {
    var tr = el("tr", {
      class: "run" + (r.trace_id === state.trace ? " selected" : "") + (r.detail === "none" ? " no-detail" : ""),
      "data-trace-id": r.trace_id, "data-status": r.status, "data-cost-usd": String(r.cost_usd), tabindex: "0",
      title: r.detail === "none" ? "figures only: not embedded in full (see the note at the top)" : "trace " + r.trace_id
    }, [
      el("td", { class: "mono", text: when(r.start_ms) }),
      el("td", { class: "wrap", text: r.root }),
      el("td", { class: "wrap", text: r.agents.join(", ") }),
      el("td", { class: "wrap", text: r.models.join(", ") }),
      el("td", { class: "num", text: ms(r.duration_ms) }),
      el("td", null, [el("span", { class: "status status-" + r.status, text: r.errors ? "error (" + r.errors + ")" : "ok" })]),
      el("td", { class: "num", text: num(r.spans) }),
      el("td", { class: "num", text: num(r.llm_calls) }),
      el("td", { class: "num", text: num(r.input_tokens) + " / " + num(r.output_tokens) }),
      el("td", { class: "num", text: cost(r.cost_usd) }),
      el("td", { class: "num", text: num(r.budget_crossings) }),
      el("td", { class: "num", text: num(r.evaluations) })
    ]);
    var open = function () { selectTrace(r.trace_id, null); };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", function (e) { if (e.key === "Enter") open(); });
    return tr;
  }

  function runs() {
    var list = visibleRuns();
    var pages = Math.max(1, Math.ceil(list.length / PAGE_ROWS));
    state.page = Math.min(state.page, pages - 1);
    var from = state.page * PAGE_ROWS, to = Math.min(list.length, from + PAGE_ROWS);
    var body = clear($("runs-body"));
    list.slice(from, to).forEach(function (r) { body.appendChild(runRow(r)); });
    var plural = data.runs.length === 1 ? " run" : " runs";
    $("runs-count").textContent = list.length === data.runs.length ? num(list.length) + plural :
      num(list.length) + " of " + num(data.runs.length) + plural;
    var pager = clear($("pager"));
    if (pages > 1) {
      var go = function (p) { return function () { state.page = p; runs(); }; };
      pager.appendChild(el("button", { text: "‹ newer", disabled: state.page === 0, onclick: go(state.page - 1) }));
      pager.appendChild(el("span", { text: "rows " + num(from + 1) + "–" + num(to) + " of " + num(list.length) }));
      pager.appendChild(el("button", { text: "older ›", disabled: state.page >= pages - 1, onclick: go(state.page + 1) }));
    }
  }

  // ---- one trace --------------------------------------------------------
  function runOf(id) {
    for (var i = 0; i < data.runs.length; i++) if (data.runs[i].trace_id === id) return data.runs[i];
    return null;
  }

  function selectTrace(id, spanId) {
    state.trace = id;
    Array.prototype.forEach.call(document.querySelectorAll("#runs-body tr"), function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-trace-id") === id);
    });
    var run = runOf(id), trace = data.traces[id];
    $("trace-title").textContent = run ? "Trace: " + run.root : "Trace";
    var about = run ? "trace " + id + " · " + (run.service || "no service.name") + " · started " + when(run.start_ms) +
      " · " + ms(run.duration_ms) + " · " + num(run.spans) + " spans" : "";
    if (run && run.detail === "partial") about += " · only the first " + num(trace.spans.length) + " spans are embedded";
    $("trace-about").textContent = about;
    var wf = clear($("waterfall"));
    clear($("detail")).appendChild(el("p", { class: "hint", text: "Choose a span to see its attributes, events and captured messages." }));
    if (!trace) {
      if (run) wf.appendChild(el("p", { class: "notice", text: "This trace is listed with its figures only. Run observra report --trace " + id + " to see its spans." }));
      return;
    }
    waterfall(wf, trace, run);
    var first = spanId || (trace.spans[0] && trace.spans[0].id);
    if (first) selectSpan(first);
    if (history.replaceState) history.replaceState(null, "", "#trace=" + id + (spanId ? "&span=" + spanId : ""));
  }

  // The waterfall: an axis, then a row per span in tree order, drawn
  // WATERFALL_ROWS at a time (a button draws more) so a huge trace opens fast.
  function waterfall(wf, trace, run) {
    var total = Math.max(run.duration_ms * 1000, 1e-3);
    var ticks = el("div", { class: "ticks" });
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      ticks.appendChild(el("span", { class: "tick", style: "left:" + (f * 100) + "%", text: ms(total * f / 1000) }));
    });
    wf.appendChild(el("div", { class: "axis" }, [el("div", { text: "span" }), ticks, el("div", { class: "span-dur", text: "duration" })]));
    var rows = el("div", { class: "rows" }), more = el("button", { class: "more" }), shown = 0;
    var grow = function (upTo) {
      var end = Math.min(trace.spans.length, upTo), batch = document.createDocumentFragment();
      for (; shown < end; shown++) batch.appendChild(spanRow(trace.spans[shown], total));
      rows.appendChild(batch);
      var left = trace.spans.length - shown;
      more.hidden = left === 0;
      more.textContent = "Draw " + num(Math.min(left, WATERFALL_ROWS)) + " more spans (" + num(left) + " not drawn yet)";
    };
    more.addEventListener("click", function () { grow(shown + WATERFALL_ROWS); });
    state.drawUpTo = function (index) { if (index >= shown) grow((Math.floor(index / WATERFALL_ROWS) + 1) * WATERFALL_ROWS); };
    wf.appendChild(rows);
    wf.appendChild(more);
    wf.appendChild(legend());
    grow(WATERFALL_ROWS);
  }

  function spanRow(s, total) {
    var left = Math.max(0, Math.min(100, s.start_us / total * 100));
    var width = Math.max(0, Math.min(100 - left, s.duration_us / total * 100));
    var kind = s.kind || "internal";
    var row = el("div", {
      class: "span-row" + (s.status === "error" ? " error" : ""), role: "button", tabindex: "0",
      "data-span-id": s.id, "data-parent-id": s.parent || "", "data-depth": String(s.depth),
      "data-kind": kind, "data-status": s.status, title: s.name + (s.message ? " — " + s.message : "")
    }, [
      el("div", { class: "span-label", style: "padding-left:" + (4 + s.depth * 14) + "px" }, [
        el("span", { class: "kind kind-" + kind, title: kind, text: KIND_LETTER[kind] || "?" }),
        el("span", { class: "span-name", text: s.name })
      ]),
      el("div", { class: "span-track" }, [el("div", {
        class: "bar op-" + op(s.attributes) + " kind-" + kind + " status-" + s.status,
        style: "left:" + left.toFixed(3) + "%;width:" + width.toFixed(3) + "%"
      })]),
      el("div", { class: "span-dur", text: ms(s.duration_us / 1000) })
    ]);
    row.addEventListener("click", function () { selectSpan(s.id); });
    row.addEventListener("keydown", function (e) { if (e.key === "Enter") selectSpan(s.id); });
    return row;
  }

  function legend() {
    var items = [["llm", "model call"], ["tool", "tool"], ["agent", "agent"], ["workflow", "workflow"], ["other", "other"]];
    var l = el("div", { class: "legend" }, items.map(function (i) {
      return el("span", null, [el("i", { style: "background:var(--" + i[0] + ")" }), i[1]]);
    }));
    l.appendChild(el("span", null, [el("i", { style: "background:var(--error)" }), "error"]));
    l.appendChild(el("span", { text: "C client · S server · I internal · P producer · U consumer" }));
    return l;
  }

  function selectSpan(id) {
    var trace = data.traces[state.trace];
    if (!trace) return;
    var index = -1;
    for (var i = 0; i < trace.spans.length && index < 0; i++) if (trace.spans[i].id === id) index = i;
    if (index < 0) return;
    var s = trace.spans[index];
    state.drawUpTo(index);
    state.span = id;
    Array.prototype.forEach.call(document.querySelectorAll("#waterfall .span-row"), function (r) {
      r.classList.toggle("selected", r.getAttribute("data-span-id") === id);
    });
    detail(clear($("detail")), s, trace);
    if (history.replaceState) history.replaceState(null, "", "#trace=" + state.trace + "&span=" + id);
  }

  function detail(d, s, trace) {
    d.appendChild(el("h3", { text: s.name }));
    d.appendChild(kv({
      "span id": s.id, "parent span id": s.parent_span_id || "(root)", kind: s.kind,
      status: s.status + (s.message ? ": " + s.message : ""),
      start: "+" + ms(s.start_us / 1000) + " from the trace's start", duration: ms(s.duration_us / 1000)
    }, true));
    var content = CONTENT_KEYS.filter(function (k) { return s.attributes[k] !== undefined; });
    var attrs = {};
    Object.keys(s.attributes).forEach(function (k) { if (content.indexOf(k) < 0) attrs[k] = s.attributes[k]; });
    if (content.length) {
      d.appendChild(el("h4", { text: "Captured messages" }));
      content.forEach(function (k) {
        d.appendChild(el("div", { class: "mono", text: k }));
        d.appendChild(el("pre", { class: "content", text: pretty(s.attributes[k]) }));
      });
    }
    d.appendChild(el("h4", { text: "Attributes (" + Object.keys(attrs).length + ")" }));
    d.appendChild(kv(attrs));
    if (s.events.length) {
      d.appendChild(el("h4", { text: "Events (" + s.events.length + ")" }));
      s.events.forEach(function (e) {
        var at = e.at_us === null ? "" : " at +" + ms(e.at_us / 1000);
        d.appendChild(el("div", { class: "event" + (e.name === "exception" ? " exception" : "") }, [
          el("div", { class: "mono", text: e.name + at }), kv(e.attributes)
        ]));
      });
    }
    if (s.links && s.links.length) {
      d.appendChild(el("h4", { text: "Links" }));
      s.links.forEach(function (l) { d.appendChild(kv(l)); });
    }
    d.appendChild(el("h4", { text: "Resource" }));
    d.appendChild(kv(trace.resources[s.resource]));
  }

  // ---- totals -----------------------------------------------------------
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A horizontal bar chart: rows of [label, [value, colour]...], stacked.
  function chart(title, rows, format) {
    var box = el("div", { class: "chart" }, [el("h4", { text: title })]);
    if (!rows.length) { box.appendChild(el("p", { class: "hint", text: "none" })); return box; }
    var width = 360, labelW = 130, valueW = 80, rowH = 20;
    var max = Math.max.apply(null, rows.map(function (r) {
      return r[1].reduce(function (a, p) { return a + p[0]; }, 0);
    })) || 1;
    var g = svg("svg", { width: width, height: rows.length * rowH + 4, role: "img", "aria-label": title });
    rows.forEach(function (r, i) {
      var y = i * rowH + 2, x = labelW, sum = 0;
      g.appendChild(svg("text", { x: 0, y: y + 13 }, r[0].length > 20 ? r[0].slice(0, 19) + "…" : r[0]));
      r[1].forEach(function (p) {
        var w = p[0] / max * (width - labelW - valueW);
        g.appendChild(svg("rect", { x: x, y: y + 3, width: Math.max(w, p[0] > 0 ? 1 : 0), height: 12, fill: p[1], rx: 2 }));
        x += w; sum += p[0];
      });
      g.appendChild(svg("text", { x: x + 4, y: y + 13, class: "value" }, format(sum, r)));
    });
    box.appendChild(g);
    return box;
  }

  function table(title, head, rows) {
    var wrap = el("div", { class: "scroll" }, [el("h3", { text: title })]);
    wrap.appendChild(el("table", null, [
      el("thead", null, [el("tr", null, head.map(function (h, i) { return el("th", { class: i ? "num" : null, text: h }); }))]),
      el("tbody", null, rows.map(function (r) {
        return el("tr", null, r.map(function (c, i) { return el("td", { class: i ? "num" : "wrap", text: c }); }));
      }))
    ]));
    return wrap;
  }

  function totals() {
    var t = data.totals, css = getComputedStyle(document.documentElement);
    var colour = function (name) { return css.getPropertyValue("--" + name).trim(); };
    var models = t.models || {}, agents = t.agents || {}, tools = t.tools || {};
    var charts = $("charts");
    charts.appendChild(chart("Cost by model", Object.keys(models).map(function (m) {
      return [m, [[models[m].cost_usd, colour("llm")]]];
    }), function (v) { return cost(v); }));
    charts.appendChild(chart("Tokens by agent (in + out)", Object.keys(agents).map(function (a) {
      return [a, [[agents[a].input_tokens, colour("agent")], [agents[a].output_tokens, colour("llm")]]];
    }), function (v) { return num(v); }));
    charts.appendChild(chart("Tool calls (errors in red)", Object.keys(tools).map(function (n) {
      var g = tools[n];
      return [n, [[g.calls - g.errors, colour("tool")], [g.errors, colour("error")]]];
    }), function (v, r) { return num(v) + (r[1][1][0] ? " (" + num(r[1][1][0]) + " failed)" : ""); }));
    var box = $("totals");
    var lat = function (g) { return [ms(g.latency_ms.p50), ms(g.latency_ms.p95)]; };
    var first = function (g) {
      var f = g.time_to_first_chunk_ms;
      return f ? [ms(f.p50), ms(f.p95)] : ["", ""];
    };
    box.appendChild(table("Per model", ["model", "calls", "errors", "tokens in", "tokens out", "cost", "p50", "p95",
      "first chunk p50", "first chunk p95"], Object.keys(models).map(function (m) {
      var g = models[m];
      return [m, num(g.calls), num(g.errors), num(g.input_tokens), num(g.output_tokens), cost(g.cost_usd)]
        .concat(lat(g), first(g));
    })));
    box.appendChild(table("Per agent", ["agent", "runs", "errors", "tokens in", "tokens out", "cost", "p50", "p95"],
      Object.keys(agents).map(function (a) {
        var g = agents[a];
        return [a, num(g.calls), num(g.errors), num(g.input_tokens), num(g.output_tokens), cost(g.cost_usd)].concat(lat(g));
      })));
    box.appendChild(table("Per tool", ["tool", "calls", "errors", "p50", "p95"], Object.keys(tools).map(function (n) {
      var g = tools[n];
      return [n, num(g.calls), num(g.errors)].concat(lat(g));
    })));
    if ((t.evaluations || []).length) {
      box.appendChild(table("Evaluations", ["evaluation", "agent", "model", "count", "mean score", "labels"],
        t.evaluations.map(function (e) {
          var labels = Object.keys(e.labels || {}).map(function (k) { return k + "=" + e.labels[k]; }).join(" ");
          return [e.evaluation, e.agent, e.model, num(e.count), e.mean_score === null ? "" : e.mean_score.toFixed(3), labels];
        })));
    }
  }

  // ---- start ------------------------------------------------------------
  function fromHash() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (p) {
      var kv = p.split("=");
      if (kv.length === 2) out[kv[0]] = decodeURIComponent(kv[1]);
    });
    return out;
  }

  header();
  cards();
  filters();
  runs();
  totals();
  var wanted = fromHash();
  var firstShown = data.runs.filter(function (r) { return r.detail !== "none"; })[0];
  var start = wanted.trace && runOf(wanted.trace) ? wanted.trace : (firstShown || data.runs[0] || {}).trace_id;
  if (start) selectTrace(start, wanted.span || null);
  // How long the page took: its script, and from the start of loading to here.
  document.body.setAttribute("data-render-ms", (performance.now() - started).toFixed(1));
  document.body.setAttribute("data-ready-ms", performance.now().toFixed(1));
  document.body.setAttribute("data-ready", "true");
})();
