// Live updates for the overview and findings pages: follows /api/events (server-sent
// events) and applies each update with DOM calls and textContent only. Captured strings
// (messages, evidence, hosts, paths) are attacker-controlled: they are never parsed as
// HTML, and the page's CSP (Trusted Types with no policy) makes the browser refuse any
// HTML string sink anyway. The pages work without this script.
(function () {
  'use strict';
  var root = document.getElementById('live');
  if (!root || typeof EventSource !== 'function') {
    return;
  }
  var url = root.getAttribute('data-events') || '';
  // Only our own endpoint, whatever the attribute says.
  if (url.indexOf('/api/events?') !== 0) {
    return;
  }
  var MAX_ROWS = 500;
  var tbody = document.querySelector('[data-live-findings]');
  var empty = document.querySelector('[data-live-empty]');
  var status = document.querySelector('[data-live-status]');
  var added = 0;

  function say(text) {
    if (status) {
      status.hidden = false;
      status.textContent = text;
    }
  }

  function setCounter(name, value) {
    var nodes = document.querySelectorAll('[data-counter="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = String(value);
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function link(href, text) {
    var a = el('a', '', text);
    a.setAttribute('href', href);
    return a;
  }

  var SEVERITIES = { error: 1, warning: 1, info: 1 };

  // The same cells as the server's finding_row.html.
  function row(f) {
    var tr = el('tr', 'live-new');
    var id = Number(f.id);
    tr.setAttribute('data-id', String(id));
    // The exchange first: it is what a narrow screen must keep in reach.
    var td = el('td');
    if (f.exchange !== null && f.exchange !== undefined) {
      var x = Number(f.exchange);
      td.appendChild(link('/exchanges/' + x, '#' + x));
    }
    tr.appendChild(td);
    var sev = SEVERITIES[f.severity] ? f.severity : 'info';
    td = el('td');
    td.appendChild(el('span', 'sev sev-' + sev, sev));
    tr.appendChild(td);
    td = el('td');
    td.appendChild(link('/findings?rule=' + encodeURIComponent('"' + String(f.rule) + '"'), f.rule));
    tr.appendChild(td);
    td = el('td', '', (f.method || '-') + ' ' + (f.host || ''));
    td.appendChild(el('code', '', f.path_template || ''));
    tr.appendChild(td);
    tr.appendChild(el('td', 'num', f.status === null || f.status === undefined ? '' : Number(f.status)));
    td = el('td', '', f.message);
    td.appendChild(el('div', 'evidence', f.evidence));
    tr.appendChild(td);
    return tr;
  }

  function apply(u) {
    if (u.severity) {
      setCounter('severity-error', u.severity.error);
      setCounter('severity-warning', u.severity.warning);
      setCounter('severity-info', u.severity.info);
    }
    (u.runs || []).forEach(function (r) {
      var p = 'run-' + Number(r.id) + '-';
      ['packets', 'bytes', 'kernel_drops', 'internal_drops', 'decode_errors', 'exchanges', 'findings']
        .forEach(function (k) { setCounter(p + k, r[k]); });
      setCounter(p + 'state', r.state || (r.finished ? 'finished' : 'running or stopped'));
      setCounter(p + 'state-head', r.state || (r.finished ? 'finished' : 'running or stopped'));
    });
    var list = u.findings || [];
    if (tbody && list.length) {
      // Newest first in the event; insert oldest first so the newest ends on top.
      for (var i = list.length - 1; i >= 0; i--) {
        if (tbody.querySelector('tr[data-id="' + Number(list[i].id) + '"]')) {
          continue;
        }
        tbody.insertBefore(row(list[i]), tbody.firstChild);
        added++;
      }
      while (tbody.rows.length > MAX_ROWS) {
        tbody.removeChild(tbody.lastChild);
      }
      var table = tbody.closest('table');
      if (table) {
        table.hidden = false;
      }
      if (empty) {
        empty.hidden = true;
      }
    }
    var skipped = Number(u.skipped) || 0;
    say('Live: ' + added + ' new finding' + (added === 1 ? '' : 's') + ' since the page loaded' +
      (skipped > 0 ? ' (a burst: about ' + skipped + ' more not shown; reload for all)' : '') + '.');
  }

  var source = new EventSource(url);
  source.addEventListener('update', function (e) {
    var u;
    try {
      u = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    apply(u);
  });
  source.addEventListener('problem', function (e) {
    say('Live updates paused: ' + e.data);
  });
  source.addEventListener('error', function () {
    say('Live updates disconnected; retrying…');
  });
}());
