/* Report forms: "add" copies the last row of a fieldset (emptied), "remove" drops a row.
   Without this script the forms still work: one blank row is always offered. */
(function () {
  "use strict";

  function rowsOf(button) { return button.closest("[data-rows]"); }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.matches("[data-add-row]")) {
      var holder = rowsOf(target);
      var rows = holder.querySelectorAll("[data-row]");
      if (!rows.length) return;
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      copy.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
      rows[rows.length - 1].after(copy);
      var first = copy.querySelector("input, select");
      if (first) first.focus();
    } else if (target.matches("[data-remove-row]")) {
      var row = target.closest("[data-row]");
      var all = rowsOf(target).querySelectorAll("[data-row]");
      if (all.length > 1) {
        row.remove();
      } else {
        row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      }
    }
  });
})();
