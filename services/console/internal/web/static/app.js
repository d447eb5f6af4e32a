// apitosms console: progressive enhancement only (every flow works without it).
// Copy buttons copy the value of the input they name.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button.copy");
  if (!b) return;
  var input = document.getElementById(b.getAttribute("data-copy"));
  if (!input) return;
  input.select();
  if (navigator.clipboard) {
    navigator.clipboard.writeText(input.value).then(function () { b.textContent = "Copied"; });
  }
});

// Upload forms with data-progress: send with XHR to show the upload's
// progress, then go where the server redirected.
document.addEventListener("submit", function (e) {
  var f = e.target;
  var bar = f.getAttribute("data-progress") && document.getElementById(f.getAttribute("data-progress"));
  if (!bar || !window.FormData) return;
  e.preventDefault();
  var x = new XMLHttpRequest();
  x.open("POST", f.action);
  bar.hidden = false;
  x.upload.onprogress = function (p) { if (p.lengthComputable) bar.value = Math.round(100 * p.loaded / p.total); };
  x.onload = function () { window.location = x.responseURL || window.location.href; };
  x.onerror = function () { bar.hidden = true; alert("Upload failed"); };
  x.send(new FormData(f));
});
