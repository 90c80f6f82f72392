// Helpers shared by the server, the dashboard and the CLI, with no validator and no schemas:
// `@dvic/protocol/shared` is safe to bundle into the browser.
export * from './agent-version.js';
export * from './commands.js';
export * from './demos.js';
export * from './format.js';
export * from './hardware.js';
export * from './levels.js';
export * from './logs.js';
export * from './metric-series.js';
export type * from './terminal.js';
export * from '../generated/constants.js';
export { ErrorCode } from '../error-codes.js';
export type * from '../generated/types.js';
