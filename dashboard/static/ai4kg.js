// Small behaviours, each optional: the pages work without JavaScript.
// A control marked data-autosubmit submits its form when it changes (the catalogue's facets, sort).
document.addEventListener("change", (event) => {
  const control = event.target.closest("[data-autosubmit]");
  if (control && control.form) control.form.requestSubmit();
});
/* ask and query */
// Ctrl+Enter (or Cmd+Enter) in a field marked data-submit-on-ctrl-enter submits its form (the SPARQL editor).
document.addEventListener("keydown", (event) => {
  const field = event.target.closest && event.target.closest("[data-submit-on-ctrl-enter]");
  if (field && field.form && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    field.form.requestSubmit();
  }
});
// A form marked data-busy says so (its text) while the next page loads: a question or a query can take seconds.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches || !form.matches("form[data-busy]")) return;
  const busy = form.querySelector(".busy");
  if (busy) busy.textContent = form.dataset.busy;
  form.setAttribute("aria-busy", "true");
});
// Coming back to a page (the browser's back-forward cache) shows it as it was before the submit.
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-busy]").forEach((form) => {
    form.removeAttribute("aria-busy");
    const busy = form.querySelector(".busy");
    if (busy) busy.textContent = "";
  });
});

// deployments and federations
// A form marked data-confirm asks before it is sent (deleting a deployment, revoking a client, stopping
// a federation); an element marked data-focus-on-load takes the focus when the page opens (a form's
// error summary, a client's key shown once), so keyboard and screen-reader users land on it.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("DOMContentLoaded", () => {
  const target = document.querySelector("[data-focus-on-load]");
  if (target) target.focus();
});
