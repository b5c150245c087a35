"""The book's one Sphinx extension: every script tag once per page.

Jupyter Book 1.x registers sphinx-thebe's configuration script twice (its reading hook runs
once per read pass), so every page declared ``const THEBE_JS_URL`` twice and logged a
console error. This drops a repeated script (same file, same inline body) before the page
is written.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = (str(js), tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
