/* flask-umetrics dashboard: draws the charts (Chart.js), refreshes the live feed, confirms
   destructive forms, submits select-to-change forms. Every number also sits in an HTML table, so
   the page works without it. No page has inline script or style: the CSP forbids both. */
(function () {
  "use strict";

  var PALETTE = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6",
                 "#dd4477", "#66aa00", "#b82e2e", "#316395"];

  function color(i, alpha) {
    var hex = PALETTE[i % PALETTE.length];
    if (alpha === undefined) return hex;
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function percentTick(value) { return (value * 100).toFixed(0) + "%"; }

  function wholeNumbers(datasets) {
    return datasets.every(function (d) {
      return d.data.every(function (v) { return v === null || Number.isInteger(v); });
    });
  }

  function config(spec) {
    var kind = spec.kind;
    var type = kind === "line" || kind === "sparkline" ? "line" : "bar";
    var datasets = spec.datasets.map(function (d, i) {
      var c = d.color !== undefined ? d.color : i;
      return {
        label: d.label,
        data: d.data,
        borderColor: color(c),
        backgroundColor: type === "line" || d.dashed ? color(c, 0.15) : color(c, 0.7),
        borderWidth: kind === "sparkline" ? 1.5 : 2,
        pointRadius: kind === "sparkline" ? 0 : 2,
        fill: kind === "sparkline",
        tension: 0.2,
        spanGaps: true,
        // The previous period of a compared report: dashed (bars: an outline).
        borderDash: d.dashed ? [6, 4] : [],
        borderSkipped: d.dashed ? false : "start"
      };
    });
    var horizontal = kind === "hbar" || kind === "interval";
    if (kind === "hbar") {
      // A path transition "a → b" on two lines, so long event names are not cut off; a bar
      // of a small count stays visible (at least 3 pixels).
      datasets.forEach(function (d) { d.minBarLength = 3; });
    }
    var labels = kind === "hbar" ? spec.labels.map(function (label) {
      var text = String(label);
      return text.indexOf(" \u2192 ") > 0 ? text.replace(" \u2192 ", " \u2192\n").split("\n") : text;
    }) : spec.labels;
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      indexAxis: horizontal ? "y" : "x",
      plugins: { legend: { display: kind !== "sparkline" && datasets.length > 1 } },
      scales: {}
    };
    if (kind === "sparkline") {
      options.plugins.tooltip = { enabled: false };
      options.scales = { x: { display: false }, y: { display: false } };
    } else {
      var valueAxis = horizontal ? "x" : "y";
      options.scales[valueAxis] = { beginAtZero: kind !== "interval", stacked: spec.stacked };
      options.scales[horizontal ? "y" : "x"] = { stacked: spec.stacked };
      if (spec.percent) options.scales[valueAxis].ticks = { callback: percentTick };
      // Counts (every value whole) get whole ticks: no axis of 0.1 ... 0.9 exposed subjects.
      else if (kind !== "interval" && wholeNumbers(spec.datasets)) {
        options.scales[valueAxis].ticks = { precision: 0 };
      }
    }
    if (kind !== "sparkline") {
      options.plugins.tooltip = { callbacks: { label: function (ctx) {
        var v = ctx.parsed[horizontal ? "x" : "y"];
        var shown = spec.percent ? percentTick(v) : (typeof v === "number" ? v.toLocaleString("en-US") : v);
        return (ctx.dataset.label ? ctx.dataset.label + ": " : "") + shown;
      } } };
      if (kind === "interval") delete options.plugins.tooltip;
    }
    if (spec.links) {
      // A bar or point opens the persons behind it (only this dashboard's own paths).
      var linkAt = function (elements) {
        if (!elements.length) return null;
        var hit = elements[0];
        var row = Array.isArray(spec.links[0]) ? spec.links[hit.datasetIndex] : spec.links;
        var url = row ? row[hit.index] : null;
        return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : null;
      };
      options.onClick = function (event, elements) {
        var url = linkAt(elements);
        if (url) window.location.assign(url);
      };
      options.onHover = function (event, elements) {
        event.native.target.style.cursor = linkAt(elements) ? "pointer" : "";
      };
    }
    var plugins = [];
    if (spec.annotations && spec.annotations.length && !horizontal && kind !== "sparkline") {
      plugins.push(annotationMarks(spec.annotations));
    }
    return { type: type, data: { labels: labels, datasets: datasets }, options: options,
             plugins: plugins };
  }

  // Annotations (docs/annotations.md): a dashed vertical line per note at its place on the
  // category axis (`at`: bucket index + how far into the bucket), a short label at its top,
  // and on hover a box with the note's time (the app's zone) and whole text.
  var NOTE_COLOR = "#6b4fbb";

  function shorten(text, most) {
    return text.length > most ? text.slice(0, most - 1) + "\u2026" : text;
  }

  function annotationMarks(notes) {
    var hovered = -1;
    function xOf(chart, at) {
      var scale = chart.scales.x;
      var count = chart.data.labels.length;
      var index = Math.floor(at);
      var step = count > 1 ? scale.getPixelForValue(1) - scale.getPixelForValue(0)
                           : (chart.chartArea.right - chart.chartArea.left);
      var start = scale.getPixelForValue(Math.min(index, count - 1));
      if (scale.options.offset) start -= step / 2;  // bars: a bucket spans its bar's slot
      return start + (at - index) * step;
    }
    function nearest(chart, x) {
      var best = -1, distance = 6;
      notes.forEach(function (note, i) {
        var d = Math.abs(xOf(chart, note.at) - x);
        if (d <= distance) { best = i; distance = d; }
      });
      return best;
    }
    return {
      id: "umAnnotations",
      afterDatasetsDraw: function (chart) {
        var area = chart.chartArea, ctx = chart.ctx;
        ctx.save();
        ctx.font = "11px system-ui, sans-serif";
        ctx.textBaseline = "top";
        notes.forEach(function (note, i) {
          var x = Math.round(xOf(chart, note.at)) + 0.5;
          ctx.strokeStyle = NOTE_COLOR;
          ctx.lineWidth = i === hovered ? 2 : 1;
          ctx.setLineDash([5, 4]);
          ctx.beginPath();
          ctx.moveTo(x, area.top);
          ctx.lineTo(x, area.bottom);
          ctx.stroke();
          ctx.setLineDash([]);
          var label = shorten(note.text, 24);
          var width = ctx.measureText(label).width;
          var left = x + 3 + width > area.right ? x - 3 - width : x + 3;
          var top = area.top + 2 + (i % 3) * 13;  // staggered, so close notes do not overlap
          ctx.fillStyle = "rgba(255,255,255,0.85)";
          ctx.fillRect(left - 1, top - 1, width + 2, 13);
          ctx.fillStyle = NOTE_COLOR;
          ctx.fillText(label, left, top);
        });
        if (hovered >= 0) drawNoteBox(chart, notes[hovered], xOf(chart, notes[hovered].at));
        ctx.restore();
      },
      afterEvent: function (chart, args) {
        var event = args.event;
        var now = event.type === "mouseout" ? -1 : nearest(chart, event.x);
        if (now !== hovered) { hovered = now; args.changed = true; }
      }
    };
  }

  function drawNoteBox(chart, note, x) {
    var area = chart.chartArea, ctx = chart.ctx;
    var lines = [localTime(note.time).slice(0, 16)];
    var words = note.text.split(" "), line = "";
    ctx.font = "12px system-ui, sans-serif";
    words.forEach(function (word) {  // wrap at 260 pixels, at most 6 lines
      var next = line ? line + " " + word : word;
      if (line && ctx.measureText(next).width > 260) { lines.push(line); line = word; }
      else line = next;
    });
    if (line) lines.push(line);
    if (lines.length > 7) lines = lines.slice(0, 6).concat(["\u2026"]);
    var width = Math.max.apply(null, lines.map(function (l) { return ctx.measureText(l).width; }));
    var boxWidth = Math.min(width, 260) + 12, boxHeight = lines.length * 15 + 8;
    var left = Math.max(area.left, Math.min(x + 6, area.right - boxWidth));
    var top = area.top + 42;
    ctx.fillStyle = "rgba(33,33,33,0.9)";
    ctx.fillRect(left, top, boxWidth, boxHeight);
    ctx.fillStyle = "#fff";
    ctx.textBaseline = "top";
    lines.forEach(function (l, i) {
      ctx.font = (i === 0 ? "bold " : "") + "12px system-ui, sans-serif";
      ctx.fillText(l, left + 6, top + 4 + i * 15, 260);
    });
  }

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll(".um-chart-spec").forEach(function (node) {
      var holder = node.parentElement;
      var canvas = holder.querySelector("canvas");
      if (!canvas || canvas.dataset.drawn) return;
      canvas.dataset.drawn = "1";
      try {
        var spec = JSON.parse(node.textContent);
        if (spec.kind === "interval") {  // one bar per variant, each 3rem high
          canvas.parentElement.style.height = (5 + 3 * spec.labels.length) + "rem";
        }
        new window.Chart(canvas, config(spec));
      } catch (err) {
        canvas.replaceWith(document.createTextNode("Chart unavailable: " + err.message));
      }
    });
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;  // never innerHTML: event names and ids are untrusted
    row.appendChild(td);
  }

  // "2026-12-04 21:54:10" in the app's time zone (UMETRICS_TIMEZONE), like the server renders.
  function localTime(iso) {
    var zone = document.body.dataset.timeZone || "UTC";
    try {
      return new Intl.DateTimeFormat("sv-SE", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
      }).format(new Date(iso));
    } catch (err) {
      return iso.slice(0, 19).replace("T", " ");
    }
  }

  function timeCell(row, iso) {
    var td = document.createElement("td");
    var time = document.createElement("time");
    time.dateTime = iso;
    time.title = iso;
    time.textContent = localTime(iso);
    td.appendChild(time);
    row.appendChild(td);
  }

  function startLiveFeed() {
    var table = document.getElementById("um-live");
    if (!table) return;
    // A distinct id opens its person's page, as in the rows the server rendered.
    var personUrl = table.dataset.personUrl || "";
    function personCell(row, id) {
      var td = document.createElement("td");
      var link = document.createElement("a");
      link.href = personUrl + (personUrl.indexOf("?") < 0 ? "?" : "&") +
        "distinct_id=" + encodeURIComponent(id);
      link.textContent = id;
      td.appendChild(link);
      row.appendChild(td);
    }
    var body = document.body;
    var seconds = parseInt(table.dataset.refreshSeconds || "5", 10);
    var url = body.dataset.apiBase + "/query/live?limit=50&scope_id=" +
      encodeURIComponent(body.dataset.scopeId);
    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (feed) {
          var tbody = table.querySelector("tbody");
          var rows = document.createDocumentFragment();
          feed.events.slice(0, 50).forEach(function (e) {
            var tr = document.createElement("tr");
            timeCell(tr, e.timestamp); cell(tr, e.event); personCell(tr, e.distinct_id);
            rows.appendChild(tr);
          });
          tbody.replaceChildren(rows);
          var count = document.getElementById("um-live-count");
          if (count) count.textContent = feed.count.toLocaleString("en-US");
          table.dataset.updatedAt = String(Date.now());
        })
        .catch(function () { /* keep the last rows; try again next tick */ })
        .finally(function () { setTimeout(refresh, seconds * 1000); });
    }
    setTimeout(refresh, seconds * 1000);
  }

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function autoSubmit() {  // a select that submits its form when changed (no inline handler)
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    startLiveFeed();
    confirmForms();
    autoSubmit();
  });
})();
