// The seat console and the supervisor page: live parts fed by server-sent events, and the
// console's buttons sent without leaving the page (the screen pop stays up). The forms also
// work without this script, one page load each.
(function () {
  "use strict";

  // Times in state and waits count up between updates.
  setInterval(function () {
    document.querySelectorAll("[data-secs]").forEach(function (el) {
      var secs = parseFloat(el.dataset.secs) + 1;
      el.dataset.secs = String(secs);
      el.textContent = String(Math.round(secs));
    });
  }, 1000);

  function now() {
    return performance.timeOrigin + performance.now();
  }

  var root = document.getElementById("console");
  if (root) {
    var pop = document.getElementById("pop");
    var state = document.getElementById("seat-state");
    var queue = document.getElementById("queue");
    var wrapCall = document.getElementById("wrap-call");
    var message = document.getElementById("console-message");
    var show = function (text, error) {
      message.textContent = text;
      message.className = error ? "error" : "flash";
      message.hidden = false;
    };
    var events = new EventSource(root.dataset.events);
    events.addEventListener("pop", function (e) {
      var d = JSON.parse(e.data);
      pop.innerHTML = d.html;
      wrapCall.value = d.call;
      // How long after the engine offered the call (its event's time) the pop is in the
      // page, and then on screen (the next frame).
      pop.dataset.popMs = (now() - d.at * 1000).toFixed(1);
      requestAnimationFrame(function () {
        pop.dataset.paintMs = (now() - d.at * 1000).toFixed(1);
      });
    });
    events.addEventListener("seat", function (e) {
      var d = JSON.parse(e.data);
      state.textContent = d.label;
      state.dataset.state = d.state;
    });
    events.addEventListener("queue", function (e) {
      queue.innerHTML = JSON.parse(e.data).html;
    });
    events.addEventListener("connected", function (e) {
      pop.dataset.connected = JSON.parse(e.data).call;
    });
    events.addEventListener("ended", function (e) {
      pop.dataset.ended = JSON.parse(e.data).call;
    });
    // A click-to-dial's progress; the wrap-up is for the customer's call once dialled.
    events.addEventListener("dial", function (e) {
      var d = JSON.parse(e.data);
      pop.dataset.dial = d.action;
      if (d.call) {
        wrapCall.value = d.call;
      }
    });
    // Hold and transfer steps of this seat's call; a hold reminder stands out.
    var callStatus = document.getElementById("call-status");
    events.addEventListener("call", function (e) {
      var d = JSON.parse(e.data);
      callStatus.textContent = d.text;
      callStatus.dataset.state = d.state;
      callStatus.dataset.step = d.step || "";
      callStatus.className = d.reminder ? "error" : "";
    });
    events.addEventListener("down", function (e) {
      show(JSON.parse(e.data).message, true);
    });
    // Each button's answer is shown as it comes; an answer overtaken by a later
    // request's (a hang-up whose engine work ends after the dial clicked next) is old
    // news and is dropped. data-replies counts the answers handled, shown or not.
    var sent = 0;
    var shownFor = 0;
    var post = function (form, body) {
      var seq = ++sent;
      var answer = function (text, error) {
        message.dataset.replies = String(Number(message.dataset.replies || 0) + 1);
        if (seq > shownFor) {
          shownFor = seq;
          show(text, error);
        }
      };
      fetch(form.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRF-Token": root.dataset.csrf}
      }).then(function (res) {
        return res.json();
      }).then(function (d) {
        answer(d.message, !d.ok);
      }).catch(function () {
        answer(root.dataset.failed, true);
      });
    };
    document.querySelectorAll("form.js-post").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var body = new FormData(form);
        // A form with several submit buttons (blind or consult) says which was pressed.
        if (e.submitter && e.submitter.name) {
          body.set(e.submitter.name, e.submitter.value);
        }
        post(form, body);
      });
    });
    // Click-to-dial from the screen pop: the pop is replaced with each call, so its forms
    // are found by delegation. They send the customer and which of their numbers, never a
    // number; the seat's phone rings first, and the dial's progress comes back as "dial"
    // events.
    document.addEventListener("submit", function (e) {
      var form = e.target;
      if (!form.classList || !form.classList.contains("js-dial")) {
        return;
      }
      e.preventDefault();
      post(form, new FormData(form));
    });
  }

  var live = document.getElementById("live");
  if (live) {
    var feed = new EventSource(live.dataset.events);
    feed.addEventListener("live", function (e) {
      live.innerHTML = JSON.parse(e.data).html;
    });
  }
}());
