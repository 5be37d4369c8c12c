import { EventEmitter } from 'node:events';
import type { RedisClient } from '../queue/connection.ts';
import { isoToMicros, microsToIso, nowMicros } from '../clock.ts';
import {
  ConversationAgentMismatchError,
  ConversationBusyError,
  IdempotencyConflictError,
  IllegalTransitionError,
  InvalidInputError,
  RunDeletedError,
  RunNotFoundError,
} from '../errors.ts';
import { RunKeys } from './keys.ts';
import { flatToHash, hashToRecord, newRunFields, type RunRecord } from './record.ts';
import {
  RunCreate,
  type CallbackAttempt,
  GivenTimestamp,
  type Metadata,
  RunListQuery,
  newRunId,
  type Run,
  type RunCreateParsed,
  type RunStatus,
  type RunUpdate,
  type RunUsage,
  type StopReasonType,
} from './schema.ts';
import { foldLog, logMessages, readLog, streamOrder } from './message-log.ts';
import { assembleMessages, type RunMessage } from './messages.ts';
import { runScripts, type ScriptRunner } from './scripts.ts';
import { decodeStep, MAX_STEPS_PER_RUN, stepFields, stepRef, stepWritesArg, type StepWrites, type StoredStep } from './steps.ts';
import { defaultStopReason, isTerminal, statusOfStopReason } from './status.ts';

export interface RunStoreOptions {
  keyPrefix: string;
  retentionMs: number;
  /**
   * How long an ended run's chunks are kept beside its folded messages, so that a stream resumes exactly
   * (RUNHOOK_STREAM_REPLAY_MINUTES); 0 keeps none. Default DEFAULT_REPLAY_MS.
   */
  replayMs?: number;
  /** Flow control (CONTRACT section 8): most runs admitted at once per agent; 0 or absent, no limit. */
  agentConcurrency?: number;
  /** 'reject': a run on a conversation that has one not yet ended is a 409, as Letta answers. */
  conversationBusy?: 'queue' | 'reject';
}

/** RUNHOOK_STREAM_REPLAY_MINUTES's default: 60 minutes (Letta keeps its streams 3 hours). */
export const DEFAULT_REPLAY_MS = 60 * 60_000;

/** Unfolded logs older than this are folded by the maintenance pass: the run's own end did not get there. */
const FOLD_LEFTOVER_AFTER_MS = 30_000;

export interface TransitionOptions {
  stopReason?: StopReasonType | null;
  error?: string | null;
  usage?: RunUsage | null;
  /** The attempt asking; a stale attempt's move out of `running` is refused. */
  attempt?: number;
  completedUs?: number;
  totalDurationNs?: number;
  /** Message JSONs of the asking attempt, appended just before the run ends (one script, not two). */
  messages?: readonly string[];
  /** When the first of `messages` was emitted (epoch µs), for ttft_ns. */
  messagesAtUs?: number;
  /** Steps of the asking attempt not written yet, written with the move (a running run only). */
  steps?: StepWrites | null;
}

export type TransitionResult =
  | {
      outcome: 'moved';
      from: RunStatus;
      /** Set when the move ended the run. */
      totalDurationNs?: number;
      ttftNs?: number | null;
      /** The seq id of the first message passed in `messages`, when there were any. */
      firstMessageSeq?: number;
    }
  | { outcome: 'unchanged'; status: RunStatus }
  | { outcome: 'illegal'; status: RunStatus }
  | { outcome: 'stale'; status: RunStatus }
  /** The completed_at given is before the run was created (a RunUpdate's). */
  | { outcome: 'before_created'; status: RunStatus; createdUs: number }
  | { outcome: 'missing' };

/** An Idempotency-Key claimed with the run it creates (see create-run.lua). */
export interface IdempotencyClaim {
  key: string;
  /** Of the request: the same key with another request is a conflict. */
  requestHash: string;
  /** How long the key is remembered. */
  ttlMs: number;
}

/** A RunUpdate's parts that ride with its move, in the same script. */
interface UpdateStep extends TransitionOptions {
  /** Replaces the run's metadata (null removes it); undefined keeps it. */
  metadata?: Metadata | null;
  /** A terminal run asked for its own status with another stop reason is illegal, not a no-op. */
  strictStopReason?: boolean;
}

export interface CreateOptions {
  validated?: boolean;
  idempotency?: IdempotencyClaim;
  replayOf?: string;
}

/**
 * How far ahead of this server's clock a RunUpdate's completed_at may be (clock skew between the
 * caller and the server); later is refused. Retention never counts from it either way.
 */
export const COMPLETED_AT_MAX_SKEW_MS = 5_000;

/** A run as its terminal move left it: its hash fields and its compacted message log. */
export interface EndedRun {
  hash: Record<string, string>;
  messageLog: string;
}

export type StartResult =
  | { outcome: 'started'; record: RunRecord }
  | { outcome: 'ended'; status: RunStatus }
  /** A newer attempt holds the run: this one must not run it. */
  | { outcome: 'stale'; attempt: number }
  /** Flow control holds the run (behind its conversation or a limit): this job must not run it. */
  | { outcome: 'held' }
  | { outcome: 'missing' };

/** One entry of a run's message stream: a message the processor emitted, or the closing stop reason. */
export type StreamEntry =
  | { seq_id: number; kind: 'message'; message: Record<string, unknown> }
  | { seq_id: number; kind: 'stop'; stop_reason: StopReasonType | null };

/** Attempts kept per run in the callback delivery log. */
export const CALLBACK_LOG_CAP = 50;

/** Candidates one list call may examine before it hands back to the caller (keeps scripts short). */
const LIST_BUDGET = 5_000;

/**
 * Runs in Redis: one hash per run, sorted-set indexes in creation order for every list filter, and a
 * stream of the messages each run emitted. Every change of status goes through transition-run.lua, so
 * two processes racing to move one run can never both win.
 */
export class RunStore {
  readonly keys: RunKeys;
  /**
   * `callback-due` (runId): a terminal move put the run's callback in the outbox; whoever listens adds
   * the delivery job at once (the outbox sweep catches what a crash leaves).
   * `flow-ready` (admitted): a terminal move handed its place over (flow control): these runs are
   * admitted and need their jobs (id, agent id, priority, run_at per run: flow/flow.ts readyRuns) (the reconciler's sweep of the ready set catches what a crash leaves).
   */
  readonly events = new EventEmitter<{ 'callback-due': [runId: string, ended: EndedRun]; 'flow-ready': [admitted: string[]] }>();
  readonly #scripts: ScriptRunner;

  constructor(
    readonly redis: RedisClient,
    readonly options: RunStoreOptions,
  ) {
    this.keys = new RunKeys(options.keyPrefix);
    this.#scripts = runScripts(redis);
  }

  /**
   * Stores a new run in `created`. Creating with an id that exists returns that run unchanged. With an
   * Idempotency-Key (`idempotency`), the key is claimed for the run in the same script: the same key and
   * request again return the run it names; with another request it is an IdempotencyConflictError; once
   * its run was deleted, a RunDeletedError, never a new run.
   * `validated`: the body is RunCreate's output already (the API validated it), so it is not parsed again.
   * `replayOf`: the run this one replays (not a body field: only a replay sets it).
   */
  async create(
    body: RunCreate | RunCreateParsed,
    id: string = newRunId(),
    { validated = false, idempotency, replayOf }: CreateOptions = {},
  ): Promise<{ record: RunRecord; created: boolean; admitted: boolean }> {
    const c = validated ? (body as RunCreateParsed) : RunCreate.parse(body);
    const createdUs = nowMicros();
    const fields = newRunFields({
      id,
      agentId: c.agent_id,
      createdUs,
      input: c.input,
      callbackUrl: c.callback_url,
      metadata: c.metadata,
      background: c.background,
      conversationId: c.conversation_id,
      baseTemplateId: c.base_template_id,
      requestConfig: c.request_config,
      processor: c.processor,
      replayOf,
      priority: c.priority,
      runAtUs: c.run_at ? isoToMicros(c.run_at) : undefined,
    });
    const [seq, existing] = (await this.#scripts.createRun(
      this.keys.run(id),
      this.keys.prefix,
      id,
      idempotency ? this.keys.idempotency(idempotency.key) : '',
      idempotency?.requestHash ?? '',
      idempotency?.ttlMs ?? 0,
      this.options.agentConcurrency ?? 0,
      this.options.conversationBusy === 'reject' ? 'reject' : '',
      ...fields,
    )) as [number, (string | number)?];
    if (seq === -1) throw new RunDeletedError(String(existing));
    if (seq === -3) throw new ConversationAgentMismatchError(c.conversation_id!, c.agent_id, String(existing));
    if (seq === -4) throw new ConversationBusyError(c.conversation_id!, String(existing));
    if (seq === -2) throw new IdempotencyConflictError('this Idempotency-Key was used with a different request', { run_id: existing });
    if (seq === 0) {
      // An earlier run: its job was added when it was admitted (or the reconciler adds it).
      const record = await this.requireRecord(String(existing));
      return { record, created: false, admitted: record.flow === null || record.flow === 'run' };
    }
    const h: Record<string, string> = { seq: String(seq) };
    for (let i = 0; i < fields.length; i += 2) h[fields[i]!] = fields[i + 1]!;
    return { record: hashToRecord(h), created: true, admitted: existing === 1 };
  }

  async getRecord(id: string): Promise<RunRecord | null> {
    const h = await this.redis.hgetall(this.keys.run(id));
    return h.id === undefined ? null : hashToRecord(h);
  }

  async requireRecord(id: string): Promise<RunRecord> {
    const r = await this.getRecord(id);
    if (!r) throw new RunNotFoundError(id);
    return r;
  }

  async get(id: string): Promise<Run | null> {
    return (await this.getRecord(id))?.run ?? null;
  }

  async require(id: string): Promise<Run> {
    return (await this.requireRecord(id)).run;
  }

  /** A worker begins an attempt: see start-run.lua. */
  async start(id: string, attempt: number): Promise<StartResult> {
    const r = (await this.#scripts.startRun(
      this.keys.run(id),
      this.keys.messages(id),
      this.keys.prefix,
      id,
      nowMicros(),
      attempt,
    )) as unknown[];
    if (r[0] === -1) return { outcome: 'missing' };
    if (r[0] === -2) return { outcome: 'stale', attempt: Number(r[1]) };
    if (r[0] === -3) return { outcome: 'held' };
    if (r[0] === 0) return { outcome: 'ended', status: r[1] as RunStatus };
    return { outcome: 'started', record: hashToRecord(flatToHash(r.slice(1))) };
  }

  /** Appends a message of `attempt`; returns its seq id, or 0 when the run no longer takes them. */
  async emit(id: string, attempt: number, message: Record<string, unknown>): Promise<number> {
    return this.emitMany(id, attempt, [JSON.stringify(message)], nowMicros());
  }

  /**
   * Appends message JSONs of `attempt` in order, and writes the steps it recorded since, in one step;
   * returns the first message's seq id (-1 when there were only steps), or 0 as `emit`.
   * `firstAtUs` is when the first was emitted: ttft_ns is measured to then, not to when it reached Redis.
   */
  async emitMany(id: string, attempt: number, messages: readonly string[], firstAtUs: number, steps?: StepWrites | null): Promise<number> {
    return Number(
      await this.#scripts.emitMessage(this.keys.run(id), this.keys.messages(id), attempt, firstAtUs, stepWritesArg(steps), ...messages),
    );
  }

  /** A run's steps in the order they were recorded, or null when the run does not exist. */
  async steps(id: string): Promise<StoredStep[] | null> {
    const h = await this.redis.hgetall(this.keys.run(id));
    if (h.id === undefined) return null;
    const run = { id, agentId: h.agent_id!, createdUs: Number(h.created_us) };
    const out: StoredStep[] = [];
    // Steps are numbered from 1 without gaps: the first missing number is the end.
    for (let i = 0; i < MAX_STEPS_PER_RUN; i++) {
      const [st, sm, sn] = stepFields(i);
      if (h[st] === undefined) break;
      out.push(decodeStep({ st: h[st], sm: h[sm], sn: h[sn] }, run, i));
    }
    return out;
  }

  /** One step by its id (which names its run, see steps.ts), or null. */
  async step(stepId: string): Promise<StoredStep | null> {
    const ref = stepRef(stepId);
    if (!ref) return null;
    const [agentId, createdUs, st, sm, sn] = await this.redis.hmget(this.keys.run(ref.runId), 'agent_id', 'created_us', ...stepFields(ref.index));
    if (agentId == null || st == null) return null;
    return decodeStep({ st, sm, sn }, { id: ref.runId, agentId, createdUs: Number(createdUs) }, ref.index);
  }

  /**
   * Moves a run, atomically, along the status machine. A terminal move takes the stop reason given or
   * the status's default (end_turn, error, cancelled).
   */
  async transition(id: string, to: RunStatus, o: TransitionOptions = {}): Promise<TransitionResult> {
    return this.#transition(id, to, o);
  }

  /** transition-run.lua; `to` '' changes only the metadata (a RunUpdate without a status). */
  async #transition(id: string, to: RunStatus | '', o: UpdateStep): Promise<TransitionResult> {
    const stopReason = to !== '' && isTerminal(to) ? (o.stopReason ?? defaultStopReason(to)) : null;
    const r = (await this.#scripts.transitionRun(
      this.keys.run(id),
      this.keys.messages(id),
      this.keys.messageLog(id),
      this.keys.prefix,
      id,
      to,
      nowMicros(),
      stopReason ?? '',
      o.error ?? '',
      this.options.retentionMs,
      o.attempt ?? '',
      o.usage ? usageToField(o.usage) : '',
      o.completedUs ?? '',
      o.totalDurationNs ?? '',
      STREAM_LINGER_MS,
      o.messagesAtUs ?? '',
      o.metadata === undefined ? '' : o.metadata === null ? 'null' : JSON.stringify(o.metadata),
      o.strictStopReason ? '1' : '',
      stepWritesArg(o.steps),
      ...(o.messages ?? []),
    )) as [number, RunStatus?, number?, string?, string?, number?, string[]?, string?, string[]?];
    switch (r[0]) {
      case 1:
        if (r[2] === 1) this.events.emit('callback-due', id, { hash: flatToHash(r[6] ?? []), messageLog: r[7] ?? '' });
        if (r[8] && r[8].length > 0) this.events.emit('flow-ready', r[8]);
        // The run ended: fold its log now, without holding up the caller (the run's end is recorded; its
        // log reads the same either way). A failure leaves it in the unfolded set for the maintenance
        // pass. A log whose every message was one chunk comes back folded already: nothing to do.
        if (r[7] !== undefined && /^\d/.test(r[7])) void this.#fold(id, r[7], Date.now()).catch(() => undefined);
        if (r[3] === undefined) return { outcome: 'moved', from: r[1]! };
        return { outcome: 'moved', from: r[1]!, totalDurationNs: Number(r[3]), ttftNs: r[4] ? Number(r[4]) : null, firstMessageSeq: Number(r[5] ?? 0) };
      case 0:
        return { outcome: 'unchanged', status: r[1]! };
      case -2:
        return { outcome: 'illegal', status: r[1]! };
      case -3:
        return { outcome: 'stale', status: r[1]! };
      case -4:
        return { outcome: 'before_created', status: r[1]!, createdUs: Number(r[2]) };
      default:
        return { outcome: 'missing' };
    }
  }

  /** Like transition, but a refused move is an error (for callers that act on a user's request). */
  async move(id: string, to: RunStatus, o: TransitionOptions = {}): Promise<Run> {
    const r = await this.transition(id, to, o);
    if (r.outcome === 'missing') throw new RunNotFoundError(id);
    if (r.outcome === 'illegal' || r.outcome === 'stale') throw new IllegalTransitionError(id, r.status, to);
    return this.require(id);
  }

  /**
   * Applies Letta's RunUpdate as one step (transition-run.lua): the status or stop reason moves the run,
   * the metadata is replaced, `completed_at` and `total_duration_ns` are taken, all together or not at
   * all, so a callback carries the metadata of the same step and an update racing a delete or retention
   * never leaves a stray run key. `completed_at` must be a real time, not before `created_at` and at
   * most COMPLETED_AT_MAX_SKEW_MS past this server's clock; retention counts from the server's clock.
   */
  async update(id: string, patch: RunUpdate): Promise<Run> {
    const metadata = patch.metadata !== undefined ? patch.metadata : patch.metadata_;
    const stopReason = patch.stop_reason ?? undefined;
    const to = patch.status ?? (stopReason ? statusOfStopReason(stopReason) : undefined);
    if (to && stopReason && isTerminal(to) && statusOfStopReason(stopReason) !== to) {
      throw new InvalidInputError(`stop_reason ${stopReason} implies status ${statusOfStopReason(stopReason)}, not ${to}`);
    }
    let completedUs: number | undefined;
    if (patch.completed_at && to && isTerminal(to)) {
      const given = GivenTimestamp.safeParse(patch.completed_at);
      // A time with no offset is UTC (Date.parse would read it in the server's time zone).
      completedUs = given.success ? isoToMicros(/(Z|[+-]\d\d:?\d\d)$/i.test(given.data) ? given.data : `${given.data}Z`) : undefined;
      if (completedUs === undefined) throw new InvalidInputError('completed_at is not a valid timestamp', { completed_at: patch.completed_at });
      if (completedUs > nowMicros() + COMPLETED_AT_MAX_SKEW_MS * 1000) {
        throw new InvalidInputError(`completed_at is in the future (more than ${COMPLETED_AT_MAX_SKEW_MS} ms past the server's clock)`, {
          completed_at: patch.completed_at,
        });
      }
    }
    const r = await this.#transition(id, to ?? '', {
      stopReason: stopReason ?? null,
      strictStopReason: stopReason !== undefined,
      ...(metadata !== undefined && { metadata }),
      ...(completedUs !== undefined && { completedUs }),
      ...(patch.total_duration_ns != null && { totalDurationNs: patch.total_duration_ns }),
    });
    if (r.outcome === 'missing') throw new RunNotFoundError(id);
    if (r.outcome === 'illegal' || r.outcome === 'stale') throw new IllegalTransitionError(id, r.status, to ?? r.status);
    if (r.outcome === 'before_created') {
      throw new InvalidInputError(`completed_at is before the run was created (${microsToIso(r.createdUs)})`, {
        completed_at: patch.completed_at,
        created_at: microsToIso(r.createdUs),
      });
    }
    return this.require(id);
  }

  /**
   * Records one callback delivery attempt: on the run (callback_sent_at, callback_status_code,
   * callback_error, as CONTRACT section 4) and in its capped delivery log, in one MULTI.
   */
  async recordCallbackAttempt(id: string, a: CallbackAttempt, sentUs: number): Promise<void> {
    await this.#scripts.recordCallbackAttempt(
      this.keys.run(id),
      this.keys.callbackAttempts(id),
      this.keys.callbackCounts,
      this.keys.callbackOutbox,
      sentUs,
      a.status_code ?? '',
      a.error ?? '',
      callbackState(a),
      JSON.stringify(a),
      CALLBACK_LOG_CAP,
      id,
    );
  }

  /** How many runs' callbacks are delivered, still being retried, or given up. */
  async callbackCounts(): Promise<Record<CallbackState, number>> {
    const h = await this.redis.hgetall(this.keys.callbackCounts);
    return { delivered: Number(h.delivered ?? 0), retrying: Number(h.retrying ?? 0), given_up: Number(h.given_up ?? 0) };
  }

  /** The delivery log of a run's callback, oldest attempt first (the last CALLBACK_LOG_CAP kept). */
  async callbackAttempts(id: string): Promise<CallbackAttempt[]> {
    const raw = await this.redis.get(this.keys.callbackAttempts(id));
    return (raw ?? '').split('\n').filter(Boolean).map((r) => JSON.parse(r) as CallbackAttempt);
  }

  /**
   * Replaces an ended run's chunk log with its folded form (see message-log.ts), keeping the chunks for
   * what is left of the replay window. True when written; false when the run is gone or was folded.
   */
  async #fold(id: string, chunkLog: string, endedMs: number): Promise<boolean> {
    const folded = foldLog(chunkLog);
    const keepMs = (this.options.replayMs ?? DEFAULT_REPLAY_MS) - (Date.now() - endedMs);
    const r = await this.#scripts.foldLog(
      this.keys.run(id),
      this.keys.messageLog(id),
      this.keys.messageChunks(id),
      this.keys.unfoldedLogs,
      id,
      Buffer.byteLength(chunkLog),
      folded.log,
      folded.chunks ?? '',
      Math.max(0, Math.floor(keepMs)),
    );
    return Number(r) === 1;
  }

  /**
   * Folds the logs of runs that ended more than FOLD_LEFTOVER_AFTER_MS ago and are still unfolded (a
   * process died between a run's end and its fold); for the maintenance pass. Returns how many.
   */
  async foldLeftoverLogs(nowMs = Date.now(), count = 500): Promise<number> {
    const r = await this.redis.zrangebyscore(this.keys.unfoldedLogs, '-inf', nowMs - FOLD_LEFTOVER_AFTER_MS, 'WITHSCORES', 'LIMIT', 0, count);
    let folded = 0;
    for (let i = 0; i < r.length; i += 2) {
      const id = r[i]!;
      const log = await this.redis.get(this.keys.messageLog(id));
      if (log === null || !/^\d/.test(log)) {
        await this.redis.zrem(this.keys.unfoldedLogs, id);
        continue;
      }
      if (await this.#fold(id, log, Number(r[i + 1]))) folded++;
    }
    return folded;
  }

  async delete(id: string): Promise<boolean> {
    const r = (await this.#scripts.deleteRun(this.keys.run(id), this.keys.messages(id), this.keys.messageLog(id), this.keys.prefix, id)) as
      | 0
      | [1, string[]];
    await this.redis.del(this.keys.callbackAttempts(id));
    if (r === 0) return false;
    // A run deleted while it held a place in flow control handed it over: the next runs' jobs go now.
    if (r[1].length > 0) this.events.emit('flow-ready', r[1]);
    return true;
  }

  /** One page of runs, newest first unless asked otherwise; see list-runs.lua. */
  async list(query: RunListQuery = {}): Promise<Run[]> {
    const q = RunListQuery.parse(query);
    const [start, end] = await Promise.all([this.#cursor(q.after), this.#cursor(q.before)]);
    const filters = JSON.stringify({
      agents: q.agent_ids ?? [],
      statuses: q.statuses ?? [],
      ...(q.background !== undefined && { bg: q.background ? '1' : '0' }),
      ...(q.stop_reason !== undefined && { stop: q.stop_reason, stop_status: statusOfStopReason(q.stop_reason) }),
      ...(q.conversation_id !== undefined && { conv: q.conversation_id }),
    });
    const runs: Run[] = [];
    let cursor = start;
    for (;;) {
      const r = (await this.#scripts.listRuns(
        this.keys.index('all'),
        this.keys.prefix,
        q.order,
        cursor,
        end,
        q.limit - runs.length,
        LIST_BUDGET,
        filters,
      )) as [string, ...unknown[]];
      for (const flat of r.slice(1)) runs.push(hashToRecord(flatToHash(flat)).run);
      if (r[0] === '' || runs.length >= q.limit) return runs;
      cursor = r[0];
    }
  }

  /**
   * A run id as a list cursor: its position in creation order, read from the index or, for a run deleted
   * since (by DELETE or retention), from its tombstone, so a client paging with it goes on from there.
   * An id that never was a run is invalid input, as a bad cursor.
   */
  async #cursor(id: string | undefined): Promise<string> {
    if (id === undefined) return '';
    // Sent back to back: one round trip.
    const [live, gone] = await Promise.all([
      this.redis.zscore(this.keys.index('all'), id),
      this.redis.zscore(this.keys.cursorTombstones, id),
    ]);
    const seq = live ?? gone;
    if (seq === null) throw new InvalidInputError(`cursor ${id} is not a known run id`, { cursor: id });
    return seq;
  }

  /**
   * Entries of a run's stream after `afterSeq`, in order, at most `count`: from the live stream while the
   * run goes on; once it ended, exactly its chunks while the replay window is open (from its unfolded log
   * or its chunk copy), and after the window its folded messages in the order they were finished (each
   * with the seq id of its last chunk), so that a resume after seq N gets, whole, every message not
   * finished at N, then the stop entry. One round trip.
   */
  async streamEntries(id: string, afterSeq = 0, count = 1000): Promise<StreamEntry[]> {
    // Sent back to back (one round trip); not a pipeline object, which copies every script on the connection.
    const [stored, chunks, stream] = await Promise.all([
      this.redis.getBuffer(this.keys.messageLog(id)),
      this.redis.getBuffer(this.keys.messageChunks(id)),
      this.redis.xrange(this.keys.messages(id), `(${afterSeq}-0`, '+', 'COUNT', count),
    ]);
    const log = readLog(stored);
    if (!log) return stream.map(([streamId, fields]) => parseStreamEntry(streamId, fields));
    const exact = log.form === 'folded' && !log.exact ? (readLog(chunks) ?? log) : log;
    const out: StreamEntry[] = [];
    for (const e of streamOrder(exact)) {
      if (e.seq_id <= afterSeq) continue;
      out.push(e);
      if (out.length >= count) break;
    }
    return out;
  }

  /**
   * A run's whole messages (chunks that share an id and type joined, as Letta returns them) and the seq
   * id of its first chunk (past 1 when an earlier attempt's were dropped; null when there is none): from
   * the folded log once the run ended, else from its chunks.
   */
  async messages(id: string): Promise<{ messages: RunMessage[]; firstSeq: number | null }> {
    const log = readLog(await this.redis.getBuffer(this.keys.messageLog(id)));
    if (log) return { messages: logMessages(log), firstSeq: log.firstSeq };
    const entries: StreamEntry[] = [];
    for (;;) {
      const page = await this.streamEntries(id, entries.at(-1)?.seq_id ?? 0, 1000);
      entries.push(...page);
      if (page.length < 1000) break;
    }
    return { messages: assembleMessages(entries), firstSeq: entries.find((e) => e.kind === 'message')?.seq_id ?? null };
  }

  /** Ids of runs not yet terminal, oldest first, for the reconciler; a page at a time. */
  async nonTerminalIds(status: 'created' | 'running', afterSeq: number, count: number): Promise<{ id: string; seq: number }[]> {
    const r = await this.redis.zrange(this.keys.index('status', status), `(${afterSeq}`, '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES');
    const out: { id: string; seq: number }[] = [];
    for (let i = 0; i < r.length; i += 2) out.push({ id: r[i]!, seq: Number(r[i + 1]) });
    return out;
  }

  /** Runs whose callback was due before `beforeMs` and has no delivery job yet (the outbox). */
  async dueCallbackIds(beforeMs: number, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.callbackOutbox, '-inf', beforeMs, 'LIMIT', 0, count);
  }

  /** Ids of terminal runs whose retention has passed. */
  async expiredIds(nowMs: number, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.expiry, '-inf', nowMs, 'LIMIT', 0, count);
  }

  async countByStatus(): Promise<Record<RunStatus, number>> {
    const statuses: RunStatus[] = ['created', 'running', 'completed', 'failed', 'cancelled'];
    const p = this.redis.pipeline();
    for (const s of statuses) p.zcard(this.keys.index('status', s));
    const res = (await p.exec()) ?? [];
    return Object.fromEntries(statuses.map((s, i) => [s, Number(res[i]?.[1] ?? 0)])) as Record<RunStatus, number>;
  }
}

export type CallbackState = 'delivered' | 'retrying' | 'given_up';

export function callbackState(a: CallbackAttempt): CallbackState {
  return a.error === null ? 'delivered' : a.gave_up ? 'given_up' : 'retrying';
}

/** How long a stream stays after its run ended: readers blocked on it get the stop entry. */
export const STREAM_LINGER_MS = 5_000;

/**
 * A run's entries from what one read of its message log (either form, see message-log.ts; read with
 * GET's Buffer variant, as a folded log may be compressed) and of its stream returned, for assembling
 * its messages: a folded log's entries are its whole messages.
 */
export function entriesFromReads(
  log: Buffer | string | null | undefined,
  stream: Array<[string, string[]]> | undefined,
  afterSeq = 0,
  count = Number.POSITIVE_INFINITY,
): StreamEntry[] {
  const read = readLog(log);
  if (read) {
    const out: StreamEntry[] = [];
    for (const e of read.entries) {
      if (e.seq_id <= afterSeq) continue;
      out.push(e);
      if (out.length >= count) break;
    }
    return out;
  }
  return (stream ?? []).map(([streamId, fields]) => parseStreamEntry(streamId, fields));
}

/** Usage as `prompt,completion,total,steps`: short enough to keep the run hash in Redis's compact encoding. */
export function usageToField(u: RunUsage): string {
  return `${u.prompt_tokens},${u.completion_tokens},${u.total_tokens},${u.step_count}`;
}

export function parseStreamEntry(streamId: string, fields: string[]): StreamEntry {
  const seq_id = Number(streamId.split('-')[0]);
  if (fields[0] === 's') return { seq_id, kind: 'stop', stop_reason: (fields[1] || null) as StopReasonType | null };
  return { seq_id, kind: 'message', message: JSON.parse(fields[1] ?? '{}') as Record<string, unknown> };
}
