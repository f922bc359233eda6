/* Taskweb console: one live socket per page, charts, and small conveniences.
 *
 * The socket element is created only while the tab is visible and removed when it is
 * hidden, so a background tab receives nothing; coming back opens a new socket and
 * the server sends the page's fragments afresh.
 */
(function () {
  "use strict";

  var liveHolder = null;
  var charts = {};

  function setState(text) {
    var el = document.getElementById("live-state");
    if (el) { el.textContent = text; el.dataset.state = text; }
  }

  function connect() {
    var root = document.getElementById("live");
    if (!root || liveHolder || !root.dataset.socket) return;
    liveHolder = document.createElement("div");
    liveHolder.setAttribute("hx-ext", "ws");
    liveHolder.setAttribute("ws-connect", root.dataset.socket);
    root.appendChild(liveHolder);
    htmx.process(liveHolder);
  }

  function disconnect() {
    if (!liveHolder) return;
    var holder = liveHolder;
    liveHolder = null;
    htmx.remove(holder);
    setState("paused");
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { disconnect(); } else { connect(); }
  });

  document.addEventListener("htmx:wsOpen", function () { setState("live"); });
  /* 4403: the server closed the socket because this user may no longer watch (logged out,
   * deactivated, lost staff or view permission); it does not reconnect, so say so. */
  document.addEventListener("htmx:wsClose", function (event) {
    if (!liveHolder) return;
    setState(event.detail.event.code === 4403 ? "offline" : "reconnecting");
  });
  document.addEventListener("htmx:wsAfterMessage", drawCharts);

  /* Lists get the status cells of the rows in their range together, in #live-cells: a list's
   * socket knows the page's range and filter, not which rows it drew. Each cell replaces the
   * one of its row when this page shows that row; the others are dropped. */
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var box = event.detail && event.detail.target;
    if (!box || box.id !== "live-cells") return;
    Array.prototype.slice.call(box.querySelectorAll("[data-cell]")).forEach(function (cell) {
      var shown = document.getElementById(cell.dataset.cell);
      if (!shown) return;
      cell.id = cell.dataset.cell;
      cell.removeAttribute("data-cell");
      shown.replaceWith(cell);
    });
    box.replaceChildren();
  });

  /* Clear the flash message a while after it appears. */
  var flashTimer = null;
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "flash" && target.textContent.trim()) {
      clearTimeout(flashTimer);
      flashTimer = setTimeout(function () {
        var flash = document.getElementById("flash");
        if (flash && !flash.classList.contains("error")) { flash.textContent = ""; flash.className = "flash"; }
      }, 8000);
    }
  });

  /* No inline handlers (the Content-Security-Policy forbids them): buttons say what they
   * need in data attributes. data-confirm asks first; data-dismiss empties the element
   * the selector names (a confirmation box). */
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm], [data-dismiss]");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
    if (button.dataset.dismiss) {
      var box = button.closest(button.dataset.dismiss);
      if (box) box.replaceChildren();
    }
  }, true);

  /* "Select page" checkboxes tick every row box of the same name. */
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.dataset && box.dataset.selectAll) {
      document.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]').forEach(function (row) {
        row.checked = box.checked;
      });
    }
  });

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function drawCharts() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll(".chart[data-source]").forEach(function (box) {
      var source = document.getElementById(box.dataset.source);
      if (!source) return;
      var raw = source.dataset.series;
      if (box.dataset.drawn === raw) return;
      box.dataset.drawn = raw;
      var series = JSON.parse(raw);
      var data = [series.t, series.succeeded, series.failed];
      var chart = charts[box.dataset.source];
      if (chart) { chart.setData(data); return; }
      var axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--line") }, ticks: { stroke: cssVar("--line") } };
      charts[box.dataset.source] = new uPlot({
        width: Math.max(box.clientWidth, 280),
        height: 200,
        series: [
          {},
          { label: "finished", stroke: cssVar("--ok"), fill: cssVar("--ok-soft"), width: 2, points: { show: false } },
          { label: "failed", stroke: cssVar("--bad"), fill: cssVar("--bad-soft"), width: 2, points: { show: false } }
        ],
        axes: [axis, Object.assign({ size: 50 }, axis)],
        scales: { y: { range: function (u, min, max) { return [0, Math.max(max, 5)]; } } }
      }, data, box);
    });
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (key) {
      var box = document.querySelector('.chart[data-source="' + key + '"]');
      if (box) charts[key].setSize({ width: Math.max(box.clientWidth, 280), height: 200 });
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    if (!document.hidden) connect();
  });
})();
