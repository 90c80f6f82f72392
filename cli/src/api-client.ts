import type { StoredConfig } from './config-store.js';
import { CliError } from './errors.js';

/** An error answer from the server, with its stable code. */
export class ApiError extends CliError {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** A typed fetch over the REST API with the stored token, errors turned into one clear line. */
export class ApiClient {
  constructor(readonly url: string, private readonly token: string | null) {}

  static from(config: StoredConfig): ApiClient {
    return new ApiClient(config.url, config.token);
  }

  get authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method, headers: { ...this.authHeaders, ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new CliError(`${this.url}${path} answered ${res.status} with something that is not JSON (is it a DVIC server?)`);
    }
    if (!res.ok) {
      const code = json?.error?.code ?? 'http_error';
      let message = json?.error?.message ?? `HTTP ${res.status}`;
      if (res.status === 401) message += ': run dvic login';
      throw new ApiError(res.status, code, message);
    }
    return json as T;
  }

  get = <T = any>(path: string) => this.request<T>('GET', path);
  post = <T = any>(path: string, body?: unknown) => this.request<T>('POST', path, body ?? {});
  patch = <T = any>(path: string, body: unknown) => this.request<T>('PATCH', path, body);
  delete = <T = any>(path: string) => this.request<T>('DELETE', path, {});

  /** The WebSocket URL of a path on this server. */
  wsUrl(path: string): string {
    return this.url.replace(/^http/, 'ws') + path;
  }
}
