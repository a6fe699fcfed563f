// Splat's enhancements. Every page works without this file; it only adds:
// - copy buttons (DSNs, raw JSON),
// - the theme toggle without a page reload,
// - filters that apply when a drop-down changes,
// - live updates: poll /live.json, and when the change stamp moved, fetch the page again and swap its
//   [data-live-region] elements (unless the person is typing in one), and keep the queue pill current.
"use strict";
(function () {
  const POLL_MS = 5000;

  function copyText(text, button) {
    const done = () => {
      const label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(() => { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text) && done());
    } else if (fallbackCopy(text)) {
      done();
    }
  }

  // Clipboard API needs a secure context; plain http on a LAN host falls back to a hidden textarea.
  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  function enhance(root) {
    root.querySelectorAll("button.copy[hidden]").forEach((b) => { b.hidden = false; });
    root.querySelectorAll("input[data-select-on-focus]").forEach((input) => {
      input.addEventListener("focus", () => input.select());
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    if (button.dataset.copy !== undefined) {
      copyText(button.dataset.copy, button);
    } else if (button.dataset.copyTarget) {
      const target = document.getElementById(button.dataset.copyTarget);
      if (target) copyText(target.textContent, button);
    }
  });

  // Theme: set the same cookie the server's POST /theme sets, and flip the attribute in place.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-theme-toggle]");
    if (!button) return;
    event.preventDefault();
    const order = ["auto", "light", "dark"];
    const theme = button.value;
    document.cookie = "splat_theme=" + theme + "; Path=/; Max-Age=31536000; SameSite=Lax";
    document.documentElement.dataset.theme = theme;
    const next = order[(order.indexOf(theme) + 1) % order.length];
    button.value = next;
    button.title = "Colour scheme: " + theme + ". Switch to " + next + ".";
    const label = button.querySelector("[data-theme-label]");
    if (label) label.textContent = theme;
  });

  document.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-autosubmit]");
    if (form && event.target.tagName === "SELECT") form.submit();
  });

  function updateQueuePill(data) {
    const pill = document.querySelector("[data-queue-pill]");
    if (!pill) return;
    pill.classList.remove("ok", "warn", "bad", "unknown");
    pill.classList.add(data.queue_class || "unknown");
    const depth = pill.querySelector("[data-queue-depth]");
    if (depth) depth.textContent = data.queue_label || "?";
    if (data.queue_caption) pill.title = "Queue: " + data.queue_caption;
  }

  function busy(region) {
    const active = document.activeElement;
    return active && active !== document.body && region.contains(active) && active.matches("input, select, textarea");
  }

  async function refreshRegions() {
    const response = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
    if (!response.ok) return null;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    document.querySelectorAll("[data-live-region][id]").forEach((region) => {
      const fresh = doc.getElementById(region.id);
      if (fresh && !busy(region)) {
        region.replaceWith(fresh);
        enhance(fresh);
      }
    });
    return doc.body.dataset.stamp || null;
  }

  function startLive() {
    const url = document.body.dataset.liveUrl;
    if (!url) return;
    let stamp = document.body.dataset.stamp;
    const hasRegions = document.querySelector("[data-live-region]") !== null;
    let running = false;
    async function tick() {
      if (running || document.hidden) return;
      running = true;
      try {
        const response = await fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" });
        if (response.ok) {
          const data = await response.json();
          updateQueuePill(data);
          if (hasRegions && data.stamp && data.stamp !== stamp) {
            const fresh = await refreshRegions();
            stamp = fresh || data.stamp;
            document.body.dataset.stamp = stamp;
          }
        }
      } catch (e) {
        // Offline or restarting: try again on the next tick.
      } finally {
        running = false;
      }
    }
    setInterval(tick, POLL_MS);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  }

  function init() {
    enhance(document);
    startLive();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
