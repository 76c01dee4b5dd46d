/**
 * The front-end's only way to the secrets REST API: one client that holds the API's base
 * URL and the login. Inside a Jupyter server that is the page's own server and session
 * (ServerConnection: token or cookie + XSRF); a team deployment builds the client with the
 * secrets service's URL and login instead, and nothing else changes.
 *
 * Values travel only in the bodies of create/replace calls made here, from the browser.
 * No response of this API carries a value.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { API_PATH, ERROR_HEADER } from './protocol';

export type Kind = 'user' | 'system';
export type Placement = 'header' | 'query' | 'path' | 'body';
export const PLACEMENTS: Placement[] = ['header', 'query', 'path', 'body'];
export const DEFAULT_PLACEMENTS: Placement[] = ['header'];

export interface Me {
  username: string;
  name: string;
  role: 'admin' | 'user';
  can_list: boolean;
  can_write: boolean;
}

export interface SecretRecord {
  name: string;
  kind: Kind;
  description: string;
  owner: string;
  created_at: string;
  updated_at: string;
  updated_by: string;
  version: number;
  allowed_hosts: string[];
  placements?: Placement[];
  key_id: string;
  used_by: string[];
  last_used_at: string | null;
  use_count: number;
  /** After a create or replace: what a person should double-check (never the value). */
  warnings?: string[];
}

export interface Auth {
  scheme: 'bearer' | 'header' | 'basic' | 'query' | 'none';
  header?: string;
  username?: string;
  param?: string;
}

export interface Connection {
  name: string;
  preset: string;
  base_url: string;
  secret: string | null;
  auth: Auth;
  headers: Record<string, string>;
  description: string;
  owns_secret: boolean;
  updated_at: string;
  updated_by: string;
}

export interface Preset {
  name: string;
  base_url: string | null;
  auth: Auth;
  headers: Record<string, string>;
  test_path: string | null;
}

export interface AuditEvent {
  id: number;
  time: string;
  user: string;
  action: string;
  secrets: string[];
  connection: string | null;
  host: string | null;
  method: string | null;
  path: string | null;
  status: number | null;
  duration_ms: number | null;
  reason: string | null;
  notebook_path: string | null;
}

export interface AuditFilters {
  secret?: string;
  user?: string;
  action?: string;
  before?: number;
  limit?: number;
}

export interface HealthProblem {
  code: string;
  message: string;
}

export interface Health {
  ok: boolean;
  problems: HealthProblem[];
}

export interface Redaction {
  id: number;
  path: string;
  names: string[];
  count: number;
  at: string;
}

export interface Probe {
  status: number;
  statusText: string;
  ms: number;
  /** The proxy's own refusal or failure message (never the upstream's body). */
  message: string | null;
}

/** A refusal from the API, with the server's words for a person. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | boolean | undefined>;

export class SecretsClient {
  /** The API root, e.g. ``http://host/user/x/api/secrets/v1``. */
  readonly root: string;

  /**
   * ``settings``: the base URL and login (ServerConnection's: token or cookie + XSRF);
   * ``root``: the API root when it is not ``<baseUrl>/api/secrets/v1`` (a secrets service).
   */
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
    root?: string
  ) {
    this.root = root ?? URLExt.join(settings.baseUrl, API_PATH);
  }

  url(path: string, query?: Query): string {
    const url = URLExt.join(this.root, path);
    const pairs = Object.entries(query ?? {}).filter(
      ([, v]) => v !== undefined && v !== ''
    ) as [string, string | number | boolean][];
    if (!pairs.length) {
      return url;
    }
    return `${url}?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`;
  }

  private async fetch(method: string, path: string, body?: unknown, query?: Query): Promise<Response> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    try {
      return await ServerConnection.makeRequest(this.url(path, query), init, this.settings);
    } catch (error) {
      throw new ApiError(0, `Could not reach the secrets API: ${(error as Error).message}`);
    }
  }

  /** One JSON call; a refusal becomes an ApiError carrying the server's message. */
  async call<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const response = await this.fetch(method, path, body, query);
    if (response.status === 204) {
      return undefined as T;
    }
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const message =
        payload && typeof payload.message === 'string'
          ? payload.message
          : `The server answered ${response.status} ${response.statusText}.`;
      throw new ApiError(response.status, message);
    }
    return payload as T;
  }

  private static seg(name: string): string {
    return encodeURIComponent(name);
  }

  // -- who ---------------------------------------------------------------------------------

  me(): Promise<Me> {
    return this.call('GET', 'me');
  }

  health(): Promise<Health> {
    return this.call('GET', 'health');
  }

  // -- secrets -----------------------------------------------------------------------------

  async listSecrets(owner: 'me' | 'all', kind: Kind | 'all'): Promise<SecretRecord[]> {
    const reply = await this.call<{ secrets: SecretRecord[] }>('GET', 'secrets', undefined, {
      owner,
      kind
    });
    return reply.secrets;
  }

  createSecret(body: {
    name: string;
    value: string;
    description?: string;
    allowed_hosts?: string[];
    placements?: Placement[];
  }): Promise<SecretRecord> {
    return this.call('POST', 'secrets', body);
  }

  replaceSecret(name: string, value: string): Promise<SecretRecord> {
    return this.call('PUT', `secrets/${SecretsClient.seg(name)}`, { value });
  }

  patchSecret(
    name: string,
    fields: { description?: string; allowed_hosts?: string[]; placements?: Placement[] }
  ): Promise<SecretRecord> {
    return this.call('PATCH', `secrets/${SecretsClient.seg(name)}`, fields);
  }

  deleteSecret(name: string, force: boolean): Promise<void> {
    return this.call('DELETE', `secrets/${SecretsClient.seg(name)}`, undefined, {
      force: force ? 'true' : undefined
    });
  }

  // -- connections -------------------------------------------------------------------------

  async listConnections(): Promise<Connection[]> {
    return (await this.call<{ connections: Connection[] }>('GET', 'connections')).connections;
  }

  async presets(): Promise<Preset[]> {
    return (await this.call<{ presets: Preset[] }>('GET', 'presets')).presets;
  }

  createConnection(body: Record<string, unknown>): Promise<Connection> {
    return this.call('POST', 'connections', body);
  }

  patchConnection(name: string, body: Record<string, unknown>): Promise<Connection> {
    return this.call('PATCH', `connections/${SecretsClient.seg(name)}`, body);
  }

  deleteConnection(name: string): Promise<void> {
    return this.call('DELETE', `connections/${SecretsClient.seg(name)}`);
  }

  /**
   * A cheap call through the proxy with this page's login: status and time only. The
   * upstream's body is never read; the proxy's own error message (JSON) is.
   */
  async probe(connection: string, path: string): Promise<Probe> {
    const started = performance.now();
    const response = await this.fetch(
      'GET',
      `proxy/${SecretsClient.seg(connection)}/${path.replace(/^\/+/, '')}`
    );
    let message: string | null = null;
    if (response.headers.get(ERROR_HEADER)) {
      const payload = await response.json().catch(() => null);
      message = payload && typeof payload.message === 'string' ? payload.message : null;
    } else {
      await response.body?.cancel().catch(() => undefined);
    }
    return {
      status: response.status,
      statusText: response.statusText,
      ms: Math.round(performance.now() - started),
      message
    };
  }

  // -- audit and redactions ----------------------------------------------------------------

  audit(filters: AuditFilters): Promise<{ events: AuditEvent[]; next: number | null }> {
    return this.call('GET', 'audit', undefined, { ...filters });
  }

  redactions(after: number | null, path?: string): Promise<{ redactions: Redaction[]; latest: number }> {
    return this.call('GET', 'redactions', undefined, {
      after: after ?? undefined,
      path
    });
  }
}
