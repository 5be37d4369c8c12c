import { describe, expect, it } from 'vitest';
import { EndpointSlots } from '../../src/callbacks/endpoint-slots.ts';

describe('per-receiver delivery slots', () => {
  it('gives a new or slow receiver at most `limit` deliveries at once', () => {
    const slots = new EndpointSlots(2, 1_000);
    const a = slots.tryAcquire('http://slow', 0);
    const b = slots.tryAcquire('http://slow', 1);
    expect(a && b).toBeTruthy();
    expect(slots.tryAcquire('http://slow', 2)).toBeUndefined();
    expect(slots.tryAcquire('http://other', 2)).toBeTruthy();
    a!();
    expect(slots.tryAcquire('http://slow', 3)).toBeTruthy();
  });

  it('does not hold back a receiver that answers fast', () => {
    const slots = new EndpointSlots(1, 1_000);
    // Learn that it is fast: deliveries released at once.
    for (let i = 0; i < 5; i++) slots.tryAcquire('http://fast')!();
    const held = [slots.tryAcquire('http://fast'), slots.tryAcquire('http://fast'), slots.tryAcquire('http://fast')];
    expect(held.every(Boolean)).toBe(true);
  });
});
