/* The date-range control: a preset fills the date fields with its days (so switching to
   custom dates starts from it); typing a date switches the select to custom dates. */
(function () {
  "use strict";

  document.querySelectorAll("[data-date-range]").forEach(function (box) {
    var select = box.querySelector("select[name=date_range]");
    var from = box.querySelector("input[name=date_from]");
    var to = box.querySelector("input[name=date_to]");
    if (!select || !from || !to) return;
    function fill() {
      var option = select.options[select.selectedIndex];
      if (option && option.dataset.from) {
        from.value = option.dataset.from;
        to.value = option.dataset.to;
      }
    }
    function custom() { select.value = ""; }
    fill();
    select.addEventListener("change", fill);
    from.addEventListener("input", custom);
    to.addEventListener("input", custom);
  });
})();
