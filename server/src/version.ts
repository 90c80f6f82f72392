import fs from 'node:fs';

/** The server's version: the one in server/package.json (src/ and dist/ both sit beside it). */
export const SERVER_VERSION: string = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
