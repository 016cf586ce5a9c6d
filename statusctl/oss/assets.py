"""The OSS's stylesheet and script, served from /static/ (the CSP allows scripts from 'self' only)."""

from __future__ import annotations

CSS = """\
*,*::before,*::after{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;background:#fafafa}
.oss-header img,.oss-footer img{max-width:100%;height:auto}
main.oss{max-width:42rem;margin:0 auto;padding:1rem}
.oss h1{font-size:1.5rem;margin:.5rem 0}
.oss h2{font-size:1.1rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #ddd;padding-bottom:.25rem}
.oss form{display:grid;gap:.75rem;max-width:24rem}
.oss label{display:grid;gap:.25rem;font-weight:600}
.oss input{font:inherit;font-size:16px;padding:.6rem;border:1px solid #999;border-radius:.4rem;width:100%}
.oss button{font:inherit;padding:.7rem 1rem;border:0;border-radius:.4rem;background:#0b57d0;color:#fff;cursor:pointer}
.oss .notice{padding:.75rem;border-radius:.4rem;background:#fdecea;color:#5f2120}
.oss .status{font-size:1.25rem;margin:.25rem 0}
.oss .badge{display:inline-block;padding:0 .5rem;border-radius:1rem;background:#e8f0fe;color:#0b3d91;font-size:.9rem}
.oss .muted{color:#555;font-size:.9rem}
.oss ul,.oss ol{list-style:none;margin:0;padding:0}
.oss li{padding:.6rem 0;border-bottom:1px solid #eee;overflow-wrap:anywhere}
.oss .timeline li{border-left:3px solid #0b57d0;padding-left:.75rem;margin-left:.25rem}
.oss .timeline time{display:block;font-weight:600}
.oss a{color:#0b57d0}
.oss .note{white-space:pre-line}
"""

JS = """\
(function () {
  var tz = "";
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
  if (!tz) { return; }
  var field = document.querySelector('input[name="tz"]');
  if (field) { field.value = tz; return; }
  if (document.querySelector("[data-oss-status]")) {
    var url = new URL(window.location.href);
    if (!url.searchParams.get("tz")) {
      url.searchParams.set("tz", tz);
      window.location.replace(url.toString());
    }
  }
})();
"""
