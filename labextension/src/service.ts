/**
 * Client mode: the secrets API lives in a secrets service, not in the page's Jupyter server.
 * The browser talks to the service directly, with the service's own login, so no credential
 * that can manage secrets ever passes through the user's server:
 *
 * - standalone (``jupyter secrets serve``, usually another origin, CORS): the admin token a
 *   person pastes here. It is kept in this tab's sessionStorage only (never localStorage,
 *   never sent to the Jupyter server, never in widget state) until "Forget" or the tab closes.
 * - a JupyterHub service (``/services/<name>/`` on the Hub's origin): the Hub's OAuth cookie
 *   on the service's prefix, and the service's XSRF token (from ``GET me``) on every call
 *   (JupyterHub asks for it on scripted reads too).
 *   A call refused for want of a session opens the service's login page in a small window;
 *   when that page says it is done, the call is made again. Nothing on the page is redrawn,
 *   so open forms, typed fields and filters are as they were.
 *
 * Requests to the service never carry the Jupyter server's token, cookie-derived XSRF token
 * or anything else of the page's own login: they are plain ``fetch`` calls, not
 * ServerConnection's.
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, embeddedEndpoint, Endpoint, Me, Transport } from './api';
import { API_PATH } from './protocol';

/** What the service's login page posts to its opener (``location.origin``) once signed in. */
export const SIGNED_IN_MESSAGE = 'jupyter-secrets:signed-in';
/** The service's login page, below the service's prefix (service/hub.py). */
export const LOGIN_PAGE = 'login';
/** sessionStorage key of a standalone service's admin token (one per service API root). */
export const TOKEN_STORAGE_PREFIX = 'jupyter-secrets:service-token:';
const POPUP_FEATURES = 'popup=yes,width=560,height=680';
/** How long after a person's click or key press a sign-in window may open by itself. */
const GESTURE_MS = 4000;

let lastGesture = -Infinity;
for (const type of ['pointerdown', 'keydown']) {
  window.addEventListener(
    type,
    event => {
      if (event.isTrusted) {
        lastGesture = performance.now();
      }
    },
    true
  );
}

/** A person acted just now (browsers let a page open a window only then). */
function justActed(): boolean {
  const activation = (navigator as Navigator & { userActivation?: { isActive: boolean } }).userActivation;
  return performance.now() - lastGesture < GESTURE_MS && (activation?.isActive ?? true);
}

/** ``GET info`` on the page's server. */
export interface Info {
  mode: 'embedded' | 'client' | 'service';
  api_url: string;
}

export type LoginStep = 'idle' | 'needed' | 'working';

export interface LoginState {
  step: LoginStep;
  /** What to tell the person (why a sign-in is needed, what went wrong). */
  note: string;
}

/** Sign-in and retry, shared by both kinds of service login. */
export abstract class ServiceLogin implements Transport {
  abstract readonly kind: 'token' | 'hub';
  readonly where: string;
  /** The service's prefix (the API root without ``api/secrets/v1``), for people. */
  readonly label: string;
  readonly origin: string;
  private current: LoginState = { step: 'idle', note: '' };
  private readonly listeners = new Set<(state: LoginState) => void>();
  private waiting: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | null = null;
  private probing: Promise<Me | null> | null = null;

  constructor(readonly root: string) {
    const url = new URL(root);
    this.origin = url.origin;
    this.label = root.endsWith(API_PATH) ? root.slice(0, -API_PATH.length) : root;
    this.where = `the secrets service at ${this.label}`;
  }

  get state(): LoginState {
    return this.current;
  }

  /** Call ``listener`` with the state now and at every change; returns the unsubscribe. */
  subscribe(listener: (state: LoginState) => void): () => void {
    this.listeners.add(listener);
    listener(this.current);
    return () => this.listeners.delete(listener);
  }

  protected setState(step: LoginStep, note = ''): void {
    this.current = { step, note };
    for (const listener of [...this.listeners]) {
      listener(this.current);
    }
  }

  /** One request with this login's credentials (no retry). */
  protected abstract attempt(method: string, url: string, init: RequestInit): Promise<Response>;

  /** What must hold before a request leaves (a token to send, an XSRF token for writes). */
  protected abstract before(method: string): Promise<void>;

  /** A person is needed: show it (the Hub login may open its window at once). */
  protected abstract asked(): void;

  /** The request behind :meth:`probe` (``GET me`` with the login as it is). */
  protected askWho(): Promise<Response> {
    return this.attempt('GET', URLExt.join(this.root, 'me'), { method: 'GET' });
  }

  /** ``GET me`` with the login as it is now: who we are, or null without a session. */
  probe(): Promise<Me | null> {
    if (!this.probing) {
      this.probing = this.askWho()
        .then(async response => {
          if (response.status === 403) {
            return null;
          }
          if (!response.ok) {
            throw await refusal(response);
          }
          const me = (await response.json()) as Me;
          this.learned(me);
          return me;
        })
        .finally(() => (this.probing = null));
    }
    return this.probing;
  }

  /** The service no longer accepts the login this page holds. */
  protected invalid(): void {
    // a Hub session simply ends; a token login drops its token
  }

  /** What a successful ``GET me`` teaches the login (the Hub's XSRF token). */
  protected learned(_me: Me): void {
    // nothing for a token login
  }

  async send(method: string, url: string, init: RequestInit): Promise<Response> {
    await this.before(method);
    const response = await this.attempt(method, url, init);
    if (response.status !== 403) {
      return response;
    }
    // A 403 is a refusal (role, policy), or the want of a session: ask who we are.
    const me = await this.probe();
    if (me === null) {
      this.invalid();
      await this.signIn(
        this.kind === 'hub'
          ? 'Sign in to the secrets service to continue.'
          : 'The secrets service refused the token: paste a valid admin token.'
      );
      return this.attempt(method, url, init);
    }
    if (this.kind === 'hub') {
      return this.attempt(method, url, init); // once more, with the XSRF token just learned
    }
    return response;
  }

  /** Wait until a person has signed in (shared by every call that needs it). */
  signIn(note: string): Promise<void> {
    if (!this.waiting) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.waiting = { promise, resolve, reject };
      this.setState('needed', note);
      this.asked();
    }
    return this.waiting.promise;
  }

  /** Signed in: every waiting call goes again. */
  protected done(): void {
    const waiting = this.waiting;
    this.waiting = null;
    this.setState('idle');
    waiting?.resolve();
  }

  /** Give up signing in: every waiting call fails with a message (its form stays open). */
  cancel(): void {
    const waiting = this.waiting;
    this.waiting = null;
    this.setState('idle');
    waiting?.reject(new ApiError(403, `Not signed in to ${this.where}: nothing was sent. Sign in and try again.`));
  }
}

async function refusal(response: Response): Promise<ApiError> {
  const payload = await response.json().catch(() => null);
  const message =
    payload && typeof payload.message === 'string'
      ? payload.message
      : `The secrets service answered ${response.status} ${response.statusText}.`;
  return new ApiError(response.status, message);
}

/**
 * A standalone service: ``Authorization: token <admin token>``, the token typed by a person
 * and kept in this tab's sessionStorage only.
 */
export class TokenLogin extends ServiceLogin {
  readonly kind = 'token';
  /** Only when this browser refuses sessionStorage: the token lives as long as the page. */
  private memory: string | null = null;

  private get key(): string {
    return TOKEN_STORAGE_PREFIX + this.root;
  }

  /** The token this tab holds, or null. */
  token(): string | null {
    try {
      return window.sessionStorage.getItem(this.key);
    } catch {
      return this.memory; // storage disabled
    }
  }

  get signedIn(): boolean {
    return this.token() !== null;
  }

  protected async before(_method: string): Promise<void> {
    while (this.token() === null) {
      await this.signIn(`Paste the admin token of the secrets service at ${this.label} to manage secrets here.`);
    }
  }

  protected asked(): void {
    // the sign-in form is drawn by every manager that listens
  }

  protected attempt(method: string, url: string, init: RequestInit, token = this.token()): Promise<Response> {
    const headers = new Headers(init.headers);
    if (token !== null) {
      headers.set('Authorization', `token ${token}`);
    }
    return this.fetch(url, { ...init, method, headers, credentials: 'omit', mode: 'cors', cache: 'no-store' });
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (error) {
      throw new ApiError(
        0,
        `Could not reach the secrets service at ${this.label} from this page (${(error as Error).message}). ` +
          `Check that it runs and that its c.SecretsExtensionApp.service_allow_origins lists ${window.location.origin}.`
      );
    }
  }

  /** Check ``token`` at the service; keep it in this tab only if the service accepts it. */
  async submit(token: string): Promise<Me> {
    token = token.trim();
    if (!token) {
      throw new Error('Paste the admin token first.');
    }
    const note = this.state.note;
    this.setState('working', 'Checking the token with the secrets service…');
    let response: Response;
    try {
      response = await this.attempt('GET', URLExt.join(this.root, 'me'), { method: 'GET' }, token);
    } catch (error) {
      this.setState('needed', note);
      throw error;
    }
    if (!response.ok) {
      const error = await refusal(response);
      this.setState('needed', note);
      throw new Error(
        response.status === 403 ? `The secrets service refused this token: ${error.message}` : error.message
      );
    }
    const me = (await response.json()) as Me;
    try {
      window.sessionStorage.setItem(this.key, token);
    } catch {
      this.memory = token; // sessionStorage disabled: kept until the page goes
    }
    this.done();
    return me;
  }

  protected invalid(): void {
    this.forget();
  }

  /** Drop the token from this tab; the next call asks for one again. */
  forget(): void {
    this.memory = null;
    try {
      window.sessionStorage.removeItem(this.key);
    } catch {
      // nothing kept there
    }
    this.setState(this.state.step, this.state.note); // listeners redraw (no token now)
  }
}

/**
 * A JupyterHub service on the Hub's origin: the Hub's OAuth cookie on the service's prefix,
 * X-XSRFToken (from ``GET me``) on every call, and the service's login page in a small window.
 */
export class HubLogin extends ServiceLogin {
  readonly kind = 'hub';
  private xsrf: string | null = null;
  private popup: Window | null = null;
  private watch = 0;
  private readonly onMessage = (event: MessageEvent): void => void this.message(event);

  /** The service's login page (``<prefix>login``). */
  get loginUrl(): string {
    return URLExt.join(this.label, LOGIN_PAGE);
  }

  protected attempt(method: string, url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.xsrf) {
      headers.set('X-XSRFToken', this.xsrf); // JupyterHub checks it on reads from scripts too
    }
    return this.fetch(url, { ...init, method, headers, credentials: 'same-origin', cache: 'no-store' });
  }

  /**
   * ``GET me`` without the XSRF token, which it hands out: a same-origin ``no-cors`` GET is
   * one of the requests JupyterHub accepts a cookie for without one (and, same-origin, the
   * answer is readable).
   */
  protected askWho(): Promise<Response> {
    return this.fetch(URLExt.join(this.root, 'me'), {
      method: 'GET',
      mode: 'no-cors',
      credentials: 'same-origin',
      cache: 'no-store'
    });
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (error) {
      throw new ApiError(0, `Could not reach the secrets service at ${this.label}: ${(error as Error).message}`);
    }
  }

  protected async before(_method: string): Promise<void> {
    if (!this.xsrf && (await this.probe()) === null) {
      await this.signIn('Sign in to the secrets service to continue.');
    }
  }

  protected learned(me: Me): void {
    if (me.xsrf) {
      this.xsrf = me.xsrf;
    }
  }

  /**
   * Right after a person's click or key press (opening the sidebar, Save) the window opens
   * at once; otherwise (a reload started by code) the Sign in button waits for them.
   */
  protected asked(): void {
    if (justActed()) {
      this.open();
    }
  }

  /** Open the service's login page in a small window (from a click: browsers allow it). */
  open(): void {
    if (this.popup && !this.popup.closed) {
      this.popup.focus();
      return;
    }
    const popup = window.open(this.loginUrl, 'jupyter-secrets-login', POPUP_FEATURES);
    if (!popup) {
      this.setState('needed', 'The browser blocked the sign-in window: press Sign in to open it.');
      return;
    }
    this.popup = popup;
    window.addEventListener('message', this.onMessage);
    this.setState('working', 'Signing in to the secrets service in the window that opened…');
    window.clearInterval(this.watch);
    this.watch = window.setInterval(() => {
      if (this.popup === popup && popup.closed) {
        this.stopWatching();
        if (this.state.step === 'working') {
          this.setState('needed', 'The sign-in window closed before the secrets service saw a login: press Sign in again.');
        }
      }
    }, 400);
  }

  private stopWatching(): void {
    window.clearInterval(this.watch);
    window.removeEventListener('message', this.onMessage);
    this.popup = null;
  }

  private async message(event: MessageEvent): Promise<void> {
    if (event.origin !== this.origin || event.data !== SIGNED_IN_MESSAGE || !this.popup || event.source !== this.popup) {
      return;
    }
    this.stopWatching();
    let me: Me | null;
    try {
      me = await this.probe();
    } catch (error) {
      this.setState('needed', (error as Error).message);
      return;
    }
    if (me === null) {
      this.setState(
        'needed',
        'You signed in, but the secrets service still refuses this login: ask the Hub admin for access to the secrets service.'
      );
      return;
    }
    this.done();
  }

  cancel(): void {
    if (this.popup && !this.popup.closed) {
      this.popup.close();
    }
    this.stopWatching();
    super.cancel();
  }
}

/**
 * The service's endpoint from its API URL (``info.api_url``). Under JupyterHub a service at
 * ``/services/<name>/`` is reached through the Hub's proxy on this page's origin, with the
 * Hub login; any other service is a standalone one, with its admin token.
 */
export function serviceEndpoint(apiUrl: string): Endpoint {
  const url = new URL(apiUrl, window.location.href);
  const hubPrefix = PageConfig.getOption('hubPrefix');
  if (hubPrefix) {
    const hubBase = hubPrefix.replace(/hub\/?$/, '');
    const sameOrigin = url.origin === window.location.origin;
    if (sameOrigin || url.pathname.startsWith(URLExt.join(hubBase || '/', 'services/'))) {
      const login = new HubLogin(window.location.origin + url.pathname.replace(/\/+$/, ''));
      return { root: login.root, transport: login, service: login };
    }
  }
  const login = new TokenLogin(url.href.replace(/\/+$/, ''));
  return { root: login.root, transport: login, service: login };
}

/**
 * Where the secrets API is, from ``GET info`` on the page's own server (with its login): the
 * same server (embedded), or the secrets service (client mode).
 */
export async function discover(settings: ServerConnection.ISettings = ServerConnection.makeSettings()): Promise<Endpoint> {
  const local = embeddedEndpoint(settings);
  let response: Response;
  try {
    response = await local.transport.send('GET', URLExt.join(local.root, 'info'), { method: 'GET' });
  } catch (error) {
    throw new ApiError(0, `Could not reach this Jupyter server: ${(error as Error).message}`);
  }
  if (response.status === 404) {
    return local; // a server without GET info: the API is here
  }
  if (!response.ok) {
    throw await refusal(response);
  }
  const info = (await response.json()) as Info;
  return info.mode === 'client' && info.api_url ? serviceEndpoint(info.api_url) : local;
}
