// The only script: a select marked data-autosubmit reloads the page with just its own value
// (the quote calculator then shows the fields of the chosen product). Pages work without it.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () {
    window.location.search = "?" + encodeURIComponent(select.name) + "=" +
      encodeURIComponent(select.value);
  });
});
