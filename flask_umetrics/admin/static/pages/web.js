/* The Web page: each table row's bar is as wide as its share of the top row's visitors.
   The share is in data-share (CSP forbids style attributes); without this script the
   tables read the same, without bars. */
(function () {
  "use strict";

  function sizeBars() {
    document.querySelectorAll(".um-web-bar[data-share]").forEach(function (bar) {
      var share = parseFloat(bar.getAttribute("data-share"));
      if (isFinite(share)) bar.style.width = Math.max(0, Math.min(100, share)) + "%";
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", sizeBars);
  } else {
    sizeBars();
  }
})();
