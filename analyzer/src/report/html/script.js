// Optional interaction only: the report is complete without it.
(function () {
  "use strict";
  var doc = document;
  doc.documentElement.setAttribute("data-interactive", "on");

  // Legend: show one cause at a time on the chart.
  var series = doc.querySelectorAll("svg.timeline .series");
  var buttons = doc.querySelectorAll(".legend button[data-cause]");
  buttons.forEach(function (b) {
    b.addEventListener("click", function () {
      var on = b.getAttribute("aria-pressed") !== "true";
      buttons.forEach(function (x) { x.setAttribute("aria-pressed", "false"); });
      b.setAttribute("aria-pressed", on ? "true" : "false");
      series.forEach(function (s) {
        s.classList.toggle("dim", on && s.getAttribute("data-cause") !== b.getAttribute("data-cause"));
      });
    });
  });

  // Failures table: filter by cause and by text.
  var filters = doc.getElementById("failure-filters");
  var table = doc.getElementById("failure-table");
  if (filters && table) {
    filters.hidden = false;
    var cause = doc.getElementById("filter-cause");
    var text = doc.getElementById("filter-text");
    var shown = doc.getElementById("filter-shown");
    var rows = table.tBodies[0] ? table.tBodies[0].rows : [];
    var apply = function () {
      var c = cause.value, t = text.value.toLowerCase(), n = 0;
      for (var i = 0; i < rows.length; i++) {
        var r = rows[i];
        var ok = (!c || r.getAttribute("data-cause") === c) &&
          (!t || r.textContent.toLowerCase().indexOf(t) !== -1);
        r.hidden = !ok;
        if (ok) { n++; }
      }
      shown.textContent = n + " of " + rows.length + " rows shown";
    };
    cause.addEventListener("change", apply);
    text.addEventListener("input", apply);
    apply();
  }

  // Printing shows everything, collapsed evidence included.
  var opened = [];
  window.addEventListener("beforeprint", function () {
    doc.querySelectorAll("details:not([open])").forEach(function (d) {
      d.open = true;
      opened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
})();
