import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

/** The OpenAPI document as the running server serves it, built from the route schemas. */
export async function openapiDocument(): Promise<string> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-openapi-'));
  const app = await buildApp(loadConfig({ DVIC_DATA_DIR: dataDir, DVIC_LOCAL_AGENT: '0' }), false);
  try {
    await app.ready();
    return JSON.stringify(app.swagger(), null, 2) + '\n';
  } finally {
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
