/* @jupyter-widgets/html-manager 1.x typesets widget text with MathJax 2's MathJax.Hub.Queue; the
   book loads MathJax 3 (sphinx-mathjax-offline), which has no Hub. Give it one that asks MathJax 3
   to typeset, so the widgets' stored states render without a script error. */
(function () {
  function shim() {
    if (window.MathJax && !window.MathJax.Hub) {
      window.MathJax.Hub = {
        Queue: function () { if (window.MathJax.typesetPromise) { window.MathJax.typesetPromise(); } }
      };
    }
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim, true);
})();

/* Search results: Sphinx builds each snippet from the page's HTML text, where a formula is still
   its TeX source (MathJax typesets it only on the page itself). Replace every formula by "(formula)"
   before the snippet is cut, so snippets never show raw TeX. */
(function () {
  function plainSnippets() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.htmlToText.lakt) { return; }
    const original = Search.htmlToText;
    const formula = /<(span|div) class="math[^"]*">[\s\S]*?<\/\1>/g;
    Search.htmlToText = function (htmlString, anchor) {
      return original.call(this, htmlString.replace(formula, "(formula)"), anchor);
    };
    Search.htmlToText.lakt = true;
  }
  plainSnippets();
  document.addEventListener("DOMContentLoaded", plainSnippets, true);
})();
