// Copy buttons: a button with data-copy="ID" copies the text of the element with that id.
// Text only (textContent), never HTML; the buttons stay hidden without this script.
(function () {
  'use strict';
  var buttons = document.querySelectorAll('button[data-copy]');
  for (var i = 0; i < buttons.length; i++) {
    (function (b) {
      var target = document.getElementById(b.getAttribute('data-copy') || '');
      if (!target) {
        return;
      }
      b.hidden = false;
      b.addEventListener('click', function () {
        var text = target.textContent || '';
        var done = function () { b.textContent = 'Copied'; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { select(target); });
        } else {
          select(target);
        }
      });
    }(buttons[i]));
  }
  // Without clipboard access (plain http on another name): select the text for Ctrl-C.
  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
}());
