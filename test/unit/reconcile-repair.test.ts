import { describe, expect, it } from 'vitest';
import { repairFor, type Candidate } from '../../src/queue/reconcile.ts';

const NOW_US = 1_800_000_000_000_000;
const GRACE_MS = 10_000;
const old = NOW_US - 60_000_000;
const fresh = NOW_US - 1_000_000;
const candidate = (c: Partial<Candidate>): Candidate => ({ id: 'run-x', status: 'running', createdUs: old, job: 'missing', detail: '', ...c });
const repair = (c: Partial<Candidate>) => repairFor(candidate(c), NOW_US, GRACE_MS);

describe('what the reconciler does with a run, from its status and its job’s', () => {
  it('adds the job of a created run past its grace period, and waits for a fresh one', () => {
    expect(repair({ status: 'created', job: 'missing' })).toEqual({ kind: 'requeue', replaceJob: false });
    expect(repair({ status: 'created', job: 'missing', createdUs: fresh })).toEqual({ kind: 'none', young: true });
  });

  it('fails a running run whose job is gone, or failed with the job’s error', () => {
    expect(repair({ job: 'missing' })).toMatchObject({ kind: 'fail', error: expect.stringContaining('job lost') });
    expect(repair({ job: 'failed', detail: 'boom' })).toEqual({ kind: 'fail', error: 'boom' });
    expect(repair({ status: 'created', job: 'failed', detail: '' })).toEqual({ kind: 'fail', error: 'job failed' });
  });

  it('completes a running run with the stop reason its own attempt returned', () => {
    const done = { job: 'completed' as const, attempt: 2, jobAttempt: 2 };
    expect(repair({ ...done, detail: '{"stop_reason":"max_steps"}' })).toEqual({ kind: 'complete', stopReason: 'max_steps' });
    expect(repair({ ...done, detail: '{"stop_reason":"no_tool_call"}' })).toEqual({ kind: 'complete', stopReason: 'no_tool_call' });
    expect(repair({ ...done, detail: 'null' })).toEqual({ kind: 'complete', stopReason: 'end_turn' });
  });

  it('never completes a run from a job that ended {skipped} or in another attempt', () => {
    expect(repair({ job: 'completed', detail: '{"skipped":"superseded"}' })).toMatchObject({ kind: 'fail' });
    expect(repair({ job: 'completed', detail: '{"skipped":"stale"}', attempt: 1, jobAttempt: 1 })).toMatchObject({ kind: 'fail' });
    expect(repair({ job: 'completed', detail: '{"stop_reason":"end_turn"}', attempt: 3, jobAttempt: 1 })).toMatchObject({
      kind: 'fail',
      error: expect.stringContaining('held by attempt 3'),
    });
    expect(repair({ status: 'created', job: 'completed', detail: '{"skipped":"missing"}' })).toEqual({ kind: 'requeue', replaceJob: true });
    expect(repair({ status: 'created', job: 'completed', detail: '{"skipped":"missing"}', createdUs: fresh })).toEqual({ kind: 'none', young: true });
    expect(repair({ status: 'created', job: 'completed', detail: '{"stop_reason":"end_turn"}' })).toMatchObject({ kind: 'fail' });
  });
});
