// intake console: one owner at a time, signed in with an API token kept for this tab only
// (sessionStorage: never in a URL, never in a cookie). Everything a sender controls (names,
// tags, descriptions, answers) is put in the page as text nodes, never as markup, and the
// Content-Security-Policy allows no inline script. No build step, no dependencies.
'use strict';

const TOKEN_KEY = 'intake.token';
const UPLOADS_KEY = 'intake.uploads'; // resumable multipart uploads: {fingerprint: upload id}
const INLINE_MAX = 512 * 1024; // smaller files go in one request to POST /v1/documents
const PARALLEL_PARTS = 3;
const PART_WINDOW = 16; // part URLs asked for at a time
const FINAL = new Set(['accepted', 'duplicate', 'rejected', 'quarantined', 'failed', 'deleted']);
const STATUSES = ['received', 'scanning', 'accepted', 'duplicate', 'rejected', 'quarantined', 'failed', 'deleted'];
const COLORS = { received: '#bf8700', scanning: '#d4a72c', accepted: '#1a7f37', duplicate: '#8250df',
  rejected: '#cf222e', quarantined: '#a40e26', failed: '#6e7781', deleted: '#afb8c1' };

let poll = null; // the current view's refresh timer
let viewSeq = 0; // bumps on every navigation: late answers for an old view are dropped
let sessionSeq = 0; // bumps on sign-out: uploads and polls of the old session stop
let flash = null; // a message for the next view ("Deleted." after leaving a deleted document)

// ---------------------------------------------------------------------------------------
// DOM: elements from data. Strings become text nodes; nothing here parses markup.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/// Sender-controlled text: isolated from its neighbours' direction, the whole of it in a title,
/// and its invisible direction controls shown (a right-to-left override would make
/// "invoice\u202Efdp.exe" read as "invoiceexe.pdf").
function txt(s, cls) {
  const shown = String(s).replace(/[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\u27e8U+${c.codePointAt(0).toString(16).toUpperCase()}\u27e9`);
  return h('span', { class: 't ' + (cls || ''), title: shown }, shown);
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

function statusBadge(s) {
  return h('span', { class: 'status ' + s, 'data-status': s }, s);
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

function notice(message, isError) {
  const n = document.getElementById('notice');
  n.className = isError ? 'error' : '';
  n.textContent = message || '';
}

// ---------------------------------------------------------------------------------------
// The API: same origin, the token as a bearer header, errors in the API's one shape.

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
  }
}

async function api(method, path, { json, body, headers } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new ApiError(401, { error: { code: 'signed_out', message: 'signed out' } });
  const session = sessionSeq;
  const h2 = Object.assign({ authorization: 'Bearer ' + token }, headers || {});
  if (json !== undefined) h2['content-type'] = 'application/json';
  const resp = await fetch(path, {
    method, headers: h2, body: json !== undefined ? JSON.stringify(json) : body,
    credentials: 'omit', cache: 'no-store', redirect: 'error',
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { // the load balancer's own pages (413, 502) are HTML
    data = { error: { code: 'http_' + resp.status, message: `HTTP ${resp.status} ${resp.statusText} from the load balancer` } };
  }
  if (resp.status === 401) {
    if (session === sessionSeq) signOut('Your token was refused: sign in again.');
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

const transient = (e) => !(e instanceof ApiError) || e.status === 429 || e.status >= 500;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// `fn()`, tried again after throttling, a server error or a network error (1, 2, 4… s).
async function retrying(fn, attempts = 5) {
  for (let i = 1; ; i++) {
    try { return await fn(); } catch (e) {
      if (i >= attempts || !transient(e) || (e instanceof ApiError && e.status === 401)) throw e;
      await sleep(1000 * 2 ** (i - 1));
    }
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.append(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// ---------------------------------------------------------------------------------------
// Views, by the location's hash.

const main = () => document.getElementById('main');

function show(title, ...content) {
  const m = main();
  m.replaceChildren(h('h1', {}, title), ...content.flat(Infinity).filter(Boolean));
  document.title = title + ' · intake';
  m.focus();
}

async function route() {
  clearInterval(poll); // (clears a timeout too: one id space)
  poll = null;
  viewSeq++;
  notice(flash || '');
  flash = null;
  const signedIn = !!sessionStorage.getItem(TOKEN_KEY);
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('sign-out').hidden = !signedIn;
  if (!signedIn) return signIn();
  const [, view, id] = (location.hash || '#/documents').split('?')[0].split('/');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === '#/' + view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const seq = viewSeq;
  try {
    if (view === 'upload') return uploadView();
    if (view === 'webhooks' && id) return await webhookView(decodeURIComponent(id), seq);
    if (view === 'webhooks') return await webhooksView(seq);
    if (view === 'numbers') return await numbersView(seq);
    if (view === 'documents' && id) return await documentView(decodeURIComponent(id), seq);
    return await documentsView(seq);
  } catch (e) {
    if (seq === viewSeq && e.status !== 401) notice(e.message, true);
  }
}

function signIn(message) {
  document.getElementById('who').textContent = '';
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', required: true, size: 48 });
  const form = h('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await whoAmI();
      if (location.hash === '' || location.hash === '#/signin') location.hash = '#/documents';
      else route();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      notice(e.status === 401 ? 'That token was refused.' : e.message, true);
    }
  } }, h('label', {}, 'API token', input), h('button', { class: 'primary', type: 'submit' }, 'Sign in'));
  show('Sign in', h('p', {}, 'Sign in with an API token. It is kept for this tab only and sent to this API only.'), form);
  if (message) notice(message, true);
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionSeq++;
  viewSeq++;
  clearInterval(poll);
  uploads.replaceChildren();
  document.getElementById('nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  signIn(message);
}

async function whoAmI() {
  const stats = await api('GET', '/v1/stats');
  document.getElementById('who').textContent = 'owner: ' + stats.owner;
  return stats;
}

// --- Documents -----------------------------------------------------------------------

async function documentsView(seq) {
  const params = new URLSearchParams((location.hash.split('?')[1]) || '');
  const status = h('select', { name: 'status', id: 'filter-status' },
    h('option', { value: '' }, 'every status but deleted'),
    STATUSES.map((s) => h('option', { value: s, selected: params.get('status') === s }, s)));
  const tag = h('input', { name: 'tag', id: 'filter-tag', value: params.get('tag') || '', size: 16,
    pattern: '[A-Za-z0-9._:\\/@=+\\-]{1,64}', title: 'one tag: letters, digits or - _ . : / @ = +' });
  const filters = h('form', { class: 'row', onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = '#/documents' + query({ status: status.value, tag: tag.value.trim() });
  } }, h('label', {}, 'Status', status), h('label', {}, 'Tag', tag), h('button', { type: 'submit' }, 'Filter'));
  const body = h('tbody', { id: 'documents' });
  const more = h('button', { type: 'button', hidden: true }, 'More');
  const table = h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Status', 'Size', 'Type', 'Tags', 'Created']
    .map((c) => h('th', { scope: 'col' }, c)))), body);
  show('Documents', filters, table, more);
  let pages = 1;
  const load = async () => {
    let cursor = null;
    const rows = [];
    for (let i = 0; i < pages; i++) {
      const page = await api('GET', '/v1/documents' + query({ status: params.get('status'), tag: params.get('tag'), cursor, limit: '50' }));
      rows.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    if (seq !== viewSeq) return;
    body.replaceChildren(...rows.map(documentRow));
    if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 6 }, 'No documents.')));
    more.hidden = !cursor;
    // Live while anything is still on its way; calmer once everything has settled. The next
    // load is planned when this one is done, so that loads never overlap.
    clearTimeout(poll);
    poll = setTimeout(() => load().catch(() => {}), rows.some((d) => !FINAL.has(d.status)) ? 2000 : 10000);
  };
  more.addEventListener('click', () => { pages++; load().catch((e) => notice(e.message, true)); });
  await load();
}

function documentRow(d) {
  return h('tr', { 'data-id': d.id },
    h('td', {}, h('a', { href: '#/documents/' + encodeURIComponent(d.id) }, txt(d.name, 'name'))),
    h('td', {}, statusBadge(d.status)),
    h('td', {}, bytes(d.size)),
    h('td', {}, txt(d.content_type || d.declared_type || '—')),
    h('td', {}, txt(d.tags.join(', '))),
    h('td', {}, when(d.created_at)));
}

async function documentView(id, seq) {
  const path = '/v1/documents/' + encodeURIComponent(id);
  // The history is a second request: if it fails (an older deployment without the route), the
  // facts are still shown.
  const [d, history] = await Promise.all([api('GET', path), api('GET', path + '/history').catch(() => null)]);
  if (seq !== viewSeq) return;
  const source = Object.entries(d.source).filter(([k]) => k !== 'kind').map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const facts = [
    ['Status', statusBadge(d.status)],
    ['Id', h('span', { class: 'mono' }, d.id)],
    ['Name', txt(d.name)],
    ['Type', txt(d.content_type ? `${d.content_type} (declared ${d.declared_type || 'none'})` : (d.declared_type || '—'))],
    ['Size', d.size === null || d.size === undefined ? '—' : `${bytes(d.size)} (${d.size} bytes)`],
    ['SHA-256', h('span', { class: 'mono' }, d.sha256 || '—')],
    ['Source', txt([d.source.kind, ...source].join(' · '))],
    ['Tags', txt(d.tags.join(', ') || '—')],
    ['Created', when(d.created_at)],
    ['Updated', when(d.updated_at)],
  ];
  if (d.duplicate_of) facts.push(['Duplicate of', h('a', { href: '#/documents/' + encodeURIComponent(d.duplicate_of) }, d.duplicate_of)]);
  if (d.rejection) facts.push(['Rejected', txt(`${d.rejection.code}: ${d.rejection.message}`)]);
  if (d.failure) facts.push(['Failed', txt(d.failure.message)]);
  if (d.quarantine) facts.push(['Quarantined', txt((d.quarantine.threats || []).join(', ') || 'threats found')]);
  if (d.deleted_reason) facts.push(['Deleted', txt(d.deleted_reason)]);
  if (d.hold) facts.push(['Legal hold', txt(`${d.hold.reason} (set ${when(d.hold.set_at)})`)]);

  const name = h('input', { id: 'rename', value: d.name, size: 40, required: true });
  const tags = h('input', { id: 'retag', value: d.tags.join(', '), size: 40 });
  const edit = h('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const patch = { name: name.value, tags: tags.value.split(',').map((t) => t.trim()).filter(Boolean) };
    try { await api('PATCH', '/v1/documents/' + encodeURIComponent(d.id), { json: patch }); flash = 'Saved.'; route(); }
    catch (e) { notice(e.message, true); }
  } }, h('label', {}, 'Name', name), h('label', {}, 'Tags (comma-separated)', tags), h('button', { type: 'submit' }, 'Save'));

  const actions = h('div', { class: 'actions' });
  if (d.status === 'accepted' || d.status === 'duplicate') {
    actions.append(h('button', { type: 'button', id: 'download', onclick: () => download(d).catch((e) => notice(e.message, true)) }, 'Download'));
  }
  if (d.status !== 'deleted') {
    actions.append(h('button', { type: 'button', class: 'danger', id: 'delete', onclick: async () => {
      if (!confirm(`Delete "${d.name}"? The bytes are deleted too once no other document holds them.`)) return;
      try { await api('DELETE', '/v1/documents/' + encodeURIComponent(d.id)); flash = 'Deleted.'; location.hash = '#/documents'; }
      catch (e) { notice(e.message, true); }
    } }, 'Delete'));
  }
  show('Document', h('dl', { id: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])), actions,
    history ? [h('h2', {}, 'History'),
      h('ol', { id: 'history' }, history.items.map((e) => h('li', { 'data-event': e.event },
        e.event === 'held' || e.event === 'released' ? h('span', { class: 'status' }, e.event) : statusBadge(e.event),
        ' ', when(e.at), e.detail ? [' — ', txt(e.detail)] : null)))] : null,
    d.status === 'deleted' ? null : [h('h2', {}, 'Rename and retag'), edit]);
  // While the document is on its way, its status is polled; the page is drawn again only when
  // it changed (a redraw would drop what is being typed in the form).
  if (!FINAL.has(d.status)) {
    poll = setInterval(async () => {
      const now = await api('GET', '/v1/documents/' + encodeURIComponent(id)).catch(() => null);
      if (now && seq === viewSeq && now.version !== d.version) route();
    }, 2000);
  }
}

async function download(d) {
  // The API's 302 points at a short-lived S3 link; asked for as JSON, the link comes in the body
  // and the browser navigates to it (no token leaves this origin).
  const link = await api('GET', `/v1/documents/${encodeURIComponent(d.id)}/content?redirect=false`);
  const a = h('a', { href: link.url, download: d.name, rel: 'noopener' });
  document.body.append(a);
  a.click();
  a.remove();
}

// --- Upload --------------------------------------------------------------------------

// The list of this tab's uploads outlives the view: going to the documents and back shows them.
const uploads = h('ul', { class: 'files', id: 'uploads' });
const sending = new Set(); // fingerprints of files being sent now: the same file twice is refused

function uploadView() {
  const input = h('input', { type: 'file', multiple: true, id: 'files', hidden: true });
  const tags = h('input', { id: 'upload-tags', size: 30 });
  const choose = h('button', { type: 'button', class: 'primary', id: 'choose', onclick: () => input.click() }, 'Choose files…');
  // A drop target for the mouse; the keyboard's way in is the button inside it.
  const drop = h('div', { class: 'drop', id: 'drop',
    ondragover: (ev) => { ev.preventDefault(); drop.classList.add('over'); },
    ondragleave: () => drop.classList.remove('over'),
    ondrop: (ev) => { ev.preventDefault(); drop.classList.remove('over'); start([...ev.dataTransfer.files]); },
  }, 'Drop files here, or ', choose);
  const start = (files) => {
    const tagList = tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    for (const f of files) uploadOne(f, tagList);
  };
  input.addEventListener('change', () => { start([...input.files]); input.value = ''; });
  show('Upload', h('label', {}, 'Tags for these files (comma-separated)', tags), drop, input, uploads);
}

async function uploadOne(file, tags) {
  const session = sessionSeq;
  const bar = h('progress', { max: 1, value: 0 });
  const state = h('span', { class: 'state' }, 'starting');
  const link = h('span', {});
  const item = h('li', { 'data-file': file.name }, txt(file.name, 'name'), ' ', bytes(file.size), ' ', bar, ' ', state, ' ', link);
  uploads.prepend(item);
  const fingerprint = `${file.name}|${file.size}|${file.lastModified}`;
  if (sending.has(fingerprint)) {
    item.dataset.status = 'error';
    state.replaceChildren(h('span', { class: 'error' }, 'this file is being sent already'));
    return;
  }
  sending.add(fingerprint);
  const progress = (done) => { bar.value = file.size ? Math.min(1, done / file.size) : 1; };
  try {
    const doc = file.size <= INLINE_MAX
      ? await sendWhole(file, tags)
      : await sendInParts(file, fingerprint, tags, progress, (s) => { state.textContent = s; },
        (n) => { item.dataset.parts = String(n); }, () => session !== sessionSeq);
    progress(file.size);
    link.replaceChildren(h('a', { href: '#/documents/' + encodeURIComponent(doc.id) }, 'details'));
    await follow(doc, item, state, session);
  } catch (e) {
    item.dataset.status = 'error';
    state.replaceChildren(h('span', { class: 'error' }, `${e.code ? e.code + ': ' : ''}${e.message}`));
  } finally {
    sending.delete(fingerprint);
  }
}

function randomKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return 'console-' + [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

// The type to declare: the browser's, or one from the name's extension when the browser gives
// none or a vague one (a .csv is application/vnd.ms-excel on some systems). The policy decides.
const BY_EXTENSION = { pdf: 'application/pdf', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif',
  webp: 'image/webp', tif: 'image/tiff', tiff: 'image/tiff', txt: 'text/plain', csv: 'text/csv', zip: 'application/zip',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' };
function declaredType(file) {
  const ext = (file.name.split('.').pop() || '').toLowerCase();
  if (file.type && file.type !== 'application/octet-stream' && file.type !== 'application/vnd.ms-excel') return file.type;
  return BY_EXTENSION[ext] || file.type || 'application/octet-stream';
}

async function sendWhole(file, tags) {
  const q = new URLSearchParams({ name: file.name });
  for (const t of tags) q.append('tag', t);
  const key = randomKey(); // the same key on every retry: one document, however many tries
  const answer = await retrying(() => api('POST', '/v1/documents?' + q, {
    body: file, headers: { 'content-type': declaredType(file), 'idempotency-key': key },
  }));
  return answer.document || { id: answer.id, status: answer.status };
}

// Which multipart upload a file (name, size, date) is in: kept across reloads, so that dropping
// the same file again sends only the parts S3 does not hold yet. Read and written one key at a
// time (other uploads of this tab change other keys meanwhile).
const remembered = {
  get: (fp) => JSON.parse(localStorage.getItem(UPLOADS_KEY) || '{}')[fp],
  set: (fp, id) => {
    const all = JSON.parse(localStorage.getItem(UPLOADS_KEY) || '{}');
    if (id === undefined) delete all[fp]; else all[fp] = id;
    localStorage.setItem(UPLOADS_KEY, JSON.stringify(all));
  },
};

/// The upload to resume for this file: its plan and missing parts, a finished document, or
/// nothing (start again). Only "not found" or "no longer an upload" forgets it; any other error
/// is the user's to see (a new upload would hold quota until the old one expires).
async function resumable(fingerprint, say) {
  const id = remembered.get(fingerprint);
  if (!id) return null;
  try {
    const p = await retrying(() => api('GET', '/v1/multipart-uploads/' + encodeURIComponent(id)));
    say('resuming');
    return { id, plan: p.upload, missing: p.missing };
  } catch (e) {
    if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 409)) throw e;
    remembered.set(fingerprint, undefined);
    if (e.status === 409) {
      // Complete (a crash after completing), or gone: a document past `received` is the answer.
      const d = await retrying(() => api('GET', '/v1/documents/' + encodeURIComponent(id))).catch(() => null);
      if (d && d.status !== 'received' && d.status !== 'deleted') return { done: d };
    }
    return null;
  }
}

async function sendInParts(file, fingerprint, tags, progress, say, planned, stopped) {
  let upload = await resumable(fingerprint, say);
  if (upload && upload.done) return upload.done;
  if (!upload) {
    const key = randomKey();
    const started = await retrying(() => api('POST', '/v1/multipart-uploads', {
      json: { name: file.name, content_type: declaredType(file), size: file.size, tags },
      headers: { 'idempotency-key': key },
    }));
    upload = { id: started.id, plan: started.upload, missing: null };
    remembered.set(fingerprint, started.id);
  }
  const { id, plan } = upload;
  const count = plan.part_count;
  const partSize = plan.part_size;
  const sizeOf = (n) => Math.min(n * partSize, file.size) - (n - 1) * partSize;
  planned(count);
  const todo = upload.missing ? [...upload.missing] : Array.from({ length: count }, (_, i) => i + 1);
  const missing = new Set(todo);
  let done = 0;
  for (let n = 1; n <= count; n++) if (!missing.has(n)) done += sizeOf(n);
  const inFlight = new Map();
  const report = () => progress(done + [...inFlight.values()].reduce((a, b) => a + b, 0));
  report();
  say(`sending ${todo.length} of ${count} parts`);
  const queue = [...todo];
  let failed = null; // the first worker's error stops the others
  const live = new Set(); // XHRs in flight, aborted when one worker gives up
  const askFor = async (asks) => {
    const urls = await retrying(() => api('POST', `/v1/multipart-uploads/${encodeURIComponent(id)}/parts`, {
      json: { parts: asks.map(({ number, sha256 }) => ({ number, sha256 })) },
    }));
    return urls.parts;
  };
  const worker = async () => {
    while (queue.length && !failed && !stopped()) {
      // A window of parts per worker (their URLs asked for at once), small enough that every
      // worker has some.
      const take = Math.max(1, Math.min(PART_WINDOW, Math.ceil(queue.length / PARALLEL_PARTS)));
      const asks = [];
      for (const n of queue.splice(0, take)) {
        const blob = file.slice((n - 1) * partSize, (n - 1) * partSize + sizeOf(n));
        asks.push({ number: n, sha256: hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), blob });
      }
      const byNumber = new Map((await askFor(asks)).map((p) => [p.number, p]));
      for (const ask of asks) {
        for (let attempt = 1; ; attempt++) {
          if (failed || stopped()) return;
          // A URL about to expire (a slow link spends minutes per window) is asked for again.
          if (Date.parse(byNumber.get(ask.number).expires_at) - Date.now() < 60_000) {
            for (const p of await askFor([ask])) byNumber.set(p.number, p);
          }
          try {
            await putPart(byNumber.get(ask.number), ask.blob, live, (sent) => { inFlight.set(ask.number, sent); report(); });
            break;
          } catch (e) {
            inFlight.delete(ask.number);
            if (attempt >= 4 || failed) throw e;
            say(`part ${ask.number}: ${e.message}; trying again`);
            await sleep(1000 * 2 ** (attempt - 1));
            for (const p of await askFor([ask])) byNumber.set(p.number, p); // a fresh URL
          }
        }
        inFlight.delete(ask.number);
        done += ask.blob.size;
        report();
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_PARTS }, () => worker().catch((e) => {
    failed = failed || e;
    for (const xhr of live) xhr.abort();
  })));
  if (failed) throw failed;
  if (stopped()) throw new Error('signed out: drop the file again after signing in to resume');
  say('completing');
  const completed = await retrying(() => api('POST', `/v1/multipart-uploads/${encodeURIComponent(id)}/complete`, { json: {} }));
  remembered.set(fingerprint, undefined);
  return completed;
}

function hex(buf) {
  return [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
}

// One part, straight to S3 with the presigned request (XMLHttpRequest: fetch has no upload
// progress). Headers the browser sets itself (content-length, host) are left to it. A stalled
// connection fails after two minutes without progress.
function putPart(req, blob, live, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    live.add(xhr);
    const settle = (fn, v) => { live.delete(xhr); clearTimeout(stall); fn(v); };
    let stall = null;
    const watch = () => { clearTimeout(stall); stall = setTimeout(() => xhr.abort(), 120_000); };
    xhr.open(req.method, req.url);
    for (const [k, v] of Object.entries(req.headers)) {
      if (!['content-length', 'host'].includes(k.toLowerCase())) xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (ev) => { watch(); onProgress(ev.loaded); };
    xhr.onload = () => (xhr.status < 300 ? settle(resolve)
      : settle(reject, new Error(`the store refused part ${req.number} (HTTP ${xhr.status})`)));
    xhr.onerror = () => settle(reject, new Error(`part ${req.number} could not be sent (network or CORS)`));
    xhr.onabort = () => settle(reject, new Error(`part ${req.number} stopped`));
    watch();
    xhr.send(blob);
  });
}

/// A document's status until it settles: polled gently, through throttling and errors.
async function follow(doc, item, state, session) {
  let d = doc;
  item.dataset.id = d.id;
  for (let i = 0; session === sessionSeq; i++) {
    item.dataset.status = d.status;
    state.replaceChildren(statusBadge(d.status), d.rejection ? txt(' ' + d.rejection.code) : '',
      d.duplicate_of ? ' of ' + d.duplicate_of : '');
    if (FINAL.has(d.status)) return;
    await sleep(Math.min(10_000, 1000 + i * 250));
    d = await retrying(() => api('GET', '/v1/documents/' + encodeURIComponent(d.id)), 8);
  }
}

// --- Webhooks ------------------------------------------------------------------------

async function webhooksView(seq) {
  const [hooks, types] = await Promise.all([api('GET', '/v1/webhooks'), api('GET', '/v1/event-types')]);
  if (seq !== viewSeq) return;
  const url = h('input', { id: 'hook-url', type: 'url', required: true, size: 40, placeholder: 'https://example.com/hooks/intake' });
  const description = h('input', { id: 'hook-description', size: 30, maxlength: 256 });
  const boxes = types.items.map((t) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: t.type }), ' ', t.type));
  const shown = h('div', { id: 'secret' });
  const form = h('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const events = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    try {
      const made = await api('POST', '/v1/webhooks', { json: { url: url.value, events, description: description.value || null } });
      showSecret(shown, made.secret, 'Its signing secret, shown once: keep it now.');
      body.prepend(hookRow(made));
      url.value = '';
    } catch (e) { notice(e.message, true); }
  } }, h('label', {}, 'URL', url), h('label', {}, 'Description', description),
  h('fieldset', {}, h('legend', {}, 'Event types (none: all)'), boxes), h('button', { class: 'primary', type: 'submit' }, 'Create'));
  const body = h('tbody', { id: 'webhooks' }, hooks.items.map(hookRow));
  show('Webhooks', h('table', {}, h('thead', {}, h('tr', {}, ['URL', 'Events', 'State', 'Description'].map((c) => h('th', { scope: 'col' }, c)))), body),
    h('h2', {}, 'New endpoint'), form, shown);
}

function hookRow(w) {
  return h('tr', { 'data-id': w.id },
    h('td', {}, h('a', { href: '#/webhooks/' + encodeURIComponent(w.id) }, txt(w.url, 'name'))),
    h('td', {}, w.events.length ? w.events.join(', ') : 'all'),
    h('td', {}, w.enabled ? 'enabled' : h('span', { class: 'error' }, 'disabled')),
    h('td', {}, txt(w.description || '')));
}

function showSecret(where, secret, why) {
  where.replaceChildren(h('div', { class: 'secret', role: 'alert' }, h('p', {}, why), h('code', { class: 'mono', id: 'secret-value' }, secret)));
}

async function webhookView(id, seq) {
  const path = '/v1/webhooks/' + encodeURIComponent(id);
  const [w, log] = await Promise.all([api('GET', path), api('GET', path + '/deliveries?limit=50')]);
  if (seq !== viewSeq) return;
  const shown = h('div', {});
  const act = (label, fn, cls) => h('button', { type: 'button', class: cls, onclick: async () => {
    try { await fn(); } catch (e) { notice(e.message, true); }
  } }, label);
  const actions = h('div', { class: 'actions' },
    act(w.enabled ? 'Disable' : 'Enable', async () => {
      await api('PATCH', path, { json: { enabled: !w.enabled } });
      flash = w.enabled ? 'Disabled: deliveries wait.' : 'Enabled: replay what it missed below.';
      route();
    }),
    act('Rotate secret', async () => {
      const r = await api('POST', path + '/secret');
      showSecret(shown, r.secret, 'The new secret, shown once. The previous one keeps signing for 24 hours.');
    }),
    act('Delete', async () => {
      if (!confirm('Delete this endpoint? Its deliveries stop.')) return;
      await api('DELETE', path); flash = 'Deleted.'; location.hash = '#/webhooks';
    }, 'danger'));
  const since = h('input', { type: 'datetime-local', id: 'replay-since', required: true });
  const replaySince = h('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      let from = new Date(since.value).toISOString(), queued = 0;
      for (let calls = 0; from && calls < 100; calls++) { // at most 100 events per call
        const r = await api('POST', path + '/replay', { json: { since: from } });
        queued += r.queued;
        from = r.more_since;
      }
      notice(from ? `${queued} events queued again; more remain: replay again from ${from}.`
        : `${queued} events queued again: every event since then.`);
    } catch (e) { notice(e.message, true); }
  } }, h('label', {}, 'Replay every event since', since), h('button', { type: 'submit' }, 'Replay'));
  const deliveries = h('tbody', { id: 'deliveries' });
  const draw = (items) => deliveries.replaceChildren(...(items.length ? items.map((d) => deliveryRow(d, path, act))
    : [h('tr', {}, h('td', { colspan: 6 }, 'No deliveries yet.'))]));
  draw(log.items);
  show('Webhook',
    h('dl', {}, [['URL', txt(w.url)], ['State', w.enabled ? 'enabled' : `disabled: ${w.disabled_reason || ''}`],
      ['Events', w.events.length ? w.events.join(', ') : 'all'], ['Description', txt(w.description || '—')],
      ['Secret made', when(w.secret_created_at)], ['Created', when(w.created_at)]].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    actions, shown, h('h2', {}, 'Deliveries'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Event', 'Type', 'Document', 'Status', 'Attempts', ''].map((c) => h('th', { scope: 'col' }, c)))),
      deliveries),
    h('h2', {}, 'Replay'), replaySince);
  let last = JSON.stringify(log.items);
  poll = setInterval(async () => {
    const fresh = await api('GET', path + '/deliveries?limit=50').catch(() => null);
    if (!fresh || seq !== viewSeq || JSON.stringify(fresh.items) === last) return;
    last = JSON.stringify(fresh.items);
    draw(fresh.items);
  }, 3000);
}

function deliveryRow(d, path, act) {
  return h('tr', { 'data-event': d.event_id },
    h('td', { class: 'mono' }, d.event_id), h('td', {}, d.event_type),
    h('td', {}, d.document_id ? h('a', { href: '#/documents/' + encodeURIComponent(d.document_id) }, d.document_id) : '—'),
    h('td', {}, statusBadge(d.status), d.outcome ? txt(' ' + d.outcome) : ''),
    h('td', {}, h('ol', {}, d.attempts.map((a) => h('li', {}, when(a.at), ' → ',
      a.status_code ? `HTTP ${a.status_code}` : txt(a.error || 'no answer'), ` (${a.latency_ms} ms)`)))),
    h('td', {}, act('Replay', async () => {
      await api('POST', path + '/replay', { json: { event_id: d.event_id } });
      notice(`Event ${d.event_id} queued again.`);
    })));
}

// --- Numbers -------------------------------------------------------------------------

async function numbersView(seq) {
  const stats = await whoAmI();
  // Fourteen local calendar days (built from dates, not 24-hour steps: a DST change keeps them whole).
  const today = new Date();
  const days = Array.from({ length: 14 }, (_, i) => new Date(today.getFullYear(), today.getMonth(), today.getDate() - 13 + i));
  const since = days[0];
  const dayKey = (d) => `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
  const index = new Map(days.map((d, i) => [dayKey(d), i]));
  const perDay = days.map(() => ({}));
  let cursor = null, seen = 0;
  for (let page = 0; page < 10 && seq === viewSeq; page++) { // the newest 1,000 documents of the last 14 days
    const p = await api('GET', '/v1/documents' + query({ since: since.toISOString(), cursor, limit: '100' }));
    for (const d of p.items) {
      const i = index.get(dayKey(new Date(d.created_at)));
      if (i !== undefined) perDay[i][d.status] = (perDay[i][d.status] || 0) + 1;
    }
    seen += p.items.length;
    cursor = p.next_cursor;
    if (!cursor) break;
  }
  if (seq !== viewSeq) return;
  const totals = STATUSES.map((s) => [s, (stats.by_status[s] || {}).documents || 0, (stats.by_status[s] || {}).bytes || 0]);
  show('Numbers',
    h('h2', {}, 'Documents by status'), barChart(totals.map(([s, n]) => [s, n]), (n) => String(n), 'chart-documents'),
    h('h2', {}, 'Bytes by status'), barChart(totals.map(([s, , b]) => [s, b]), bytes, 'chart-bytes'),
    h('h2', {}, 'New documents per day, by status'), dayChart(days, perDay),
    h('p', { class: 'legend' }, STATUSES.map((s) => { const i = h('i', {}); i.style.background = COLORS[s]; return h('span', {}, i, s); })),
    cursor ? h('p', {}, `Counted from the newest ${seen} documents of these days.`) : null,
    h('h2', {}, 'As a table'),
    h('table', { id: 'stats' }, h('thead', {}, h('tr', {}, ['Status', 'Documents', 'Bytes'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, totals.map(([s, n, b]) => h('tr', {}, h('td', {}, s), h('td', {}, String(n)), h('td', {}, bytes(b)))))));
}

function barChart(rows, label, id) {
  const max = Math.max(1, ...rows.map(([, v]) => v));
  const height = rows.length * 24 + 8;
  return svg('svg', { id, width: 640, height, role: 'img', 'aria-label': rows.map(([s, v]) => `${s} ${label(v)}`).join(', ') },
    rows.map(([s, v], i) => [
      svg('text', { x: 0, y: i * 24 + 18 }, s),
      svg('rect', { x: 100, y: i * 24 + 6, height: 16, width: Math.max(v ? 2 : 0, (v / max) * 430), fill: COLORS[s] }),
      svg('text', { x: 108 + (v / max) * 430, y: i * 24 + 18 }, label(v)),
    ]));
}

function dayChart(days, perDay) {
  const max = Math.max(1, ...perDay.map((c) => Object.values(c).reduce((a, b) => a + b, 0)));
  const W = 40, H = 160;
  return svg('svg', { id: 'chart-days', width: days.length * W + 20, height: H + 40, role: 'img',
    'aria-label': days.map((d, i) => `${d.toLocaleDateString()}: ${Object.entries(perDay[i]).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}`).join('; ') },
  days.map((d, i) => {
    let y = H;
    const bars = STATUSES.filter((s) => perDay[i][s]).map((s) => {
      const hgt = (perDay[i][s] / max) * (H - 10);
      y -= hgt;
      return svg('rect', { x: i * W + 10, y, width: W - 12, height: hgt, fill: COLORS[s] }, svg('title', {}, `${perDay[i][s]} ${s}`));
    });
    return [...bars, svg('text', { x: i * W + 10, y: H + 16 }, `${d.getMonth() + 1}/${d.getDate()}`)];
  }));
}

// ---------------------------------------------------------------------------------------

window.addEventListener('hashchange', route);
document.getElementById('sign-out').addEventListener('click', () => { signOut(); location.hash = ''; });
if (sessionStorage.getItem(TOKEN_KEY)) whoAmI().catch(() => {});
route();
