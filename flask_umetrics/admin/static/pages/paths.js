/* Paths page: draws the flow diagram (chartjs-chart-sankey) from the JSON block the server
   renders; names are drawn on the canvas as text, never parsed as HTML. */
(function () {
  "use strict";

  var PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563"];

  function draw() {
    var node = document.getElementById("um-paths-flows");
    if (!node || typeof window.Chart === "undefined") return;
    var canvas = node.parentElement.querySelector("canvas");
    if (!canvas || canvas.dataset.drawn) return;
    canvas.dataset.drawn = "1";
    var spec = JSON.parse(node.textContent);
    var colors = {};
    Object.keys(spec.labels).forEach(function (key) {
      var name = spec.labels[key];
      if (!(name in colors)) colors[name] = PALETTE[Object.keys(colors).length % PALETTE.length];
    });
    function colorOf(key) { return colors[spec.labels[key]]; }
    try {
      new window.Chart(canvas, {
        type: "sankey",
        data: {
          datasets: [{
            label: "Paths",
            data: spec.flows,
            labels: spec.labels,
            column: spec.columns,
            colorFrom: function (c) { return colorOf(c.dataset.data[c.dataIndex].from); },
            colorTo: function (c) { return colorOf(c.dataset.data[c.dataIndex].to); },
            colorMode: "gradient",
            size: "max",
            nodeWidth: 12,
            nodePadding: 14,
            borderWidth: 0
          }]
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: function (c) {
                  var item = c.dataset.data[c.dataIndex];
                  return spec.labels[item.from] + " \u2192 " + spec.labels[item.to] + ": " + item.flow;
                }
              }
            }
          }
        }
      });
    } catch (err) {
      canvas.replaceWith(document.createTextNode("Chart unavailable: " + err.message));
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
