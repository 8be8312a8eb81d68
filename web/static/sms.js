// The SMS form's counter: characters and how many messages the text goes as, counted as
// the box's PDU encoder does (GSM 7-bit: 160 alone, 153 a part, the extension characters
// counting two; anything else makes it UCS-2: 70 alone, 67 a part). The server counts
// again when it queues the message; the page works without this.
(function () {
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡" +
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ`¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€";

  function count(text) {
    var septets = 0;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      if (BASIC.indexOf(ch) >= 0) { septets += 1; }
      else if (EXTENDED.indexOf(ch) >= 0) { septets += 2; }
      else { septets = -1; break; }
    }
    if (!text.length) { return 0; }
    if (septets >= 0) { return septets <= 160 ? 1 : Math.ceil(septets / 153); }
    return text.length <= 70 ? 1 : Math.ceil(text.length / 67);
  }

  document.querySelectorAll("textarea[data-sms-counter]").forEach(function (area) {
    var out = document.getElementById(area.dataset.smsCounter);
    var max = parseInt(area.dataset.maxParts, 10);
    function update() {
      var parts = count(area.value);
      out.textContent = out.dataset.template.replace("{chars}", area.value.length)
        .replace("{parts}", parts);
      out.classList.toggle("error", parts > max);
    }
    area.addEventListener("input", update);
    update();
  });
})();

// The message list: while a message shown is still queued or being sent (and the engine
// says the modem works), the page reloads itself every few seconds to show how it ended.
(function () {
  var table = document.getElementById("sms-messages");
  if (!table || document.getElementById("sms-notice")) { return; }
  if (table.querySelector("tr[data-status=queued], tr[data-status=sending]")) {
    window.setTimeout(function () { window.location.reload(); }, 3000);
  }
})();
