// Progressive enhancement for the consoles. Every page works without this file; with it:
// - in lists, j / k move between rows and Enter (or o) opens the current one, / jumps to the filters;
// - forms marked data-confirm ask before a destructive action;
// - an error summary takes focus, so a screen reader announces it at once.
(function () {
  "use strict";

  function typing(event) {
    var target = event.target;
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table[data-keyboard] tbody tr"));
  }

  var current = -1;

  function select(index) {
    var list = rows();
    if (!list.length) return;
    if (current >= 0 && list[current]) list[current].classList.remove("is-current");
    current = Math.max(0, Math.min(index, list.length - 1));
    var row = list[current];
    row.classList.add("is-current");
    var link = row.querySelector("a");
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event)) return;
    if (event.key === "j") { select(current + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current - 1); event.preventDefault(); }
    else if (event.key === "o") {
      var row = rows()[current];
      var link = row && row.querySelector("a");
      if (link) link.click();
    } else if (event.key === "/") {
      var filter = document.querySelector(".filters input, .filters select");
      if (filter) { filter.focus(); event.preventDefault(); }
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();
  });
})();
