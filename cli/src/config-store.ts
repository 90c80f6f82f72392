import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './errors.js';

export interface StoredConfig {
  url: string;
  token: string;
  token_id?: number;
}

/** $DVIC_CONFIG, else $XDG_CONFIG_HOME/dvic/config.json, else ~/.config/dvic/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DVIC_CONFIG) return env.DVIC_CONFIG;
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'dvic', 'config.json');
}

/** Where to connect: DVIC_URL + DVIC_TOKEN win over the file `dvic login` wrote. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): StoredConfig | null {
  if (env.DVIC_URL && env.DVIC_TOKEN) return { url: env.DVIC_URL.replace(/\/+$/, ''), token: env.DVIC_TOKEN };
  const file = configPath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const config = JSON.parse(text) as StoredConfig;
    if (typeof config.url !== 'string' || typeof config.token !== 'string') throw new Error('missing url or token');
    return config;
  } catch (err) {
    throw new CliError(`${file} is not a dvic config (${(err as Error).message}): run dvic login again`);
  }
}

/** Writes the config readable by its owner only: it holds an API token. */
export function saveConfig(config: StoredConfig, env: NodeJS.ProcessEnv = process.env): string {
  const file = configPath(env);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return file;
}

export function removeConfig(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    fs.unlinkSync(configPath(env));
    return true;
  } catch {
    return false;
  }
}
