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
  figure("samples", R.samples_label || R.kind + "s classified", S.samples);
  if (R.labelled && S.samples && !R.check) {  // a check page's samples are its likely label errors: no accuracy to show
    figure("accuracy", "accuracy", fmt(S.accuracy));
    figure("macro-f1", "macro-F1", fmt(S.macro_f1));
    figure("balanced-accuracy", "balanced accuracy", fmt(S.balanced_accuracy));
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
          else if (k === "precision" || k === "recall" || k === "f1") v = fmt(v);
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

  // an SVG of W x H units, and a function that adds an element to it (text as textContent)
  const NS = "http://www.w3.org/2000/svg";
  function drawing(W, H) {
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(NS, tag);
      Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
      if (text !== undefined) node.textContent = text;
      svg.appendChild(node);
      return node;
    };
    return [svg, add];
  }

  // ---- calibration: reliability diagram ----------------------------------------------------------
  function calibration() {
    const W = 360, H = 300, L = 44, B = 36, size = W - L - 10;
    const [svg, add] = drawing(W, H);
    svg.setAttribute("id", "reliability");
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
  // ---- duplicates and leaks (lstmimg check) ---------------------------------------------------------
  function groups() {
    if (!R.groups) return;
    const leaks = R.groups.filter((g) => g.leak).length;
    $("groups-count").textContent = R.groups_total + (R.groups_total === 1 ? " group" : " groups") + (R.groups.length < R.groups_total ? ", the first " + R.groups.length + " shown" : "") + "; " + leaks + (leaks === 1 ? " leak" : " leaks") + " among those shown";
    R.groups.forEach((g) => {
      const row = el("div", { class: "group" + (g.leak ? " leak" : ""), data: { group: g.group } });
      row.appendChild(el("h3", {}, "group " + g.group + ": " + g.members.length + " files" + (g.leak ? ", a leak between " + [...new Set(g.members.map((m) => m.split))].join(" and ") : "")));
      const strip = el("div", { class: "members" });
      g.members.forEach((m) => {
        const fig = el("figure", { title: m.path });
        if (m.thumb) fig.appendChild(el("img", { src: m.thumb, alt: baseName(m.path), loading: "lazy" }));
        else fig.appendChild(el("div", { class: "missing" }, "not readable now"));
        fig.appendChild(el("figcaption", {}, m.split + " / " + m.label + " / " + baseName(m.path) + " (" + m.copy + (m.keep ? ", keep" : "") + ")"));
        strip.appendChild(fig);
      });
      row.appendChild(strip);
      $("groups").appendChild(row);
    });
    $("groups-section").hidden = false;
  }

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
  // a thumbnail: its own file (a string), or a place [file, x, y, w, h, sheet w, sheet h] in a batch's
  // sheet, drawn as the sheet's background scaled to fit a box; sheets load as their cards come into view
  const lazy = "IntersectionObserver" in window ? new IntersectionObserver((entries) => entries.forEach((e) => {
    if (e.isIntersecting) { e.target.style.backgroundImage = "url(\"" + e.target.dataset.sheet + "\")"; lazy.unobserve(e.target); }
  }), { rootMargin: "200px" }) : null;
  function thumbnail(s, boxW, boxH, cls) {
    if (typeof s.thumb === "string") return el("img", { class: cls, src: s.thumb, alt: baseName(s.path), loading: "lazy", decoding: "async" });
    const [file, x, y, w, h, W, H] = s.thumb;
    const k = Math.min(boxW / w, boxH / h);
    const box = el("div", { class: cls + " sheet", role: "img", "aria-label": baseName(s.path), data: { sheet: file } });
    box.style.width = Math.round(w * k) + "px";
    box.style.height = Math.round(h * k) + "px";
    box.style.backgroundPosition = -x * k + "px " + -y * k + "px";
    box.style.backgroundSize = W * k + "px " + H * k + "px";
    if (lazy) lazy.observe(box); else box.style.backgroundImage = "url(\"" + file + "\")";
    return box;
  }
  function card(s) {
    const wrong = R.labelled && s.true !== s.pred;
    const box = el("div", { class: "card" + (R.labelled ? (wrong ? " wrong" : " right") : ""), tabindex: "0", data: { i: s.i, true: s.true === null ? "" : s.true, pred: s.pred } });
    if (s.thumb) box.appendChild(thumbnail(s, 140, 96, "thumb"));
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
    if (s.thumb) {
      const big = thumbnail(s, 256, 256, "big");
      if (big.dataset.sheet) big.style.backgroundImage = "url(\"" + big.dataset.sheet + "\")";
      body.appendChild(big);
    }
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
    if (extra.timeline) {
      const tl = Object.assign({ source: s.path }, extra.timeline);
      body.appendChild(el("h4", {}, "Along the video: each window is a clip the model read on its own (" + tl.windows.length + (tl.windows.length === 1 ? " clip" : " clips") + ")"));
      body.appendChild(drawTimeline(tl, baseName(s.path)));
    }
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

  // ---- video timelines --------------------------------------------------------------------------------
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  const colour = (k) => (k < PALETTE.length ? PALETTE[k] : "hsl(" + ((k * 137) % 360) + ",55%,50%)");
  const clockOf = (t) => { const m = Math.floor(t / 60), s = t - 60 * m; return String(m).padStart(2, "0") + ":" + s.toFixed(1).padStart(4, "0"); };
  function timelines() {
    if (!R.timelines || !R.timelines.length) return;
    R.timelines.forEach((tl, n) => {
      const box = drawTimeline(tl, tl.source + ": " + classes[R.samples[tl.sample][C.pred]] + " " + fmt(tl.prob, 2));
      box.dataset.source = n;
      $("timelines").appendChild(box);
    });
    $("timelines-section").hidden = false;
  }
  // one source's band, class curves, keyframes and segments table; a click on the band shows that window
  function drawTimeline(tl, title) {
      const clock = tl.unit === "frames" ? (t) => "frame " + Math.round(t) : clockOf;
      const box = el("div", { class: "timeline" });
      box.appendChild(el("h3", {}, title));
      const end = tl.windows.length ? tl.windows[tl.windows.length - 1][1] : 1;
      const W = 1000, BAND = 28, PLOT = 140, H = BAND + PLOT + 30, L = 36;
      const x = (t) => L + ((W - L - 10) * t) / (end || 1), y = (p) => BAND + 8 + (1 - p) * PLOT;
      const [svg, add] = drawing(W, H);
      tl.windows.forEach((w, j) => add("rect", { class: "window", x: x(w[0]), y: 0, width: Math.max(1, x(w[1]) - x(w[0])), height: BAND, fill: colour(w[2]), "data-j": j }));
      // each class's probability, drawn thin to thick in order of its peak, so no line hides another's
      const peaks = classes.map((_, k) => Math.max(0, ...tl.windows.map((w) => w[4][k])));
      classes.map((_, k) => k).sort((a, b) => peaks[b] - peaks[a]).forEach((k, rank) => {
        if (!tl.windows.length) return;
        const pts = tl.windows.map((w) => x((w[0] + w[1]) / 2).toFixed(1) + "," + y(w[4][k]).toFixed(1)).join(" ");
        add("polyline", { points: pts, fill: "none", stroke: colour(k), "stroke-width": 1 + 1.5 * (rank === 0 ? 0 : 1 / (rank + 1)), "stroke-dasharray": rank % 2 ? "5 3" : "" });
      });
      [0, 0.5, 1].forEach((p) => add("text", { x: L - 4, y: y(p) + 4, "text-anchor": "end", "font-size": 11 }, p));
      [0, 0.25, 0.5, 0.75, 1].forEach((f) => add("text", { x: x(f * end), y: H - 6, "text-anchor": "middle", "font-size": 11 }, clock(f * end)));
      svg.addEventListener("click", (e) => {
        const r = svg.getBoundingClientRect();
        const t = ((e.clientX - r.left) * (W / r.width) - L) / (W - L - 10) * end;
        let j = tl.windows.findIndex((w) => t < w[1]);
        if (j < 0) j = tl.windows.length - 1;
        windowDetail(tl, j, clock);
      });
      box.appendChild(svg);
      const legend = el("div", { class: "legend" });
      classes.forEach((c, k) => { const item = el("span", {}, c); const key = el("i"); key.style.background = colour(k); item.prepend(key); legend.appendChild(item); });
      box.appendChild(legend);
      if (tl.keyframes.length) {
        const strip = el("div", { class: "keyframes" });
        tl.keyframes.forEach((j) => {
          const w = tl.windows[j];
          const fig = el("figure", { data: { j: j } });
          fig.appendChild(el("img", { src: tl.frames[String(j)], alt: "frame at " + clock(w[0]), loading: "lazy" }));
          fig.appendChild(el("figcaption", {}, clock(w[0]) + " " + classes[w[2]]));
          fig.addEventListener("click", () => windowDetail(tl, j, clock));
          strip.appendChild(fig);
        });
        box.appendChild(strip);
      }
      const table = el("table", { class: "segments" });
      const head = el("tr");
      ["start", "end", "label", "mean probability"].forEach((h) => head.appendChild(el("th", {}, h)));
      table.appendChild(head);
      tl.segments.forEach((s) => {
        const tr = el("tr");
        [clock(s[0]), clock(s[1]), classes[s[2]], fmt(s[3], 3)].forEach((v) => tr.appendChild(el("td", {}, v)));
        table.appendChild(tr);
      });
      box.appendChild(table);
      return box;
  }
  // a window's detail: the nearest frame shown, its time and every class's probability
  function windowDetail(tl, j, clock) {
    const w = tl.windows[j];
    const shown = Object.keys(tl.frames).map(Number);
    const near = shown.length ? shown.reduce((a, b) => (Math.abs(b - j) < Math.abs(a - j) ? b : a)) : null;
    const body = $("detail-body");
    body.textContent = "";
    body.appendChild(el("h3", {}, baseName(tl.source) + " " + clock(w[0]) + "-" + clock(w[1])));
    if (near !== null) {
      body.appendChild(el("img", { class: "big", src: tl.frames[String(near)], alt: "frame at " + clock(tl.windows[near][0]) }));
      body.appendChild(el("p", { class: "hint" }, "first frame of the window at " + clock(tl.windows[near][0]) + (near === j ? "" : " (the nearest window with a frame kept)")));
    } else {
      body.appendChild(el("p", { class: "hint" }, "no frames kept (a live source)"));
    }
    body.appendChild(el("p", {}, "label: " + classes[w[2]] + " " + fmt(w[3])));
    const list = el("div", { class: "probs" });
    w[4].map((p, k) => [k, p]).sort((a, b) => b[1] - a[1]).forEach(([k, p]) => {
      const bar = el("div", { class: "bar" });
      bar.appendChild(el("span", { class: "label" }, classes[k]));
      const fill = el("span", { class: "fill" });
      fill.style.width = Math.max(1, Math.round(200 * p)) + "px";
      bar.appendChild(fill);
      bar.appendChild(el("span", {}, fmt(p)));
      list.appendChild(bar);
    });
    body.appendChild(list);
    $("detail").hidden = false;
  }

  if (R.check && !S.samples) {  // a check page without --labels: its groups are the page
    $("classes-section").hidden = true;
    $("gallery-section").hidden = true;
  } else {
    classTable();
  }
  timelines();
  if (R.labelled && S.samples) {
    confusion();
    calibration();
  }
  groups();
  skipped();
  apply();
  $("loading").hidden = true;
  document.body.dataset.ready = "1";
})();
