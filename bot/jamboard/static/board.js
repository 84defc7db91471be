// The jam board, live (bot/jamboard/page.py says which marks it relies on).
// Every few seconds it asks the jam's JSON with If-None-Match; when it changed, it fetches
// the page again and swaps in the parts that changed (never a playing player), and it
// ticks the countdown. The server escaped every text; nothing here builds HTML from data.
"use strict";

(function () {
  const main = document.getElementById("jam");
  if (!main || !window.fetch || !window.DOMParser) {
    return;
  }
  const EVERY = Number(main.dataset.every) || 3000; // ms between polls while the page is seen
  const HIDDEN_EVERY = 5 * EVERY; // and while it is in a background tab
  let etag = main.dataset.etag || null;
  let skew = 0; // the server's clock minus ours, from the Date header
  let reloadWhenQuiet = false;

  function playing() {
    return Array.from(document.querySelectorAll("audio")).some(function (a) {
      return !a.paused && !a.ended;
    });
  }

  function tick() {
    const time = document.getElementById("countdown");
    if (time) {
      const left = Math.round((Date.parse(time.getAttribute("datetime")) - (Date.now() + skew)) / 1000);
      if (left > 0) {
        const h = Math.floor(left / 3600);
        const m = Math.floor((left % 3600) / 60);
        const s = String(left % 60).padStart(2, "0");
        time.textContent = "in " + (h > 0 ? h + ":" + String(m).padStart(2, "0") : m) + ":" + s;
      } else {
        time.textContent = "now";
      }
    }
    if (reloadWhenQuiet && !playing()) {
      window.location.reload();
    }
  }

  function swap(fresh) {
    const next = fresh.getElementById("jam");
    if (!next) {
      return;
    }
    if (next.dataset.round !== main.dataset.round) {
      reloadWhenQuiet = true; // a new round: a new layout, once no one is listening
      return;
    }
    main.dataset.etag = next.dataset.etag;
    fresh.querySelectorAll("[data-item]").forEach(function (item) {
      const old = document.getElementById(item.id);
      if (old) {
        old.className = item.className;
      } else if (item.parentElement && document.getElementById(item.parentElement.id)) {
        document.getElementById(item.parentElement.id).appendChild(document.importNode(item, true));
      }
    });
    fresh.querySelectorAll("[data-live]").forEach(function (part) {
      const old = document.getElementById(part.id);
      const busy = old && Array.from(old.querySelectorAll("audio")).some(function (a) {
        return !a.paused; // a player in use stays as it is (the reader's volume, position)
      });
      if (old && !busy && !old.isEqualNode(part)) {
        old.replaceWith(document.importNode(part, true));
      }
    });
    tick();
  }

  async function refresh() {
    const answer = await fetch(window.location.pathname, { cache: "no-store" });
    if (answer.ok) {
      swap(new DOMParser().parseFromString(await answer.text(), "text/html"));
    }
  }

  async function poll() {
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const answer = await fetch(main.dataset.json, { headers: headers, cache: "no-store" });
      const date = answer.headers.get("Date");
      if (date) {
        skew = Date.parse(date) - Date.now();
      }
      if (answer.status === 200) {
        const now = answer.headers.get("ETag");
        if (now !== etag) {
          etag = now;
          await refresh();
        }
      }
    } catch (error) {
      // Offline for a moment, or the bot restarting: the next poll tries again.
    }
    window.setTimeout(poll, document.hidden ? HIDDEN_EVERY : EVERY);
  }

  const note = document.getElementById("live-note");
  if (note) {
    note.textContent = "This page updates itself.";
  }
  tick();
  window.setInterval(tick, 1000);
  window.setTimeout(poll, EVERY);
})();
