// Small behaviours, each optional: the pages work without JavaScript.
// A control marked data-autosubmit submits its form when it changes (the catalogue's facets, sort).
document.addEventListener("change", (event) => {
  const control = event.target.closest("[data-autosubmit]");
  if (control && control.form) control.form.requestSubmit();
});
