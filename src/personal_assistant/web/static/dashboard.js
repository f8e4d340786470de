/* The dashboard's one script (no inline script: the CSP forbids it). It only improves what
   works without it: the task form shows the fields of the chosen schedule kind and a live
   preview of the next firings; a delete asks first. */
(function () {
  "use strict";

  /* Whether a form's fields differ from what the page was served with: typed into before this
     script arrived (it is deferred, and a slow line delays it), or restored by the browser. */
  function edited(form) {
    return Array.prototype.some.call(form.elements, function (el) {
      if (el.type === "checkbox" || el.type === "radio") { return el.checked !== el.defaultChecked; }
      if (el.options) {
        var options = Array.prototype.slice.call(el.options);
        var served = options.findIndex(function (o) { return o.defaultSelected; });
        return el.selectedIndex !== Math.max(served, 0);
      }
      return "defaultValue" in el && el.value !== el.defaultValue;
    });
  }

  function showKind(form) {
    var kind = form.elements.kind.value;
    form.querySelectorAll("[data-kinds]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kinds").split(" ").indexOf(kind) < 0;
    });
  }

  function livePreview(form) {
    var target = document.getElementById("preview");
    var url = form.getAttribute("data-preview");
    var timer = null;
    var asked = 0;

    function refresh() {
      var mine = ++asked;
      var body = new URLSearchParams(new FormData(form));
      fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": form.elements.csrf.value },
      })
        .then(function (answer) {
          if (answer.redirected || (answer.status !== 200 && answer.status !== 422)) {
            throw new Error("no preview");
          }
          return answer.text();
        })
        .then(function (html) {
          if (mine === asked) { target.innerHTML = html; }
        })
        .catch(function () {
          if (mine === asked) {
            target.textContent = "The preview is not available (signed out?). The form still works.";
          }
        });
    }

    function changed() {
      showKind(form);
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    }

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    showKind(form);
    if (edited(form)) { refresh(); }
  }

  document.querySelectorAll("form[data-preview]").forEach(livePreview);
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
