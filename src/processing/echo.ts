// The echo processor moved to processors/echo.ts with the other built-ins; kept for existing imports.
export * from './processors/echo.ts';
export { default } from './processors/echo.ts';
