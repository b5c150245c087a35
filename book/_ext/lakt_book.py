"""The book's one Sphinx extension: pages that log no console error.

* Every script tag once per page: Jupyter Book 1.x registers sphinx-thebe's configuration
  script twice, so every page declared ``const THEBE_JS_URL`` twice (a SyntaxError in the
  console). A repeated script (same file, same inline body; an inline script's file is None
  or "" depending on who added it) is dropped before the page is written.
* A default colour mode: pydata-sphinx-theme's page script reads the reader's stored mode or,
  when none is stored, ``default_mode`` of the page context -- empty unless set, which it reports as
  "Got invalid theme mode" on a first visit. The book's figures are drawn on white: light.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return None
    seen, kept = set(), []
    for js in scripts:
        key = (getattr(js, "filename", str(js)) or None,   # an inline script is filed as None or as ""
               tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept   # in place: the list the page is rendered from
    return None


def _default_mode(app, config):
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")   # pydata-sphinx-theme reads it from the page context
    config.html_context = context


def setup(app):
    # last: the repeated scripts are added by other html-page-context handlers (as are MathJax's, on
    # the pages with math), so this one runs after all of them
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    app.connect("config-inited", _default_mode, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
