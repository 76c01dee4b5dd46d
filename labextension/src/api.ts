/**
 * The front-end's only way to the secrets REST API: one client that holds where the API is
 * and how to sign in there. Embedded, that is the page's own Jupyter server and session
 * (ServerConnection: token or cookie + XSRF). In client mode (the team deployment) it is the
 * secrets service, with the service's own login (service.ts): the admin token a person typed
 * in this browser, or the JupyterHub login. The endpoint is found once (``GET info`` on the
 * page's server) and every view shares the client.
 *
 * Values travel only in the bodies of create/replace calls made here, from the browser.
 * No response of this API carries a value.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { API_PATH, ERROR_HEADER } from './protocol';
import type { ServiceLogin } from './service';

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
  /** The caller's groups (configured, or the Hub's): what ``shared_with`` can name. */
  groups?: string[];
  /** Under JupyterHub, for a cookie session: sent back as X-XSRFToken on writes. */
  xsrf?: string;
}

/** Who may use a secret or a connection besides admins. */
export type SharedWith = 'everyone' | { users: string[]; groups: string[] };

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
  shared_with?: SharedWith;
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
  shared_with?: SharedWith;
  export_env?: boolean;
  /** Calls per user per minute; null: no limit. */
  rate_limit?: number | null;
  /** Calls per user per UTC day; null: no limit. */
  daily_quota?: number | null;
  updated_at: string;
  updated_by: string;
}

/** A run token's metadata (``GET tokens``): never the token itself. */
export interface RunToken {
  id: string;
  username: string;
  name: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
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

/** How requests reach the API and carry its login. */
export interface Transport {
  /** For messages: where the API is ("this Jupyter server", "the secrets service at …"). */
  readonly where: string;
  send(method: string, url: string, init: RequestInit): Promise<Response>;
}

/** Where the API lives and how to reach it. */
export interface Endpoint {
  /** The API root, e.g. ``http://host/user/x/api/secrets/v1``. */
  root: string;
  transport: Transport;
  /** The secrets service's login (client mode, service.ts), or null on the page's own server. */
  service: ServiceLogin | null;
}

/** The page's own Jupyter server, with its login (token or cookie + XSRF). */
export class JupyterTransport implements Transport {
  readonly where = 'this Jupyter server';

  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  send(_method: string, url: string, init: RequestInit): Promise<Response> {
    return ServerConnection.makeRequest(url, init, this.settings);
  }
}

/** The embedded endpoint: the API on the page's own server. */
export function embeddedEndpoint(settings: ServerConnection.ISettings = ServerConnection.makeSettings()): Endpoint {
  return { root: URLExt.join(settings.baseUrl, API_PATH), transport: new JupyterTransport(settings), service: null };
}

type Query = Record<string, string | number | boolean | undefined>;

export function withQuery(url: string, query?: Query): string {
  const pairs = Object.entries(query ?? {}).filter(
    ([, v]) => v !== undefined && v !== ''
  ) as [string, string | number | boolean][];
  if (!pairs.length) {
    return url;
  }
  return `${url}?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`;
}

export class SecretsClient {
  private resolved: Endpoint | null = null;
  private pending: Promise<Endpoint> | null = null;

  /**
   * ``endpoint``: where the API is, or how to find it (called again after a failure, so a
   * server that was briefly unreachable is asked again on the next call). Default: the page's
   * own server.
   */
  constructor(private readonly find: () => Promise<Endpoint> | Endpoint = () => embeddedEndpoint()) {}

  /** Where the API is, found on first use. */
  async endpoint(): Promise<Endpoint> {
    if (this.resolved) {
      return this.resolved;
    }
    if (!this.pending) {
      this.pending = Promise.resolve()
        .then(() => this.find())
        .then(
          found => (this.resolved = found),
          error => {
            this.pending = null;
            throw error instanceof ApiError
              ? error
              : new ApiError(0, `Could not find the secrets API: ${(error as Error).message}`);
          }
        );
    }
    return this.pending;
  }

  /** The endpoint if it is known already (null before the first call has found it). */
  get current(): Endpoint | null {
    return this.resolved;
  }

  private async fetch(method: string, path: string, body?: unknown, query?: Query): Promise<Response> {
    const { root, transport } = await this.endpoint();
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    try {
      return await transport.send(method, withQuery(URLExt.join(root, path), query), init);
    } catch (error) {
      if (error instanceof ApiError) {
        throw error;
      }
      throw new ApiError(0, `Could not reach the secrets API on ${transport.where}: ${(error as Error).message}`);
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
    shared_with?: SharedWith;
  }): Promise<SecretRecord> {
    return this.call('POST', 'secrets', body);
  }

  replaceSecret(name: string, value: string): Promise<SecretRecord> {
    return this.call('PUT', `secrets/${SecretsClient.seg(name)}`, { value });
  }

  patchSecret(
    name: string,
    fields: { description?: string; allowed_hosts?: string[]; placements?: Placement[]; shared_with?: SharedWith }
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

  // -- run tokens (admins) -----------------------------------------------------------------

  async listRunTokens(): Promise<RunToken[]> {
    return (await this.call<{ tokens: RunToken[] }>('GET', 'tokens')).tokens;
  }

  /** Mints a run token: the reply holds the token once (``token``), shown once and dropped. */
  createRunToken(body: { name: string; ttl: string; user?: string }): Promise<RunToken & { token: string }> {
    return this.call('POST', 'tokens', body);
  }

  revokeRunToken(id: string): Promise<void> {
    return this.call('DELETE', `tokens/${SecretsClient.seg(id)}`);
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
