import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['./test/helpers/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files share one redis-server (each with its own key prefix); two cores, so few at once.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
