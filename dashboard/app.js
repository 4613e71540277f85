// bordergate compliance dashboard: reads the admin listener's /api/
// documents (the same as `bordergate audit report|blocked|volumes --json`)
// and draws them with plain DOM elements. No framework, nothing fetched from
// elsewhere. Figures carry data-testid / data-* attributes so tests can read
// what is shown.
'use strict';

(function () {
  const TOKEN_KEY = 'bordergate.admin_token';
  const CHINA_MS = 8 * 3600 * 1000;
  const OUTCOMES = ['allow', 'deidentify', 'block'];
  const REASONS = {
    no_basis: 'no legal basis under the rule, and its fallback is block / de-identify',
    never_export: 'a never-export category (credentials, secrets)',
    recipient_denylisted: 'the recipient is on a PIPL Art. 42 list',
    undecodable: 'the body could not be decoded',
    opaque_body: 'content type not inspected and opaque bodies not allowed',
    no_recipient: 'PI would leave on a route that declares no recipient',
    no_transfer_mechanism: 'no standard contract, certification or assessment',
    transfer_mechanism_expired: 'the transfer mechanism has expired',
    operator_failed: 'a de-identification operator could not run',
  };
  const STATUS = {
    none: 'below every threshold: no mechanism needed because of the volume',
    standard_contract_or_certification: 'standard contract or certification needed (Art. 8)',
    security_assessment: 'CAC security assessment needed (Art. 7)',
  };
  let regionNames = null;
  try {
    regionNames = new Intl.DisplayNames(['en'], { type: 'region' });
  } catch (e) {
    regionNames = null;
  }

  const $ = (id) => document.getElementById(id);
  const T = (testid) => document.querySelector('[data-testid="' + testid + '"]');
  const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-') || k === 'title') e.setAttribute(k, String(v));
      else e[k] = v;
    }
    for (const c of children || []) if (c) e.appendChild(c);
    return e;
  }

  function chinaDate(ms) {
    return new Date(ms + CHINA_MS).toISOString().slice(0, 10);
  }

  function chinaTime(iso) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return iso || '';
    return new Date(ms + CHINA_MS).toISOString().slice(0, 19).replace('T', ' ');
  }

  function countryName(cc) {
    if (!cc) return 'unknown country';
    let name = null;
    try {
      name = regionNames ? regionNames.of(cc) : null;
    } catch (e) {
      name = null;
    }
    return name && name !== cc ? cc + ' · ' + name : cc;
  }

  // ---------------------------------------------------------------- data

  async function api(path) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    const r = await fetch(path, { headers, cache: 'no-store' });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (r.status === 401) {
      const err = new Error('the admin token is missing or wrong');
      err.auth = true;
      throw err;
    }
    if (!r.ok) throw new Error(path.split('?')[0] + ': ' + ((body && body.error) || r.status));
    return body;
  }

  function period() {
    const q = new URLSearchParams(location.search);
    const today = chinaDate(Date.now());
    const weekAgo = chinaDate(Date.now() - 6 * 86400000);
    return { from: q.get('from') || weekAgo, to: q.get('to') || today };
  }

  function days(from, to) {
    return Math.round((Date.parse(to) - Date.parse(from)) / 86400000) + 1;
  }

  // ---------------------------------------------------------------- drawing

  function stackSegments(outcomes, total, scale) {
    const segs = [];
    for (const o of OUTCOMES) {
      const n = outcomes[o] || 0;
      if (n === 0) continue;
      const s = el('div', { class: 'seg ' + o, title: o + ': ' + n });
      s.style[scale] = (100 * n) / total + '%';
      segs.push(s);
    }
    return segs;
  }

  function drawCountries(doc) {
    const box = $('countries');
    box.replaceChildren();
    const groups = doc.groups || [];
    if (groups.length === 0) box.appendChild(el('p', { class: 'empty', text: 'No transfers in the period.' }));
    const max = Math.max(1, ...groups.map((g) => g.decisions));
    for (const g of groups) {
      const track = el('div', { class: 'track' }, stackSegments(g.outcomes, max, 'width'));
      box.appendChild(
        el('div', {
          class: 'row', 'data-testid': 'country-row', 'data-country': g.key === null ? '' : g.key,
          'data-decisions': g.decisions, 'data-allow': g.outcomes.allow,
          'data-deidentify': g.outcomes.deidentify, 'data-block': g.outcomes.block,
        }, [
          el('span', { class: 'label', text: countryName(g.key) + (g.cross_border === 0 ? ' (domestic)' : ''), title: countryName(g.key) }),
          track,
          el('span', { class: 'value', text: fmt(g.decisions) }),
        ]));
    }
  }

  function timeKeys(p, byHour) {
    const keys = [];
    const start = Date.parse(p.from + 'T00:00:00Z');
    const end = Date.parse(p.to + 'T00:00:00Z') + 86400000;
    const step = byHour ? 3600000 : 86400000;
    if ((end - start) / step > 400) return null;
    for (let t = start; t < end; t += step) {
      const iso = new Date(t).toISOString();
      keys.push(byHour ? iso.slice(0, 13) : iso.slice(0, 10));
    }
    return keys;
  }

  function drawTimeline(doc, p, byHour) {
    const box = $('timeline');
    box.replaceChildren();
    $('time-unit').textContent = 'requests per ' + (byHour ? 'hour' : 'day') + ' (China time), stacked by what happened';
    const byKey = new Map((doc.groups || []).map((g) => [g.key, g]));
    const keys = timeKeys(p, byHour) || [...byKey.keys()];
    const max = Math.max(1, ...(doc.groups || []).map((g) => g.decisions));
    const axis = el('div', { class: 'axis' });
    const every = Math.max(1, Math.ceil(keys.length / 12));
    keys.forEach((k, i) => {
      const g = byKey.get(k) || { decisions: 0, outcomes: { allow: 0, deidentify: 0, block: 0 } };
      const stack = el('div', { class: 'stack' }, stackSegments(g.outcomes, g.decisions || 1, 'height'));
      stack.style.height = (100 * g.decisions) / max * 0.85 + '%';
      box.appendChild(el('div', {
        class: 'col', 'data-testid': 'time-bar', 'data-key': k, 'data-decisions': g.decisions,
        'data-allow': g.outcomes.allow, 'data-deidentify': g.outcomes.deidentify, 'data-block': g.outcomes.block,
        title: k + ': ' + g.decisions + ' requests',
      }, [g.decisions > 0 ? el('span', { class: 'total', text: fmt(g.decisions) }) : null, stack]));
      // Hours: "HH:00", and the date at each midnight; days: "MM-DD".
      const hourLabel = () => (k.slice(11) === '00' ? k.slice(5, 10) : k.slice(11) + ':00');
      const label = i % every === 0 ? (byHour ? hourLabel() : k.slice(5)) : '';
      axis.appendChild(el('span', { text: label }));
    });
    box.after(axis);
    const old = box.parentNode.querySelectorAll('.axis');
    for (let i = 0; i < old.length - 1; i++) old[i].remove();
  }

  function drawCategories(doc) {
    const box = $('categories');
    box.replaceChildren();
    const groups = (doc.groups || []).filter((g) => g.key !== null)
      .sort((a, b) => b.findings_left_as_pi - a.findings_left_as_pi || b.findings - a.findings || (a.key < b.key ? -1 : 1));
    if (groups.length === 0) box.appendChild(el('p', { class: 'empty', text: 'No personal information found in the period.' }));
    const max = Math.max(1, ...groups.map((g) => g.findings));
    for (const g of groups.slice(0, 12)) {
      const left = el('div', { class: 'seg left', title: 'left as PI: ' + g.findings_left_as_pi });
      left.style.width = (100 * g.findings_left_as_pi) / max + '%';
      const other = el('div', { class: 'seg other', title: 'de-identified, removed or blocked: ' + (g.findings - g.findings_left_as_pi) });
      other.style.width = (100 * (g.findings - g.findings_left_as_pi)) / max + '%';
      box.appendChild(el('div', {
        class: 'row', 'data-testid': 'category-row', 'data-category': g.key,
        'data-findings': g.findings, 'data-left': g.findings_left_as_pi,
      }, [
        el('span', { class: 'label', text: g.key + (g.sensitive_findings > 0 ? ' (sensitive)' : ''), title: g.key }),
        el('div', { class: 'track' }, [left, other]),
        el('span', { class: 'value', text: fmt(g.findings_left_as_pi) + ' / ' + fmt(g.findings) }),
      ]));
    }
  }

  function drawReasons(doc) {
    const body = $('reasons');
    body.replaceChildren();
    const groups = (doc.groups || []).filter((g) => g.key !== null && (g.outcomes.block > 0 || g.outcomes.deidentify > 0));
    if (groups.length === 0) {
      body.appendChild(el('tr', {}, [el('td', { class: 'empty', text: 'Nothing blocked or de-identified for a recorded reason.', colSpan: 4 })]));
    }
    for (const g of groups) {
      body.appendChild(el('tr', {
        'data-testid': 'reason-row', 'data-reason': g.key, 'data-block': g.outcomes.block,
        'data-deidentify': g.outcomes.deidentify,
      }, [
        el('td', { class: 'mono', text: g.key }),
        el('td', { text: REASONS[g.key] || '' }),
        el('td', { class: 'num', text: fmt(g.outcomes.block) }),
        el('td', { class: 'num', text: fmt(g.outcomes.deidentify) }),
      ]));
    }
  }

  function drawRules(doc) {
    const body = $('rules');
    body.replaceChildren();
    const removed = (g) => g.findings_by_action.remove + g.findings_by_action.remove_record;
    const groups = (doc.groups || []).filter((g) => g.key !== null && (g.findings_by_action.deidentify > 0 || removed(g) > 0))
      .sort((a, b) => (b.findings_by_action.deidentify + removed(b)) - (a.findings_by_action.deidentify + removed(a)) || (a.key < b.key ? -1 : 1));
    if (groups.length === 0) {
      body.appendChild(el('tr', {}, [el('td', { class: 'empty', text: 'Nothing de-identified in the period.', colSpan: 4 })]));
    }
    for (const g of groups) {
      body.appendChild(el('tr', {
        'data-testid': 'rule-row', 'data-rule': g.key, 'data-deidentify': g.outcomes.deidentify,
        'data-fields': g.findings_by_action.deidentify, 'data-removed': removed(g),
      }, [
        el('td', { class: 'mono', text: g.key }),
        el('td', { class: 'num', text: fmt(g.outcomes.deidentify) }),
        el('td', { class: 'num', text: fmt(g.findings_by_action.deidentify) }),
        el('td', { class: 'num', text: fmt(removed(g)) }),
      ]));
    }
  }

  function gauge(title, testid, n, contract, assessment) {
    const track = el('div', { class: 'track' });
    const fill = el('div', { class: 'fill' });
    fill.style.width = Math.min(100, (100 * n) / assessment) + '%';
    track.appendChild(fill);
    for (const m of [contract, assessment]) {
      const mark = el('div', { class: 'mark', title: fmt(m) });
      mark.style.left = 'calc(' + Math.min(100, (100 * m) / assessment) + '% - 1px)';
      track.appendChild(mark);
    }
    return el('div', { class: 'gauge', 'data-testid': testid, 'data-people': n, 'data-contract': contract, 'data-assessment': assessment }, [
      el('h3', { text: title + ': ' + fmt(n) + ' people' }),
      track,
      el('div', { class: 'marks' }, [
        el('span', { text: '0' }),
        el('span', { text: 'standard contract from ' + fmt(contract) + ' · security assessment from ' + fmt(assessment) }),
      ]),
    ]);
  }

  function drawVolumes(doc) {
    T('volumes-year').textContent = '(' + doc.year + ')';
    T('volumes-status').textContent = STATUS[doc.status] || doc.status;
    T('volumes-status').setAttribute('data-status', doc.status);
    const t = doc.thresholds;
    $('volumes').replaceChildren(
      gauge('Non-sensitive PI', 'volumes-non-sensitive', doc.non_sensitive, t.contract_non_sensitive, t.assessment_non_sensitive),
      gauge('Sensitive PI', 'volumes-sensitive', doc.sensitive, t.contract_sensitive, t.assessment_sensitive));
    const body = $('volume-recipients');
    body.replaceChildren();
    for (const r of doc.recipients || []) {
      body.appendChild(el('tr', {
        'data-testid': 'volume-recipient', 'data-recipient': r.recipient, 'data-people': r.people,
        'data-non-sensitive': r.non_sensitive, 'data-sensitive': r.sensitive,
      }, [
        el('td', { text: r.recipient || '(no recipient declared)' }),
        el('td', { class: 'num', text: fmt(r.non_sensitive) }),
        el('td', { class: 'num', text: fmt(r.sensitive) }),
        el('td', { class: 'num', text: fmt(r.people) }),
        el('td', { text: STATUS[r.status] || r.status }),
        el('td', { class: 'num', 'data-testid': 'volume-recipient-exempt', text: fmt(r.exempt ? r.exempt.people : 0) }),
      ]));
    }
    if ((doc.recipients || []).length === 0) {
      body.appendChild(el('tr', {}, [el('td', { class: 'empty', text: 'No personal information went abroad this year.', colSpan: 6 })]));
    }
    const dev = doc.people_by_device || 0;
    T('volumes-by-device').textContent = fmt(dev);
    T('volumes-by-device').setAttribute('data-value', dev);
    const x = doc.exempt || { people: 0, non_sensitive: 0, sensitive: 0 };
    T('volumes-exempt').textContent = fmt(x.people);
    T('volumes-exempt').setAttribute('data-value', x.people);
  }

  function drawBlocked(doc) {
    T('blocked-total').textContent = fmt(doc.blocked);
    T('blocked-total').setAttribute('data-value', doc.blocked);
    T('blocked-shown').textContent = fmt(doc.decisions.length);
    const body = $('blocked');
    body.replaceChildren();
    if (doc.decisions.length === 0) {
      body.appendChild(el('tr', {}, [el('td', { class: 'empty', text: 'Nothing was blocked in the period.', colSpan: 6 })]));
    }
    for (const d of doc.decisions) {
      // Each reason: code · category · path, then the rule's clause (from the
      // record, or the policy in force; marked when the decision was taken
      // under another policy file) and the engine's human-readable detail.
      const reasons = el('td', {}, d.reasons.map((r) => el('div', {
        'data-testid': 'blocked-reason', 'data-code': r.code,
      }, [
        el('div', { text: [r.code, r.category, r.path].filter(Boolean).join(' · ') }),
        r.clause ? el('div', {
          class: 'muted', 'data-testid': 'blocked-clause', 'data-clause': r.clause, 'data-clause-from': r.clause_from,
          text: 'rule ' + (r.rule || '') + ': ' + r.clause +
            (r.clause_from === 'other_policy' ? ' (current policy; the decision was taken under another)' : ''),
        }) : null,
        r.detail ? el('div', { class: 'muted', 'data-testid': 'blocked-detail', text: r.detail }) : null,
      ])));
      body.appendChild(el('tr', { 'data-testid': 'blocked-row', 'data-decision-id': d.decision_id }, [
        el('td', { text: chinaTime(d.time) }),
        el('td', { class: 'mono', text: d.decision_id }),
        el('td', { text: d.route || '' }),
        el('td', { text: d.recipient || '(none)' }),
        el('td', { text: (d.destination && d.destination.country) || 'unknown' }),
        reasons,
      ]));
    }
  }

  function setTotals(t) {
    const set = (id, v) => {
      const e = document.querySelector('[data-testid="' + id + '"]');
      e.textContent = fmt(v);
      e.setAttribute('data-value', v);
    };
    set('total-decisions', t.decisions);
    set('total-abroad', t.cross_border);
    set('total-allow', t.outcomes.allow);
    set('total-deidentify', t.outcomes.deidentify);
    set('total-block', t.outcomes.block);
    set('total-subjects-left', t.subjects_left_as_pi);
  }

  // ---------------------------------------------------------------- flow

  async function load() {
    const p = period();
    $('from').value = p.from;
    $('to').value = p.to;
    $('error').hidden = true;
    $('status').textContent = 'Loading…';
    document.body.setAttribute('data-state', 'loading');
    const qs = 'from=' + encodeURIComponent(p.from) + '&to=' + encodeURIComponent(p.to);
    const byHour = days(p.from, p.to) <= 2;
    try {
      const info = await api('/api/info');
      const pv = document.querySelector('[data-testid="policy-version"]');
      pv.textContent = info.policy_version || '(no version label)';
      pv.title = 'configuration SHA-256 ' + info.policy_sha256;
      document.querySelector('[data-testid="policy-mode"]').textContent = info.policy_mode;
      document.querySelector('[data-testid="bg-version"]').textContent = 'bordergate ' + info.version;
      if (info.token_required && !sessionStorage.getItem(TOKEN_KEY)) {
        const e = new Error('the admin token is needed');
        e.auth = true;
        throw e;
      }
      // One pass over the audit log for every figure of the period.
      const [all, volumes] = await Promise.all([
        api('/api/dashboard?time=' + (byHour ? 'hour' : 'day') + '&limit=20&' + qs),
        api('/api/volumes'),
      ]);
      const r = all.reports;
      const [country, time, category, reason, rule, blocked] =
        [r.country, byHour ? r.hour : r.day, r.category, r.reason, r.rule, all.blocked];
      const periodText = p.from + ' 00:00 to ' + p.to + ' 24:00, China time (UTC+8)';
      const pe = document.querySelector('[data-testid="period"]');
      pe.textContent = periodText;
      pe.setAttribute('data-from', country.from);
      pe.setAttribute('data-to', country.to);
      document.querySelector('[data-testid="generated"]').textContent = chinaTime(info.now) + ' China time';
      setTotals(country.totals);
      drawCountries(country);
      drawTimeline(time, p, byHour);
      drawCategories(category);
      drawReasons(reason);
      drawRules(rule);
      drawBlocked(blocked);
      drawVolumes(volumes);
      $('token').hidden = true;
      const inp = country.input;
      // Whose traffic: the fleet's (every instance, through the shared store)
      // or this instance's alone (no store, or the store could not be read).
      const sc = all.scope || { source: 'instance', instances: 1 };
      const scope = sc.source === 'fleet'
        ? 'Fleet: ' + fmt(sc.instances) + ' instance(s). '
        : 'This instance only' + (sc.fleet_error ? ' (the fleet\'s figures could not be read: ' + sc.fleet_error + ')' : '') + '. ';
      $('status').setAttribute('data-scope', sc.source);
      $('status').textContent = scope + 'Read ' + fmt(inp.files) + ' audit file(s), ' + fmt(inp.lines) + ' line(s)' +
        (inp.unparsable_lines + inp.incomplete_lines > 0
          ? '; ' + (inp.unparsable_lines + inp.incomplete_lines) + ' unreadable line(s) skipped (run bordergate audit verify)' : '') + '.';
      document.body.setAttribute('data-state', 'ready');
    } catch (e) {
      if (e.auth) {
        sessionStorage.removeItem(TOKEN_KEY);
        $('token').hidden = false;
        $('status').textContent = 'Waiting for the admin token.';
        document.body.setAttribute('data-state', 'token');
        return;
      }
      $('error').textContent = 'Cannot load the figures: ' + e.message;
      $('error').hidden = false;
      $('status').textContent = '';
      document.body.setAttribute('data-state', 'error');
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('period').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = $('from').value, t = $('to').value;
      if (!f || !t || t < f) {
        $('error').textContent = 'Choose a start date on or before the end date.';
        $('error').hidden = false;
        return;
      }
      history.replaceState(null, '', '?from=' + f + '&to=' + t);
      load();
    });
    $('token').addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('token-input').value);
      $('token-input').value = '';
      load();
    });
    load();
  });
})();
