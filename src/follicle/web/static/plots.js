/* Follicle web app: interaction for the server-made SVG plots (no dependencies, no eval).
 *
 * - Hover or focus any element with data-tip: its text shows in a tooltip.
 * - Kaplan-Meier plots (svg[data-km]): a guide follows the pointer (or the arrow keys when the plot has
 *   focus) and the tooltip gives each arm's cumulative incidence, CI and number at risk at that time.
 * - Zoom: figures with data-src re-request their SVG for a new x range, from the +, - and reset buttons,
 *   or by dragging across the plot. The server redraws axes and ticks for the range.
 * Licence: Apache-2.0, as the rest of Follicle.
 */
(function () {
  "use strict";

  function tip(fig) {
    var t = fig.querySelector(".plot-tip");
    if (!t) {
      t = document.createElement("div");
      t.className = "plot-tip";
      t.setAttribute("role", "status");
      t.setAttribute("aria-live", "polite");
      fig.appendChild(t);
    }
    return t;
  }

  function place(fig, t, clientX, clientY) {
    var fr = fig.getBoundingClientRect();
    var x = clientX - fr.left + 14, y = clientY - fr.top + 14;
    if (x + t.offsetWidth > fr.width) { x = Math.max(0, clientX - fr.left - t.offsetWidth - 10); }
    t.style.left = x + "px";
    t.style.top = y + "px";
  }

  function showTip(el, evt) {
    var fig = el.closest("figure.plot");
    if (!fig) { return; }
    var t = tip(fig);
    t.textContent = el.getAttribute("data-tip");
    t.classList.add("on");
    if (evt && evt.clientX !== undefined && evt.type !== "focusin") {
      place(fig, t, evt.clientX, evt.clientY);
    } else {
      var r = el.getBoundingClientRect();
      place(fig, t, r.right, r.top);
    }
  }

  function hideTip(el) {
    var fig = el.closest("figure.plot");
    if (fig) { tip(fig).classList.remove("on"); }
  }

  document.addEventListener("mouseover", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip]");
    if (el) { showTip(el, e); }
  });
  document.addEventListener("mousemove", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip]");
    if (el) { var fig = el.closest("figure.plot"); if (fig) { place(fig, tip(fig), e.clientX, e.clientY); } }
  });
  document.addEventListener("mouseout", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip]");
    if (el) { hideTip(el); }
  });
  document.addEventListener("focusin", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip]");
    if (el) { showTip(el, e); }
  });
  document.addEventListener("focusout", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip]");
    if (el) { hideTip(el); }
  });

  /* ---- scales stored on the svg by the server ---- */
  function axis(svg) {
    return {
      x0: parseFloat(svg.getAttribute("data-x0")), x1: parseFloat(svg.getAttribute("data-x1")),
      px0: parseFloat(svg.getAttribute("data-px0")), px1: parseFloat(svg.getAttribute("data-px1")),
      log: svg.getAttribute("data-scale") === "log"
    };
  }
  function toData(a, px) {
    var f = (px - a.px0) / (a.px1 - a.px0);
    if (a.log) { return Math.exp(Math.log(a.x0) + f * (Math.log(a.x1) - Math.log(a.x0))); }
    return a.x0 + f * (a.x1 - a.x0);
  }
  function toPx(a, x) {
    var f = a.log ? (Math.log(x) - Math.log(a.x0)) / (Math.log(a.x1) - Math.log(a.x0)) : (x - a.x0) / (a.x1 - a.x0);
    return a.px0 + f * (a.px1 - a.px0);
  }
  function svgX(svg, clientX) {
    var pt = svg.createSVGPoint();
    pt.x = clientX; pt.y = 0;
    return pt.matrixTransform(svg.getScreenCTM().inverse()).x;
  }

  /* ---- Kaplan-Meier guide ---- */
  function kmData(svg) {
    if (!svg._km) { svg._km = JSON.parse(svg.getAttribute("data-km")); }
    return svg._km;
  }
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function kmAt(svg, day) {
    var d = kmData(svg), lines = ["day " + Math.round(day) + " (" + (day / 365.25).toFixed(2) + " y)"];
    d.arms.forEach(function (arm) {
      var i = -1;
      for (var k = 0; k < arm.t.length; k++) { if (arm.t[k] <= day) { i = k; } else { break; } }
      if (i < 0) { lines.push(arm.name + ": 0.0% (at risk " + arm.n0 + ")"); return; }
      var over = arm.last !== undefined && day > arm.last;
      if (over) { lines.push(arm.name + ": not shown (fewer than " + d.min_cell + " at risk)"); return; }
      lines.push(arm.name + ": " + pct(arm.ci[i]) + " [" + pct(arm.lo[i]) + ", " + pct(arm.hi[i]) + "], at risk " + arm.n[i]);
    });
    return lines.join("\n");
  }
  function kmGuide(svg, day) {
    var a = axis(svg), g = svg.querySelector(".guide");
    if (!g) { return; }
    day = Math.min(Math.max(day, a.x0), a.x1);
    svg._day = day;
    var x = toPx(a, day);
    g.setAttribute("x1", x); g.setAttribute("x2", x);
    g.setAttribute("visibility", "visible");
    var fig = svg.closest("figure.plot"), t = tip(fig);
    t.textContent = kmAt(svg, day);
    t.classList.add("on");
    return t;
  }
  document.addEventListener("mousemove", function (e) {
    var svg = e.target.closest && e.target.closest("svg[data-km]");
    if (!svg || svg._drag) { return; }
    var a = axis(svg), x = svgX(svg, e.clientX);
    if (x < a.px0 || x > a.px1) { return; }
    var t = kmGuide(svg, toData(a, x));
    if (t) { place(svg.closest("figure.plot"), t, e.clientX, e.clientY); }
  });
  document.addEventListener("mouseleave", function (e) {
    if (e.target.matches && e.target.matches("svg[data-km]")) {
      var g = e.target.querySelector(".guide");
      if (g) { g.setAttribute("visibility", "hidden"); }
      hideTip(e.target);
    }
  }, true);
  document.addEventListener("keydown", function (e) {
    var svg = e.target.closest && e.target.closest("svg[data-km]");
    if (!svg || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) { return; }
    var a = axis(svg), step = (a.x1 - a.x0) / 50;
    var day = (svg._day === undefined ? a.x0 : svg._day) + (e.key === "ArrowRight" ? step : -step);
    var t = kmGuide(svg, day);
    if (t) { var r = svg.getBoundingClientRect(); place(svg.closest("figure.plot"), t, r.left + toPx(a, svg._day) * r.width / svg.viewBox.baseVal.width, r.top + 20); }
    e.preventDefault();
  });

  /* ---- zoom: ask the server for the plot over a new x range ---- */
  function reload(fig, lo, hi) {
    var src = fig.getAttribute("data-src");
    if (!src || !window.htmx) { return; }
    var url = src + (src.indexOf("?") < 0 ? "?" : "&") + (lo === null ? "" : "xmin=" + lo.toPrecision(6) + "&xmax=" + hi.toPrecision(6));
    window.htmx.ajax("GET", url, { target: fig, swap: "outerHTML" });
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-zoom]");
    if (!b) { return; }
    var fig = b.closest("figure.plot"), svg = fig.querySelector("svg[data-x0]");
    if (!svg) { return; }
    var a = axis(svg), mode = b.getAttribute("data-zoom");
    if (mode === "reset") { reload(fig, null, null); return; }
    var c0 = a.log ? Math.log(a.x0) : a.x0, c1 = a.log ? Math.log(a.x1) : a.x1, mid = (c0 + c1) / 2;
    var half = (c1 - c0) / (mode === "in" ? 4 : 1);
    var lo = mid - half, hi = mid + half;
    if (a.log) { lo = Math.exp(lo); hi = Math.exp(hi); } else if (a.x0 >= 0) { lo = Math.max(0, lo); }
    reload(fig, lo, hi);
  });
  document.addEventListener("mousedown", function (e) {
    var svg = e.target.closest && e.target.closest("figure.plot[data-src] svg[data-x0]");
    if (!svg || e.button !== 0) { return; }
    var a = axis(svg), x = svgX(svg, e.clientX);
    if (x < a.px0 || x > a.px1) { return; }
    svg._drag = { x: x };
    var band = svg.querySelector(".band");
    if (band) { band.setAttribute("x", x); band.setAttribute("width", 0); band.setAttribute("visibility", "visible"); }
    e.preventDefault();
  });
  document.addEventListener("mousemove", function (e) {
    document.querySelectorAll("figure.plot svg[data-x0]").forEach(function (s) {
      if (!s._drag) { return; }
      var a = axis(s), x = Math.min(Math.max(svgX(s, e.clientX), a.px0), a.px1), band = s.querySelector(".band");
      if (band) { band.setAttribute("x", Math.min(x, s._drag.x)); band.setAttribute("width", Math.abs(x - s._drag.x)); }
    });
  });
  document.addEventListener("mouseup", function (e) {
    document.querySelectorAll("figure.plot svg[data-x0]").forEach(function (s) {
      if (!s._drag) { return; }
      var a = axis(s), x = Math.min(Math.max(svgX(s, e.clientX), a.px0), a.px1), x0 = s._drag.x;
      s._drag = null;
      var band = s.querySelector(".band");
      if (band) { band.setAttribute("visibility", "hidden"); }
      if (Math.abs(x - x0) < 6) { return; }
      var lo = toData(a, Math.min(x, x0)), hi = toData(a, Math.max(x, x0));
      reload(s.closest("figure.plot"), lo, hi);
    });
  });
})();
