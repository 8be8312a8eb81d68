// The seat console's knowledge-base panel: the search shows its results in the panel
// (a fragment from /kb/panel) instead of opening the knowledge base in a new tab, so the
// call stays in view. Without this script the form still works, in the new tab.
(function () {
  var panel = document.getElementById("kb-panel");
  if (!panel) { return; }
  var form = document.getElementById("kb-search");
  var results = document.getElementById("kb-results");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = form.elements.q.value;
    fetch(panel.dataset.panel + "?q=" + encodeURIComponent(q),
          {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (res) {
        if (!res.ok) { throw new Error(res.status); }
        return res.text();
      })
      .then(function (html) { results.innerHTML = html; })
      .catch(function () { form.submit(); });
  });
})();
