/* Experiment form: add and remove variant and metric rows. Without JavaScript the form still
   works: it always has one blank row of each, and a row with an empty key is ignored. */
(function () {
  "use strict";

  function clearRow(row) {
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    row.querySelectorAll("select").forEach(function (select) {
      if (select.name === "metric_role") select.value = "secondary";
      else select.selectedIndex = 0;
    });
  }

  function wireRemove(container, row) {
    var button = row.querySelector(".um-row-remove");
    if (!button) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      if (container.children.length > 1) row.remove();
      else clearRow(row);
    });
  }

  function setup(containerId, addId) {
    var container = document.getElementById(containerId);
    var add = document.getElementById(addId);
    if (!container || !add) return;
    Array.prototype.forEach.call(container.children, function (row) { wireRemove(container, row); });
    add.hidden = false;
    add.addEventListener("click", function () {
      var last = container.lastElementChild;
      var row = last.cloneNode(true);
      clearRow(row);
      container.appendChild(row);
      wireRemove(container, row);
      var first = row.querySelector("input");
      if (first) first.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setup("um-variant-rows", "um-add-variant");
    setup("um-metric-rows", "um-add-metric");
  });
})();
