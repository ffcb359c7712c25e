/* The home page's charts, drawn by uPlot (static/vendor, from npm) over numbers the page
   already shows: each .chart-plot carries its chart's data in data-chart (appliance.summary
   Chart.data: kind "lines" or "bars", x, series, unit); the table of the same numbers beside
   it is folded away once the chart is drawn. Without uPlot nothing happens and the numbers
   stay open. No inline script, no eval: the page's Content-Security-Policy holds. */
(function () {
  "use strict";
  if (typeof window.uPlot !== "function") return;
  var uPlot = window.uPlot;
  var HEIGHT = 150;
  var drawn = [];

  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // Lines: added, updated, removed in the site's ok, brand and bad colours; bars: brand.
  var LINES = ["--ok", "--brand", "--bad"];

  // Lines over runs (x across, a point a run); bars over categories, lying down (the
  // categories' names down the left, where long names fit on a phone too).
  function options(data, width) {
    var bars = data.kind === "bars";
    var last = data.x.length - 1;
    var ink = colour("--muted");
    var font = "12px system-ui, sans-serif";
    var series = [{}];
    data.series.forEach(function (pair, i) {
      var line = colour(bars ? "--brand" : LINES[i % LINES.length]);
      series.push({
        label: pair[0], stroke: line, width: bars ? 1 : 2,
        fill: bars ? line : undefined,
        points: { show: !bars, size: 5, fill: line },
        paths: bars ? uPlot.paths.bars({ size: [0.6, 28] }) : undefined,
      });
    });
    var names = {
      stroke: ink, font: font, grid: { show: false }, ticks: { show: false },
      // Bars name each one; lines name their first and last run (the table has each).
      splits: function () {
        return bars ? data.x.map(function (_, i) { return i; }) : (last > 0 ? [0, last] : [0]);
      },
      values: function (u, splits) { return splits.map(function (i) { return data.x[i]; }); },
    };
    var amounts = {
      stroke: ink, font: font, grid: { stroke: colour("--line"), width: 1 },
      values: function (u, splits) {
        return splits.map(function (v) { return Number.isInteger(v) ? v + data.unit : ""; });
      },
    };
    if (bars) {
      names.side = 3;
      names.size = Math.min(140, 12 + 7 * Math.max.apply(null, data.x.map(function (x) {
        return x.length;
      })));
      amounts.side = 2;
    } else {
      amounts.size = 48;
    }
    return {
      width: width, height: bars ? 28 + 30 * data.x.length : HEIGHT,
      legend: { show: false },  // the names and numbers are in the table beside it
      cursor: { show: false },
      scales: {
        // Across: left to right; down (the bars' categories): the first at the top.
        x: { time: false, ori: bars ? 1 : 0, dir: bars ? -1 : 1,
             range: function () { return [-0.5, last + 0.5]; } },
        y: { ori: bars ? 0 : 1, dir: 1,
             range: function (u, lo, hi) { return [0, Math.max(bars ? 100 : 1, hi)]; } },
      },
      axes: [names, amounts],
      series: series,
    };
  }

  function draw(plot) {
    var data = JSON.parse(plot.getAttribute("data-chart"));
    var xs = data.x.map(function (_, i) { return i; });
    var values = data.series.map(function (pair) { return pair[1]; });
    var opts = options(data, plot.clientWidth);
    var chart = new uPlot(opts, [xs].concat(values), plot);
    var figure = plot.closest(".chart");
    figure.classList.add("drawn");
    var numbers = figure.querySelector("details.chart-data");
    if (numbers) numbers.open = false;
    drawn.push([plot, chart, opts.height]);
  }

  function resize() {
    drawn.forEach(function (d) { d[1].setSize({ width: d[0].clientWidth, height: d[2] }); });
  }

  document.querySelectorAll(".chart-plot[data-chart]").forEach(draw);
  window.addEventListener("resize", resize);
})();
