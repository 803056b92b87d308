// Draw the monitoring charts from the JSON blocks beside them (uPlot, served by this UI).
(function () {
  "use strict";
  function colour(index) {
    var style = getComputedStyle(document.documentElement);
    return style.getPropertyValue("--chart-" + ((index % 8) + 1)).trim() || "#1f5fbf";
  }
  function filled(values) {
    return values.filter(function (value) { return value !== null; }).length;
  }
  function draw(element) {
    var source = document.getElementById(element.getAttribute("data-chart"));
    if (!source || typeof uPlot === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var names = Object.keys(spec.series);
    var xs = spec.time
      ? spec.x.map(function (value) { return Date.parse(value) / 1000; })
      : spec.x.map(Number);
    var data = [xs].concat(names.map(function (name) { return spec.series[name]; }));
    var fg = getComputedStyle(document.body).color;
    var grid = { stroke: "rgba(128,128,128,0.25)" };
    var series = [{ label: spec.time ? "time" : (spec.xlabel || "x") }].concat(
      names.map(function (name, index) {
        var interval = spec.band && name !== "value";
        return {
          label: name,
          stroke: interval ? colour(0) : colour(spec.band ? 0 : index),
          width: interval ? 1 : 2,
          dash: interval ? [5, 5] : undefined,
          spanGaps: false,
          // Points where a line would be too short to see (few windows, or one busy hour).
          points: { show: xs.length < 40 || filled(spec.series[name]) < 5 },
        };
      })
    );
    var options = {
      width: Math.max(element.clientWidth, 280),
      height: 240,
      scales: { x: { time: !!spec.time } },
      axes: [{ stroke: fg, grid: grid }, { stroke: fg, grid: grid }],
      series: series,
    };
    if (spec.band) { options.bands = [{ series: [3, 2], fill: "rgba(110,168,254,0.18)" }]; }
    element.textContent = "";
    var plot = new uPlot(options, data, element);
    new ResizeObserver(function () {
      plot.setSize({ width: Math.max(element.clientWidth, 280), height: 240 });
    }).observe(element);
    element.setAttribute("data-drawn", "true");
  }
  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }
  // An image field: the chosen file's bytes go in base64 into the hidden field the API reads.
  document.addEventListener("change", function (event) {
    var input = event.target;
    var target = input.getAttribute && document.getElementById(input.getAttribute("data-base64-into"));
    if (!target || !input.files || !input.files[0]) { return; }
    var reader = new FileReader();
    reader.onload = function () { target.value = String(reader.result).split(",")[1] || ""; };
    reader.readAsDataURL(input.files[0]);
  });
  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawAll(event.target); });
})();
