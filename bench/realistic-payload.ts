/**
 * A realistic run for the cost figures (issue 18): a user message of ~2 KB of English prose, metadata as
 * an application sends it, and echo's answer, the same text streamed a word at a time (400 chunks).
 * The text is real sentences drawn without repetition from a pool, so it compresses like prose does, not
 * like a repeated word would (a repeated word makes deflate look ten times better than it is).
 */

const SENTENCES = [
  'The deployment failed because the new worker image could not reach the database during its health check.',
  'We rolled back to the previous release after about twelve minutes, and traffic recovered within a minute of that.',
  'Please check whether the connection string in the staging environment still points at the old replica.',
  'I looked at the logs from last night and found three requests that timed out while waiting for a lock.',
  'Can you summarise what changed in the billing service since Tuesday and who approved each change?',
  'The customer says their invoices show the wrong tax rate for orders shipped to Norway in October.',
  'Our plan is to move the report generation into a background job so the page answers at once.',
  'If the queue grows faster than the workers drain it, new jobs should wait rather than be dropped.',
  'She asked for a short answer first and the detailed steps afterwards, in case she needs to forward it.',
  'The tests pass on my machine, but the build server uses an older version of the compiler.',
  'Most of the memory goes to caching images that nobody has opened in the last thirty days.',
  'When the network is slow, the mobile app retries the upload and sometimes creates a duplicate record.',
  'Let me know if the numbers look right to you before I send them to the finance team on Friday.',
  'The agent should answer in the language of the question and keep technical terms in English.',
  'A good summary names the problem, the cause, what was done about it and what is still open.',
  'Two of the five regions report higher latency since the load balancer was upgraded this morning.',
  'He wants to know why the dashboard shows fewer active users than the weekly email claims.',
  'We keep each finished run for thirty days, then remove it together with its messages and indexes.',
  'The contract requires that a callback is signed, retried with backoff and never follows a redirect.',
  'I could not reproduce the crash with the sample file, so I asked the user for the original one.',
  'Before we change the schema, we need to know how many rows the migration will touch in production.',
  'The support ticket was opened on Monday and has been waiting for an answer from the vendor since.',
  'Please draft a polite reply that explains the delay and offers a partial refund for the month.',
  'Our search results improved after we removed stop words and boosted matches in the title field.',
  'The printer on the third floor jams whenever someone sends a document with more than forty pages.',
  'They would like a weekly digest instead of one message per event, sent early on Monday morning.',
  'The model sometimes invents a function name, so the tool call is checked against the list first.',
  'An empty response from the server usually means the request was cancelled by the proxy in front of it.',
  'The old importer read the whole file into memory, which failed for exports larger than two gigabytes.',
  'I suggest we add a test that kills the worker in the middle of a run and checks that nothing is lost.',
  'The meeting notes mention a deadline at the end of the quarter, but nobody owns the task yet.',
  'Every step of the order flow writes an event, so we can rebuild the state of any order later.',
  'The error rate went up after midnight when the certificate of the payment gateway expired.',
  'We should explain in the guide how to rotate the signing secret without losing a single message.',
  'Her question is whether the archive can be searched by date, by customer and by amount at once.',
  'The script that cleans up temporary files has not run since the server was moved to the new rack.',
  'It would help to see the slowest ten queries of the last hour together with their plans.',
  'After the update, the settings page forgets the chosen time zone whenever the browser is restarted.',
  'The translation of the onboarding emails is finished, except for the legal notice at the bottom.',
  'Our users mostly ask about passwords, invoices, delivery times and how to export their data.',
  'A cheaper plan would keep fewer copies of each backup and move older ones to slower storage.',
  'The warehouse scanner sends the same barcode twice when the battery is low, so we drop repeats.',
  'I have attached the chart of response times; the spikes line up with the nightly batch import.',
  'When a conversation is busy, the next message waits its turn instead of being rejected.',
  'We can ship the fix today if the review is done by noon and the staging checks stay green.',
  'The new onboarding flow asks for fewer details up front and lets people fill in the rest later.',
  'Nobody noticed the disk was almost full until the database refused to write new transactions.',
  'The answer should cite the page of the manual where the setting is described, with its default value.',
];

/** A small seeded generator (mulberry32), so every run's text differs and a benchmark is repeatable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Echo streams a word with its trailing space as one chunk: the text has exactly `words` of them. */
export function realisticText(seed: number, words = 400): string {
  const next = random(seed);
  const pool = [...SENTENCES];
  const out: string[] = [];
  while (out.length < words) {
    if (pool.length === 0) pool.push(...SENTENCES);
    const [s] = pool.splice(Math.floor(next() * pool.length), 1);
    out.push(...s!.split(' '));
  }
  return out.slice(0, words).join(' ');
}

/** The create body of one realistic run: a user message of ~2 KB, metadata, and (optionally) a callback. */
export function realisticRun(seed: number, callbackUrl?: string): { agent_id: string; input: { text: string }; metadata: Record<string, unknown>; callback_url?: string } {
  const next = random(seed ^ 0x5bd1e995);
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(next() * 16).toString(16)).join('');
  return {
    agent_id: 'agent-support',
    input: { text: realisticText(seed) },
    metadata: {
      user_id: `user-${hex(12)}`,
      session_id: `sess-${hex(16)}`,
      source: 'web-chat',
      locale: 'en-GB',
      app_version: '4.18.2',
      trace_id: hex(32),
      tags: ['support', 'billing'],
    },
    ...(callbackUrl !== undefined && { callback_url: callbackUrl }),
  };
}

/** The bytes a user would call the run's own data: the input and metadata as JSON, and the answer's text. */
export function payloadBytes(body: { input: unknown; metadata?: unknown }, answer: string): number {
  return Buffer.byteLength(JSON.stringify(body.input)) + Buffer.byteLength(JSON.stringify(body.metadata ?? null)) + Buffer.byteLength(answer);
}
