// UC Appliance: the little the pages need besides htmx. Every page works without it.
(function () {
  "use strict";

  // The menu: on a narrow screen it folds behind its button, which says whether it is open.
  var narrow = window.matchMedia("(max-width: 640px)");

  function setMenu(button, open) {
    var menu = document.getElementById(button.getAttribute("aria-controls"));
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (menu) menu.classList.toggle("collapsed", !open);
  }

  function initMenu() {
    var button = document.querySelector(".menu-button");
    if (!button) return;
    button.hidden = false;
    setMenu(button, !narrow.matches);
    button.addEventListener("click", function () {
      setMenu(button, button.getAttribute("aria-expanded") !== "true");
    });
    narrow.addEventListener("change", function () { setMenu(button, !narrow.matches); });
  }

  // Editable cells (class "cell", hx-trigger "dblclick, edit"): Enter or F2 opens a focused
  // cell as double-click does. In the open box (data-cell), Enter keeps what was typed and
  // Escape puts back what was there; both close the box ("close" event) without saving.
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (!(el instanceof HTMLElement) || event.altKey || event.ctrlKey || event.metaKey) return;
    if (el.classList.contains("cell") && (event.key === "Enter" || event.key === "F2")) {
      event.preventDefault();
      el.dispatchEvent(new CustomEvent("edit", { bubbles: true }));
    } else if (el.hasAttribute("data-cell") && (event.key === "Enter" || event.key === "Escape")) {
      event.preventDefault();
      if (event.key === "Escape") el.value = el.defaultValue;
      el.dispatchEvent(new CustomEvent("close", { bubbles: true }));
    }
  });

  // Search as you type (macros.html): an empty box, or 3 characters or more, sends "query".
  // Shorter text waits for Enter: the search index needs 3 characters, and shorter text
  // scans the whole list, a second or more at a million contacts.
  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "q" || !box.closest("form.search")) return;
    var n = box.value.trim().length;
    if (n === 0 || n >= 3) box.dispatchEvent(new CustomEvent("query", { bubbles: true }));
  });

  // A table too wide for the screen scrolls inside its own box (app.css): the keyboard must
  // reach that box to scroll it, so it is focusable while, and only while, it scrolls.
  function markScrollers() {
    document.querySelectorAll("table, .table-wrap").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroller", "");
      } else if (!scrolls && box.hasAttribute("data-scroller")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroller");
      }
    });
  }

  function init() {
    initMenu();
    markScrollers();
    window.addEventListener("resize", markScrollers);
    document.body.addEventListener("htmx:afterSettle", markScrollers);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
