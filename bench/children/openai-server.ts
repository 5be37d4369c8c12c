/**
 * The streaming scenario's model server (test/helpers/openai-server.ts), in its own process so that
 * producing chunks costs neither side's event loop. Every request gets the same stream: `chunks` content
 * deltas, no delay, a usage chunk, [DONE] (a "quiet" request: three chunks after a first-chunk delay). IPC: {id, cmd: 'count'} → {id, requests, finished, closed}.
 */
import { OpenAIServer } from '../../test/helpers/openai-server.ts';

const chunks = Number(process.argv[2] ?? 500);
const quietDelayMs = Number(process.argv[3] ?? 20);
const content = Array.from({ length: chunks }, (_, i) => `t${i} `);
const firehose = { content, usage: { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks } };
// A request whose user message starts with "quiet" gets a short answer after a first-chunk delay: the
// scenario's ttft pass, one run at a time, where nothing else competes for the event loop.
const quiet = { content: ['a ', 'short ', 'answer'], firstChunkDelayMs: quietDelayMs };
const server = await OpenAIServer.start((req) => {
  const messages = (req.body.messages ?? []) as Array<{ content?: unknown }>;
  return String(messages.at(-1)?.content ?? '').startsWith('quiet') ? quiet : firehose;
});

process.on('message', (m: { id: number; cmd: string }) => {
  if (m.cmd === 'count') {
    const rs = server.requests;
    process.send!({ id: m.id, requests: rs.length, finished: rs.filter((r) => r.finished).length, closed: rs.filter((r) => r.clientClosed).length });
    // The scenario asks once per round; what it has read can go.
    server.reset();
    return;
  }
  process.send!({ id: m.id, error: `unknown command ${m.cmd}` });
});
process.on('disconnect', () => void server.close().finally(() => process.exit(0)));
process.send!({ type: 'ready', port: server.port });
