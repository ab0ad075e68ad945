// sn19 dashboard: progressive enhancement only; every page works without it.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
});
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
// The main navigation folds behind a "Menu" button on narrow screens (without JavaScript it
// wraps onto as many lines as it needs instead).
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("menu-button");
  const header = button && button.closest(".topbar");
  if (!button || !header) return;
  header.classList.add("menu-ready");
  button.hidden = false;
  const close = () => {
    header.classList.remove("menu-open");
    button.setAttribute("aria-expanded", "false");
  };
  button.addEventListener("click", () => {
    const open = !header.classList.contains("menu-open");
    header.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && header.classList.contains("menu-open")) {
      close();
      button.focus();
    }
  });
});
