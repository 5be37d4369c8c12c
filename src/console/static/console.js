/* global document, location, history, sessionStorage, window, fetch, URLSearchParams, setTimeout, setInterval, clearInterval, Node */
// runhook console: a small ES module over the JSON API (/v1). Every piece of text from the API goes into
// the page as text (h() below never parses HTML), so a run's input or output cannot inject markup.

const KEY = 'runhook.apiKey';
const STATUSES = ['created', 'running', 'completed', 'failed', 'cancelled'];
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const LIST_POLL_MS = 2000;
const RUN_POLL_MS = 1000;
const PAGE = 50;

const main = document.getElementById('main');
/** Bumped by every view rendered: a poll of a view no longer shown stops itself. */
let viewToken = 0;
const announcer = document.getElementById('announce');
const forget = document.getElementById('forget-key');

/** Builds an element: h('a', { href }, 'text', child). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function announce(text) {
  // Cleared first so that the same message twice is read twice.
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = text), 30);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const key = sessionStorage.getItem(KEY);
  const headers = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, json?.error?.code ?? 'HTTP_ERROR', json?.error?.message ?? `${method} ${path}: ${res.status}`);
  return json;
}

// ---- formatting ------------------------------------------------------------------------------------

const ns = (v) => (v === null || v === undefined ? null : v / 1e6);
function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }));
}
const badge = (status) => h('span', { class: `status ${status}` }, status);

// ---- login -----------------------------------------------------------------------------------------

/** Whether the API answers with the key held (or none when it needs none). */
async function authorized() {
  try {
    await api('/v1/queues');
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}

function renderLogin(message) {
  viewToken++;
  document.title = 'Sign in · runhook console';
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'current-password', required: true, 'aria-describedby': 'key-help' });
  const error = h('p', { id: 'key-error', class: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    {
      class: 'card login',
      'aria-labelledby': 'login-title',
      onsubmit: async (e) => {
        e.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        if (await authorized()) return start();
        sessionStorage.removeItem(KEY);
        error.textContent = 'That key was refused. Check it and try again.';
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      },
    },
    h('h1', { id: 'login-title' }, 'Sign in'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('p', { id: 'key-help', class: 'muted' }, 'One of the server\'s RUNHOOK_API_KEYS. It is kept in this tab only (sessionStorage) and sent as a bearer token.'),
    error,
    h('div', { class: 'row' }, h('button', { class: 'btn', type: 'submit' }, 'Sign in')),
  );
  main.replaceChildren(form);
  input.focus();
}

// ---- runs list -------------------------------------------------------------------------------------

/** The filters, read from and written to the address bar so that a filtered list can be shared. */
function readFilters() {
  const q = new URLSearchParams(location.search);
  // project: a seam for the projects issue; the list will pass it on once GET /v1/runs takes it.
  return {
    agent_id: q.get('agent_id') ?? '',
    status: q.get('status') ?? '',
    conversation_id: q.get('conversation_id') ?? '',
    created_after: q.get('created_after') ?? '',
    created_before: q.get('created_before') ?? '',
    project_id: q.get('project_id') ?? '',
  };
}

function listQuery(f, limit, after) {
  const q = new URLSearchParams({ limit: String(limit), order: 'desc' });
  if (f.agent_id) q.set('agent_id', f.agent_id);
  if (f.status) q.append('statuses', f.status);
  if (f.conversation_id) q.set('conversation_id', f.conversation_id);
  if (after) q.set('after', after);
  return `/v1/runs?${q}`;
}

function field(id, label, control) {
  return h('div', {}, h('label', { for: id }, label), control);
}

async function renderList() {
  document.title = 'Runs · runhook console';
  const f = readFilters();
  const agent = h('input', { id: 'f-agent', name: 'agent_id', value: f.agent_id, placeholder: 'any agent', autocomplete: 'off' });
  const status = h(
    'select',
    { id: 'f-status', name: 'status' },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === f.status }, s)),
  );
  const conv = h('input', { id: 'f-conv', name: 'conversation_id', value: f.conversation_id, placeholder: 'any conversation', autocomplete: 'off' });
  const after = h('input', { id: 'f-after', name: 'created_after', type: 'datetime-local', value: f.created_after });
  const before = h('input', { id: 'f-before', name: 'created_before', type: 'datetime-local', value: f.created_before });
  const form = h(
    'form',
    {
      class: 'card filters',
      role: 'search',
      'aria-label': 'Filter runs',
      onsubmit: (e) => {
        e.preventDefault();
        const q = new URLSearchParams();
        for (const [k, el] of [['agent_id', agent], ['status', status], ['conversation_id', conv], ['created_after', after], ['created_before', before]]) if (el.value.trim()) q.set(k, el.value.trim());
        history.pushState(null, '', `/console${q.size ? `?${q}` : ''}`);
        void renderList();
        announce('Filters applied');
      },
    },
    field('f-agent', 'Agent', agent),
    field('f-status', 'Status', status),
    field('f-conv', 'Conversation', conv),
    field('f-after', 'Created after', after),
    field('f-before', 'Created before', before),
    h(
      'div',
      { class: 'actions' },
      h('button', { class: 'btn', type: 'submit' }, 'Apply'),
      h('button', { class: 'btn secondary', type: 'button', onclick: () => { history.pushState(null, '', '/console'); void renderList(); announce('Filters cleared'); } }, 'Clear'),
    ),
  );
  const counts = h('ul', { class: 'counts', 'aria-label': 'Runs by status' });
  // Receiver health: hosts whose callbacks failed lately and the state of their breaker.
  const hostsBody = h('tbody', { id: 'hosts-body' });
  const hostsNone = h('p', { class: 'muted' }, 'Every receiver is answering.');
  const hosts = h(
    'section',
    { class: 'card', 'aria-labelledby': 'hosts-h' },
    h('h2', { id: 'hosts-h' }, 'Callback receivers'),
    hostsNone,
    h(
      'table',
      { class: 'stack', id: 'hosts' },
      h('caption', {}, 'Receivers with recent failures; an open breaker holds their deliveries until a probe is answered.'),
      h('thead', {}, h('tr', {}, ['Host', 'State', 'Consecutive failures', 'Next probe'].map((c) => h('th', { scope: 'col' }, c)))),
      hostsBody,
    ),
  );
  const tbody = h('tbody', { id: 'runs-body' });
  const table = h(
    'table',
    { class: 'stack', id: 'runs' },
    h('caption', {}, 'Runs, newest first. The list updates while you watch.'),
    h('thead', {}, h('tr', {}, ['Run', 'Agent', 'Status', 'Created', 'Duration', 'Stop reason'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  const empty = h('p', { class: 'muted', hidden: true }, 'No runs match these filters.');
  const more = h('button', { class: 'btn secondary more', type: 'button', hidden: true }, 'Show more runs');
  const h1 = h('h1', { tabindex: '-1' }, 'Runs');
  main.replaceChildren(
    h1,
    h('section', { class: 'card', 'aria-labelledby': 'counts-h' }, h('h2', { id: 'counts-h' }, 'By status'), counts),
    hosts,
    form,
    table,
    empty,
    more,
  );

  let limit = PAGE;
  let known = null;
  // The time filters are applied here: GET /v1/runs pages by cursor, not by time.
  const afterMs = f.created_after ? new Date(f.created_after).getTime() : null;
  const beforeMs = f.created_before ? new Date(f.created_before).getTime() : null;
  const token = ++viewToken;

  async function refresh() {
    const [runs, queues, receivers] = await Promise.all([api(listQuery(f, limit)), api('/v1/queues'), api('/v1/callbacks/hosts?limit=20')]);
    const troubled = receivers.filter((r) => r.state !== 'ok' || r.consecutive_failures > 0);
    hostsNone.hidden = troubled.length > 0;
    hostsBody.parentElement.hidden = troubled.length === 0;
    hostsBody.replaceChildren(
      ...troubled.map((r) =>
        h(
          'tr',
          { 'data-host': r.host, 'data-state': r.state },
          h('td', { 'data-label': 'Host' }, h('code', {}, r.host)),
          h('td', { 'data-label': 'State' }, h('span', { class: `status breaker-${r.state}` }, r.state.replace('_', ' '))),
          h('td', { 'data-label': 'Consecutive failures', class: 'num' }, String(r.consecutive_failures)),
          h('td', { 'data-label': 'Next probe' }, r.next_probe_at ? when(r.next_probe_at) : '—'),
        ),
      ),
    );
    const inWindow = (t) => (afterMs === null || t >= afterMs) && (beforeMs === null || t < beforeMs);
    const shown = runs.filter((r) => inWindow(new Date(r.created_at).getTime()));
    counts.replaceChildren(...STATUSES.map((s) => h('li', {}, h('strong', {}, String(queues.runs_by_status?.[s] ?? 0)), badge(s))));
    tbody.replaceChildren(
      ...shown.map((r) =>
        h(
          'tr',
          { 'data-run-id': r.id, 'data-status': r.status },
          h('td', { 'data-label': 'Run' }, h('a', { href: `/console/runs/${encodeURIComponent(r.id)}` }, h('code', {}, r.id))),
          h('td', { 'data-label': 'Agent' }, r.agent_id),
          h('td', { 'data-label': 'Status' }, badge(r.status)),
          h('td', { 'data-label': 'Created' }, when(r.created_at)),
          h('td', { 'data-label': 'Duration', class: 'num' }, duration(ns(r.total_duration_ns))),
          h('td', { 'data-label': 'Stop reason' }, r.stop_reason ?? '—'),
        ),
      ),
    );
    empty.hidden = shown.length > 0;
    // A full page that has not yet reached the time bound: there may be more.
    const oldest = runs.length ? new Date(runs.at(-1).created_at).getTime() : null;
    more.hidden = runs.length < limit || limit >= 1000 || (afterMs !== null && oldest !== null && oldest < afterMs);
    if (known) {
      const fresh = shown.filter((r) => !known.has(r.id)).length;
      if (fresh > 0) announce(`${fresh} new run${fresh === 1 ? '' : 's'}`);
    }
    known = new Set(shown.map((r) => r.id));
  }
  more.addEventListener('click', async () => {
    limit = Math.min(1000, limit + PAGE);
    await refresh();
    announce(`Showing up to ${limit} runs`);
  });
  await refresh();
  // Live: a poll while this view is shown (a new run, a status change); paused while the tab is hidden.
  const timer = setInterval(() => {
    if (token !== viewToken) return clearInterval(timer);
    if (!document.hidden) refresh().catch(showPollError);
  }, LIST_POLL_MS);
}

function showPollError(err) {
  if (err instanceof ApiError && err.status === 401) return renderLogin('Your key is no longer accepted.');
  announce(`Could not refresh: ${err.message}`);
}

// ---- one run ---------------------------------------------------------------------------------------

/** Letta messages → transcript entries: assistant text joined, reasoning and tool calls set apart. */
function transcript(messages) {
  const out = [];
  let text = null;
  const flush = () => {
    if (text !== null) out.push(h('div', { class: 'msg assistant', role: 'article', 'aria-label': 'Assistant' }, h('p', { class: 'who' }, 'Assistant'), h('pre', {}, text)));
    text = null;
  };
  const textOf = (c) => (typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => p?.text ?? '').join('') : c == null ? '' : JSON.stringify(c));
  for (const m of messages) {
    switch (m.message_type) {
      case 'assistant_message':
        text = (text ?? '') + textOf(m.content);
        break;
      case 'user_message':
        flush();
        out.push(h('div', { class: 'msg user', role: 'article', 'aria-label': 'User' }, h('p', { class: 'who' }, 'User'), h('pre', {}, textOf(m.content))));
        break;
      case 'reasoning_message':
      case 'hidden_reasoning_message':
        flush();
        out.push(h('details', { class: 'msg reasoning' }, h('summary', {}, 'Reasoning'), h('pre', {}, m.reasoning ?? m.hidden_reasoning ?? '')));
        break;
      case 'tool_call_message': {
        flush();
        const calls = m.tool_calls ?? (m.tool_call ? [m.tool_call] : []);
        for (const c of calls) out.push(h('details', { class: 'msg tool' }, h('summary', {}, `Tool call: ${c.name ?? '?'}`), h('pre', {}, c.arguments ?? '')));
        break;
      }
      case 'tool_return_message':
        flush();
        out.push(h('details', { class: 'msg tool' }, h('summary', {}, `Tool return${m.status ? ` (${m.status})` : ''}`), h('pre', {}, textOf(m.tool_return ?? m.content))));
        break;
      default:
        flush();
        out.push(h('details', { class: 'msg other' }, h('summary', {}, m.message_type), h('pre', {}, JSON.stringify(m, null, 2))));
    }
  }
  flush();
  return out;
}

function timeline(run, metrics) {
  const created = new Date(run.created_at).getTime();
  const started = metrics.run_start_ns ? metrics.run_start_ns / 1e6 : null;
  const items = [
    { done: true, label: 'Created', at: run.created_at },
    { done: started !== null, label: 'Started by a worker', at: started ? new Date(started).toISOString() : null, span: metrics.queue_wait_ns != null ? `queue wait ${duration(ns(metrics.queue_wait_ns))}` : null },
    { done: run.ttft_ns != null, label: 'First token', at: run.ttft_ns != null ? new Date(created + run.ttft_ns / 1e6).toISOString() : null, span: run.ttft_ns != null ? `ttft ${duration(ns(run.ttft_ns))}` : null },
    { done: TERMINAL.has(run.status), label: TERMINAL.has(run.status) ? `Ended ${run.status}` : 'Not ended yet', at: run.completed_at, span: run.total_duration_ns != null ? `total ${duration(ns(run.total_duration_ns))}` : null },
  ];
  return h(
    'ol',
    { class: 'timeline', 'aria-label': 'Status timeline' },
    items.map((i) => h('li', { class: i.done ? '' : 'pending' }, h('strong', {}, i.label), ' ', i.at ? when(i.at) : '', i.span ? h('div', { class: 'span' }, i.span) : null)),
  );
}

function stepsTable(steps) {
  if (steps.length === 0) return h('p', { class: 'muted' }, 'No steps recorded.');
  return h(
    'table',
    { class: 'stack', id: 'steps' },
    h('caption', { class: 'visually-hidden' }, 'Steps and their usage'),
    h('thead', {}, h('tr', {}, ['#', 'Model', 'Status', 'Prompt tokens', 'Completion tokens', 'Total tokens', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      steps.map((s, i) =>
        h(
          'tr',
          {},
          h('td', { 'data-label': 'Step' }, String(i + 1)),
          h('td', { 'data-label': 'Model' }, s.model ?? '—'),
          h('td', { 'data-label': 'Status' }, s.status),
          h('td', { 'data-label': 'Prompt tokens', class: 'num' }, s.prompt_tokens ?? '—'),
          h('td', { 'data-label': 'Completion tokens', class: 'num' }, s.completion_tokens ?? '—'),
          h('td', { 'data-label': 'Total tokens', class: 'num' }, s.total_tokens ?? '—'),
          h('td', { 'data-label': 'Duration', class: 'num' }, duration(ns(s.step_ns))),
        ),
      ),
    ),
  );
}

function attemptsTable(run, attempts) {
  if (!run.callback_url) return h('p', { class: 'muted' }, 'This run has no callback URL.');
  if (attempts.length === 0) return h('p', { class: 'muted' }, 'No delivery attempt yet.');
  return h(
    'table',
    { class: 'stack', id: 'callback-attempts' },
    h('caption', { class: 'visually-hidden' }, 'Callback delivery attempts'),
    h('thead', {}, h('tr', {}, ['Attempt', 'At', 'Status code', 'Error', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      attempts.map((a) =>
        h(
          'tr',
          {},
          h('td', { 'data-label': 'Attempt' }, String(a.attempt), a.gave_up ? ' (given up)' : ''),
          h('td', { 'data-label': 'At' }, when(a.at)),
          h('td', { 'data-label': 'Status code' }, a.status_code ?? '—'),
          h('td', { 'data-label': 'Error' }, a.error ?? 'none (delivered)'),
          h('td', { 'data-label': 'Duration', class: 'num' }, duration(a.duration_ms)),
        ),
      ),
    ),
  );
}

async function renderRun(id) {
  const token = ++viewToken;
  document.title = `${id} · runhook console`;
  const h1 = h('h1', { tabindex: '-1' }, 'Run ', h('code', {}, id));
  const status = h('p', {});
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Run actions' });
  const facts = h('dl', { class: 'facts' });
  const times = h('div', {});
  const talk = h('div', { class: 'transcript', id: 'transcript' });
  const steps = h('div', { id: 'steps-section' });
  const attempts = h('div', { id: 'attempts-section' });
  const section = (hid, title, body) => h('section', { class: 'card', 'aria-labelledby': hid }, h('h2', { id: hid }, title), body);
  main.replaceChildren(
    h('p', {}, h('a', { href: '/console' }, '← All runs')),
    h1,
    status,
    toolbar,
    h('div', { class: 'grid2' }, section('facts-h', 'Run', facts), section('timeline-h', 'Timeline', times)),
    section('transcript-h', 'Transcript', talk),
    section('steps-h', 'Steps', steps),
    section('attempts-h', 'Callback attempts', attempts),
  );

  const act = async (label, fn) => {
    try {
      await fn();
    } catch (err) {
      announce(`${label} failed: ${err.message}`);
      status.replaceChildren(h('span', { class: 'error', role: 'alert' }, `${label} failed: ${err.message}`));
    }
  };
  const cancel = h('button', { class: 'btn danger', type: 'button', id: 'cancel' }, 'Cancel run');
  const replay = h('button', { class: 'btn', type: 'button', id: 'replay' }, 'Replay');
  const resend = h('button', { class: 'btn secondary', type: 'button', id: 'resend' }, 'Resend callback');
  cancel.addEventListener('click', () =>
    act('Cancel', async () => {
      await api(`/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
      announce('Run cancelled');
      await refresh();
    }),
  );
  replay.addEventListener('click', () =>
    act('Replay', async () => {
      const fresh = await api(`/v1/runs/${encodeURIComponent(id)}/replay`, { method: 'POST' });
      location.assign(`/console/runs/${encodeURIComponent(fresh.id)}?replayed=1`);
    }),
  );
  resend.addEventListener('click', () =>
    act('Resend callback', async () => {
      await api(`/v1/runs/${encodeURIComponent(id)}/callback/retry`, { method: 'POST' });
      announce('Callback sent again');
      await refresh();
    }),
  );
  toolbar.append(cancel, replay, resend);

  let run;
  async function refresh() {
    const enc = encodeURIComponent(id);
    const [r, metrics, messages, stepList, tries] = await Promise.all([
      api(`/v1/runs/${enc}`),
      api(`/v1/runs/${enc}/metrics`),
      api(`/v1/runs/${enc}/messages?limit=1000`),
      api(`/v1/runs/${enc}/steps?order=asc&limit=1000`),
      api(`/v1/runs/${enc}/callback-attempts`),
    ]);
    const changed = run && run.status !== r.status;
    run = r;
    status.replaceChildren('Status: ', badge(r.status), r.stop_reason ? ` (${r.stop_reason})` : '', r.metadata?.error ? h('span', { class: 'error' }, ` — ${r.metadata.error}`) : '');
    status.setAttribute('data-status', r.status);
    if (changed) announce(`Run is now ${r.status}`);
    cancel.disabled = TERMINAL.has(r.status);
    resend.disabled = !(TERMINAL.has(r.status) && r.callback_url);
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v ?? '—')];
    facts.replaceChildren(
      ...row('Agent', r.agent_id),
      ...row('Conversation', r.conversation_id),
      ...row('Processor', r.processor),
      ...row('Created', when(r.created_at)),
      ...row('Completed', when(r.completed_at)),
      ...row('Attempts', String(metrics.attempts)),
      ...row('Callback URL', r.callback_url ? h('code', {}, r.callback_url) : null),
      ...row('Replay of', r.replay_of ? h('a', { href: `/console/runs/${encodeURIComponent(r.replay_of)}` }, h('code', {}, r.replay_of)) : null),
    );
    times.replaceChildren(timeline(r, metrics));
    const items = transcript(messages);
    talk.replaceChildren(...(items.length ? items : [h('p', { class: 'muted' }, TERMINAL.has(r.status) ? 'No messages.' : 'No messages yet.')]));
    steps.replaceChildren(stepsTable(stepList));
    attempts.replaceChildren(attemptsTable(r, tries));
  }
  try {
    await refresh();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      main.replaceChildren(h('h1', { tabindex: '-1' }, 'Run not found'), h('p', {}, `No run ${id} (deleted, or past its retention).`), h('p', {}, h('a', { href: '/console' }, '← All runs')));
      return;
    }
    throw err;
  }
  if (new URLSearchParams(location.search).has('replayed')) announce(`Replay started: run ${id}`);
  h1.focus();
  // Live while the run is going; a last refresh after it ends picks up its callback attempts.
  let tail = 3;
  const timer = setInterval(() => {
    if (token !== viewToken) return clearInterval(timer);
    if (document.hidden) return;
    if (TERMINAL.has(run.status) && tail-- <= 0) return clearInterval(timer);
    refresh().catch(showPollError);
  }, RUN_POLL_MS);
}

// ---- start -----------------------------------------------------------------------------------------

async function route() {
  const m = /^\/console\/runs\/([^/]+)\/?$/.exec(location.pathname);
  if (m) return renderRun(decodeURIComponent(m[1]));
  await renderList();
  if (document.activeElement === document.body) main.querySelector('h1')?.focus();
}

async function start() {
  forget.hidden = !sessionStorage.getItem(KEY);
  if (!(await authorized())) return renderLogin();
  await route();
}

forget.addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  location.assign('/console');
});
window.addEventListener('popstate', () => void route());
start().catch((err) => {
  main.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, err.message));
});
