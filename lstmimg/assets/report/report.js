// The lstmimg report page: built from window.LSTMIMG_REPORT (data.js) with DOM calls and textContent
// only, so a file or class name is always text, never markup. No request leaves the page.
(function () {
  "use strict";
  const R = window.LSTMIMG_REPORT;
  const $ = (id) => document.getElementById(id);
  if (!R) {
    $("loading").textContent = "data.js is missing or unreadable: keep the report folder whole.";
    return;
  }
  const PAGE = 120; // cards added per "Show more"
  const C = R.columns.reduce((o, name, i) => ((o[name] = i), o), {});
  const classes = R.classes;
  const S = R.summary;
  const samples = R.samples.map((row, i) => ({
    i: i, path: row[C.path], true: row[C.true], pred: row[C.pred], prob: row[C.prob], probs: row[C.probs], thumb: row[C.thumb],
  }));
  const fmt = (x, digits) => (x === null || x === undefined ? "-" : Number(x).toFixed(digits === undefined ? 4 : digits));
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const baseName = (p) => p.split(/[\\/]/).pop();

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "data") Object.entries(v).forEach(([dk, dv]) => (node.dataset[dk] = dv));
      else node.setAttribute(k, v);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // [class, prob] pairs of a sample: from every class's probability, or the top ones only (many classes)
  function probsOf(s) {
    return Array.isArray(s.probs[0]) ? s.probs : s.probs.map((p, k) => [k, p]);
  }

  // ---- summary figures -------------------------------------------------------------------------
  function figure(id, label, value) {
    const box = el("div", { class: "figure" });
    box.appendChild(el("b", { id: id }, value));
    box.appendChild(el("span", {}, label));
    $("summary").appendChild(box);
  }
  figure("samples", R.kind + "s classified", S.samples);
  if (R.labelled && S.samples) {
    figure("accuracy", "accuracy", fmt(S.accuracy));
    figure("macro-f1", "macro-F1", fmt(S.macro_f1));
    figure("ece", "expected calibration error", fmt(S.ece));
    figure("wrong", "wrong", samples.filter((s) => s.true !== s.pred).length);
  }
  figure("skipped-count", "not classified", S.skipped);

  // ---- per-class table (labelled) or counts per predicted label ---------------------------------
  function classTable() {
    const table = $("classes");
    const labelled = R.labelled && S.per_class;
    const cols = labelled
      ? [["class", "class"], ["precision", "precision"], ["recall", "recall"], ["f1", "F1"], ["support", "support"], ["predicted", "predicted"]]
      : [["class", "label"], ["predicted", "predicted"], ["share", "share"]];
    const rows = classes.map((name, k) => {
      const row = labelled ? Object.assign({}, S.per_class[k]) : { class: name };
      row.predicted = S.predicted_counts[k];
      row.share = S.samples ? S.predicted_counts[k] / S.samples : 0;
      row.k = k;
      return row;
    });
    let key = labelled ? "class" : "predicted", up = !labelled ? false : true;
    function draw() {
      table.textContent = "";
      const head = el("tr");
      cols.forEach(([k, label]) => {
        const th = el("th", { scope: "col", tabindex: "0", data: { key: k } }, label);
        if (k === key) th.className = "sorted" + (up ? " up" : "");
        th.addEventListener("click", () => { up = key === k ? !up : k === "class"; key = k; draw(); });
        head.appendChild(th);
      });
      table.appendChild(head);
      const sorted = rows.slice().sort((a, b) => {
        const x = a[key], y = b[key];
        const c = typeof x === "string" ? x.localeCompare(y) : x - y;
        return up ? c : -c;
      });
      sorted.forEach((r) => {
        const tr = el("tr", { data: { k: r.k } });
        cols.forEach(([k]) => {
          let v = r[k];
          if (k === "share") v = pct(v);
          else if (typeof v === "number" && !Number.isInteger(v)) v = fmt(v);
          const td = el("td", {}, v);
          if (k === "class") {
            td.classList.add("link");
            td.addEventListener("click", () => show(labelled ? { true: r.k } : { pred: r.k }));
          }
          tr.appendChild(td);
        });
        table.appendChild(tr);
      });
    }
    draw();
    $("classes-section").hidden = false;
    if (!labelled) $("classes-section").querySelector("h2").textContent = "Per predicted label";
  }

  // ---- confusion matrix --------------------------------------------------------------------------
  function confusion() {
    const cm = S.confusion_matrix;
    const table = $("confusion");
    const max = Math.max(1, ...cm.map((row) => Math.max(...row)));
    const head = el("tr");
    head.appendChild(el("th", {}, "true \\ predicted"));
    classes.forEach((name) => head.appendChild(el("th", { class: "col", scope: "col", title: name }, name)));
    table.appendChild(head);
    cm.forEach((row, t) => {
      const tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, classes[t]));
      row.forEach((n, p) => {
        const td = el("td", { class: "cell" + (n ? "" : " empty"), tabindex: "0", title: classes[t] + " predicted as " + classes[p] + ": " + n, data: { true: t, pred: p, count: n } }, n);
        const a = n / max;
        td.style.background = t === p ? "rgba(58,160,58," + (0.1 + 0.8 * a) + ")" : n ? "rgba(210,50,50," + (0.15 + 0.8 * a) + ")" : "";
        td.addEventListener("click", () => show({ true: t, pred: p }));
        td.addEventListener("keydown", (e) => { if (e.key === "Enter") show({ true: t, pred: p }); });
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    $("confusion-section").hidden = false;
  }

  // ---- calibration: reliability diagram ----------------------------------------------------------
  function calibration() {
    const NS = "http://www.w3.org/2000/svg";
    const W = 360, H = 300, L = 44, B = 36, size = W - L - 10;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("id", "reliability");
    const add = (tag, attrs, text) => {
      const n = document.createElementNS(NS, tag);
      Object.entries(attrs).forEach(([k, v]) => n.setAttribute(k, v));
      if (text !== undefined) n.textContent = text;
      svg.appendChild(n);
      return n;
    };
    const x = (v) => L + v * size, y = (v) => H - B - v * (H - B - 10);
    add("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: "#999", "stroke-dasharray": "4 3" });
    S.reliability.forEach((b) => {
      if (!b.count) return;
      const r = add("rect", { x: x(b.lo) + 1, y: y(b.accuracy), width: x(b.hi) - x(b.lo) - 2, height: y(0) - y(b.accuracy), fill: "#4a7bd0", "fill-opacity": "0.75" });
      const t = document.createElementNS(NS, "title");
      t.textContent = "confidence " + b.lo + "-" + b.hi + ": " + b.count + " samples, accuracy " + fmt(b.accuracy, 3) + ", mean confidence " + fmt(b.confidence, 3);
      r.appendChild(t);
    });
    add("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(0), stroke: "#333" });
    add("line", { x1: x(0), y1: y(0), x2: x(0), y2: y(1), stroke: "#333" });
    [0, 0.5, 1].forEach((v) => {
      add("text", { x: x(v), y: H - B + 14, "text-anchor": "middle", "font-size": "11" }, v);
      add("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": "11" }, v);
    });
    add("text", { x: L + size / 2, y: H - 4, "text-anchor": "middle", "font-size": "12" }, "confidence (top probability)");
    add("text", { x: 12, y: y(0.5), "text-anchor": "middle", "font-size": "12", transform: "rotate(-90 12 " + y(0.5) + ")" }, "accuracy");
    $("calibration").appendChild(svg);
    $("calibration").appendChild(el("p", {}, "Expected calibration error " + fmt(S.ece) + " (" + S.reliability.length + " bins): the gap between confidence and accuracy, weighted by samples."));
    $("calibration-section").hidden = false;
  }

  // ---- skipped inputs ----------------------------------------------------------------------------
  function skipped() {
    if (!R.skipped.length) return;
    R.skipped.forEach(([path, reason]) => $("skipped").appendChild(el("li", {}, reason.indexOf(path) >= 0 ? reason : path + ": " + reason)));
    $("skipped-section").hidden = false;
  }

  // ---- gallery, filters and sorting ----------------------------------------------------------------
  const SORTS = R.labelled
    ? [["wrong-first", "most confidently wrong first"], ["conf-desc", "most confident first"], ["conf-asc", "least confident first"], ["path", "file name"]]
    : [["conf-asc", "least confident first"], ["conf-desc", "most confident first"], ["path", "file name"]];
  function options(select, items) {
    items.forEach(([v, label]) => select.appendChild(el("option", { value: v }, label)));
  }
  options($("filter-true"), [["", "any"], ...classes.map((c, k) => [String(k), c])]);
  options($("filter-pred"), [["", "any"], ...classes.map((c, k) => [String(k), c])]);
  options($("sort"), SORTS);
  if (!R.labelled) document.querySelectorAll(".labelled-only").forEach((n) => (n.hidden = true));

  let matching = [], shown = 0;
  function readFilters() {
    const num = (id, d) => { const v = parseFloat($(id).value); return Number.isFinite(v) ? v : d; };
    return { true: $("filter-true").value, pred: $("filter-pred").value, outcome: $("filter-outcome").value, lo: num("prob-min", 0), hi: num("prob-max", 1), sort: $("sort").value };
  }
  function apply() {
    const f = readFilters();
    matching = samples.filter((s) =>
      (f.true === "" || s.true === +f.true) && (f.pred === "" || s.pred === +f.pred) &&
      (f.outcome === "all" || !R.labelled || (f.outcome === "wrong") === (s.true !== s.pred)) && s.prob >= f.lo && s.prob <= f.hi);
    const by = {
      "wrong-first": (a, b) => (b.true !== b.pred) - (a.true !== a.pred) || ((a.true !== a.pred) ? b.prob - a.prob : a.prob - b.prob),
      "conf-desc": (a, b) => b.prob - a.prob,
      "conf-asc": (a, b) => a.prob - b.prob,
      path: (a, b) => a.path.localeCompare(b.path),
    }[f.sort];
    matching.sort((a, b) => by(a, b) || a.i - b.i);
    $("gallery").textContent = "";
    shown = 0;
    more();
  }
  function card(s) {
    const wrong = R.labelled && s.true !== s.pred;
    const box = el("div", { class: "card" + (R.labelled ? (wrong ? " wrong" : " right") : ""), tabindex: "0", data: { i: s.i, true: s.true === null ? "" : s.true, pred: s.pred } });
    if (s.thumb) box.appendChild(el("img", { src: s.thumb, alt: baseName(s.path), loading: "lazy", decoding: "async" }));
    box.appendChild(el("div", { class: "name", title: s.path }, baseName(s.path)));
    if (R.labelled) box.appendChild(el("div", { class: "line" }, "true: " + classes[s.true]));
    box.appendChild(el("div", { class: "line" }, "predicted: " + classes[s.pred] + " " + fmt(s.prob, 3)));
    const top = probsOf(s).slice().sort((a, b) => b[1] - a[1]).slice(1, 3).map(([k, p]) => classes[k] + " " + fmt(p, 2)).join(", ");
    if (top) box.appendChild(el("div", { class: "line" }, "then: " + top));
    box.addEventListener("click", () => detail(s));
    box.addEventListener("keydown", (e) => { if (e.key === "Enter") detail(s); });
    return box;
  }
  function more() {
    const frag = document.createDocumentFragment();
    matching.slice(shown, shown + PAGE).forEach((s) => frag.appendChild(card(s)));
    $("gallery").appendChild(frag);
    shown = Math.min(matching.length, shown + PAGE);
    $("count").textContent = "Showing " + shown + " of " + matching.length + " matching samples (" + samples.length + " in all)";
    $("count").dataset.matching = matching.length;
    $("count").dataset.shown = shown;
    $("more").hidden = shown >= matching.length;
  }
  // show the samples of a class, a confusion cell or a label: the other filters are reset
  function show(f) {
    $("filter-true").value = f.true === undefined ? "" : String(f.true);
    $("filter-pred").value = f.pred === undefined ? "" : String(f.pred);
    $("filter-outcome").value = "all";
    $("prob-min").value = "0";
    $("prob-max").value = "1";
    apply();
    $("gallery-section").scrollIntoView();
  }
  ["filter-true", "filter-pred", "filter-outcome", "sort"].forEach((id) => $(id).addEventListener("change", apply));
  ["prob-min", "prob-max"].forEach((id) => $(id).addEventListener("input", apply));
  $("reset").addEventListener("click", () => show({}));
  $("more").addEventListener("click", more);

  // ---- a sample's detail -------------------------------------------------------------------------------
  function detail(s) {
    const body = $("detail-body");
    body.textContent = "";
    body.appendChild(el("h3", {}, baseName(s.path)));
    body.appendChild(el("p", { class: "hint" }, s.path));
    if (s.thumb) body.appendChild(el("img", { class: "big", src: s.thumb, alt: baseName(s.path) }));
    const extra = R.details[String(s.i)] || {};
    if (R.labelled) body.appendChild(el("p", {}, "true: " + classes[s.true] + (s.true === s.pred ? " (right)" : " (wrong)")));
    body.appendChild(el("p", {}, "predicted: " + classes[s.pred] + " with probability " + fmt(s.prob)));
    const list = el("div", { class: "probs" });
    probsOf(s).slice().sort((a, b) => b[1] - a[1]).forEach(([k, p]) => {
      const bar = el("div", { class: "bar" + (k === s.true ? " true" : "") });
      bar.appendChild(el("span", { class: "label", title: classes[k] }, classes[k]));
      const fill = el("span", { class: "fill" });
      fill.style.width = Math.max(1, Math.round(200 * p)) + "px";
      bar.appendChild(fill);
      bar.appendChild(el("span", {}, fmt(p)));
      list.appendChild(bar);
    });
    body.appendChild(el("h4", {}, Array.isArray(s.probs[0]) ? "Top classes" : "Every class"));
    body.appendChild(list);
    if (extra.picture) {
      body.appendChild(el("h4", {}, "Where the model looked (occlusion: how much the predicted class's probability drops when each patch is hidden)"));
      body.appendChild(el("img", { class: "explain", src: extra.picture, alt: "explanation of " + baseName(s.path) }));
    }
    $("detail").hidden = false;
    $("close-detail").focus();
  }
  $("close-detail").addEventListener("click", () => ($("detail").hidden = true));
  $("detail").addEventListener("click", (e) => { if (e.target === $("detail")) $("detail").hidden = true; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("detail").hidden = true; });

  classTable();
  if (R.labelled && S.samples) {
    confusion();
    calibration();
  }
  skipped();
  apply();
  $("loading").hidden = true;
  document.body.dataset.ready = "1";
})();
