export * from './generated/types.js';
export { schemas, messageTable, liveTable } from './generated/schemas.js';
export * from './constants.js';
export * from './error-codes.js';
export * from './validator.js';
export * from './binary-frame.js';
export * from './auth-message.js';
export * from './bundle.js';
