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
