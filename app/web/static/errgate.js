// errgate's web page: small progressive extras. Every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons: hidden in the HTML, shown when the clipboard can be written.
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });

  // "Select all" in the error list: checks every error's box.
  document.querySelectorAll("input.select-all").forEach(function (all) {
    var form = all.form;
    all.hidden = false;
    all.addEventListener("change", function () {
      form.querySelectorAll("input[name='ids']").forEach(function (box) { box.checked = all.checked; });
    });
  });
});
