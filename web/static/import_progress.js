// The progress bar of an import form (form[data-progress]): the upload's bytes, then the
// rows the server has checked and the write, asked of /imports/progress/<token> while the
// import request runs; its answer (the result or the problems) then replaces the page.
// Without this script the form posts as usual.
(function () {
  "use strict";
  function hex(bytes) {
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, k) { return String(values[k]); });
  }
  document.querySelectorAll("form[data-progress]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.FormData || !window.crypto || !window.fetch) {
        return;
      }
      ev.preventDefault();
      var token = hex(window.crypto.getRandomValues(new Uint8Array(16)));
      var data = new FormData(form);
      data.set("progress", token);
      var box = form.querySelector(".import-progress");
      var bar = box.querySelector("progress");
      var label = box.querySelector(".import-progress-label");
      var button = form.querySelector("button[type=submit]");
      var timer = null;
      function say(text, value, max) {
        label.textContent = text;
        if (value === null) {
          bar.removeAttribute("value");
        } else {
          bar.max = max;
          bar.value = value;
        }
      }
      function poll() {
        fetch(fill(box.dataset.url, {token: token}), {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (p) {
            if (!p) {
              return;
            }
            box.dataset.phase = p.phase;
            if (p.phase === "check") {
              say(fill(p.total ? box.dataset.check : box.dataset.checkCount,
                       {rows: p.rows.toLocaleString(), total: (p.total || 0).toLocaleString()}),
                  p.total ? Math.min(p.rows, p.total) : null, p.total || 1);
            } else if (p.phase === "write") {
              say(fill(box.dataset.write, {rows: p.rows.toLocaleString()}), null, 1);
            } else if (p.phase === "done") {
              say(box.dataset.done, 1, 1);
            }
          })
          .catch(function () {});
      }
      box.hidden = false;
      box.dataset.phase = "upload";
      button.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          say(fill(box.dataset.upload, {pct: Math.round(100 * e.loaded / e.total)}),
              e.loaded, e.total);
        }
      });
      xhr.upload.addEventListener("load", function () {
        say(box.dataset.sent, null, 1);
      });
      xhr.addEventListener("load", function () {
        window.clearInterval(timer);
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        window.clearInterval(timer);
        say(box.dataset.failed, 0, 1);
        button.disabled = false;
      });
      xhr.open("POST", form.action);
      xhr.send(data);
      // Until the server has the file, the figures are not there yet (404): asked anyway,
      // so a fast upload (or one the browser does not report) loses no step.
      timer = window.setInterval(poll, 250);
    });
  });
})();
