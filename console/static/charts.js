// Charts for chart cards (console/templates/console/charts.html), drawn from the table in each card.
// The table stays the source: this only reads it, so the page is complete without JavaScript or without
// Chart.js (served by the app from console/static/vendor/, installed by `make install`). Calm colours:
// the accent for figures, never red (red is for action needed, and a chart is not an alarm).
(function () {
  "use strict";

  var ACCENT = "#24476b";
  var INK = "#4a525c";
  var GRID = "#e8ebef";

  function number(cell) {
    var raw = cell.getAttribute("data-value");
    if (raw === null) raw = cell.textContent.replace(/[^0-9.\-]/g, "");
    if (raw === "") return null;
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }

  function read(table) {
    var column = parseInt(table.getAttribute("data-chart-y") || "1", 10);
    var labels = [];
    var values = [];
    var limit = parseInt(table.getAttribute("data-chart-limit") || "0", 10);
    Array.prototype.forEach.call(table.tBodies[0] ? table.tBodies[0].rows : [], function (row) {
      if (limit && labels.length >= limit) return;
      var head = row.cells[0];
      var cell = row.cells[column];
      if (!head || !cell) return;
      labels.push(head.textContent.trim());
      values.push(number(cell));
    });
    return { labels: labels, values: values };
  }

  function draw(table) {
    var card = table.closest(".chart-card");
    var slot = card && card.querySelector("[data-chart-slot]");
    if (!slot) return;
    var data = read(table);
    if (!data.labels.length) return;
    var kind = table.getAttribute("data-chart");
    var horizontal = kind === "hbar";
    var unit = table.getAttribute("data-chart-unit") || "";
    var max = table.getAttribute("data-chart-max");
    var canvas = document.createElement("canvas");
    // The table beside the chart carries the same figures for screen readers; the chart is a picture of it.
    canvas.setAttribute("role", "img");
    var title = card.querySelector(".chart-card__title");
    canvas.setAttribute("aria-label", (title ? title.textContent.trim() + ". " : "") + "The table below has the figures.");
    slot.classList.add("is-drawn");
    if (horizontal) slot.classList.add("chart-card__chart--tall");
    slot.appendChild(canvas);
    var valueAxis = {
      beginAtZero: true,
      grid: { color: GRID },
      ticks: {
        color: INK,
        callback: function (value) { return value + (unit === "%" ? "%" : ""); }
      },
      title: { display: true, text: table.getAttribute("data-chart-y-label") || "", color: INK }
    };
    if (max) valueAxis.max = parseFloat(max);
    var categoryAxis = {
      grid: { display: false },
      ticks: { color: INK, autoSkip: true, maxRotation: 0 },
      title: { display: true, text: table.getAttribute("data-chart-x-label") || "", color: INK }
    };
    // eslint-disable-next-line no-undef
    new Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: table.getAttribute("data-chart-y-label") || "",
          data: data.values,
          backgroundColor: ACCENT,
          borderColor: ACCENT,
          borderWidth: kind === "line" ? 2 : 0,
          pointRadius: kind === "line" ? 3 : 0,
          spanGaps: true
        }]
      },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (context) {
                var value = horizontal ? context.parsed.x : context.parsed.y;
                return value === null ? "no figure" : value.toLocaleString() + (unit === "%" ? "%" : " " + unit);
              }
            }
          }
        },
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.Chart !== "function") return;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Array.prototype.forEach.call(document.querySelectorAll("table[data-chart]"), draw);
  });
})();
