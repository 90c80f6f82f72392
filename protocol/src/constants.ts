export * from './generated/constants.js';
