/**
 * The secrets manager: a health banner, who is signed in, and the Secrets, Connections,
 * Audit and Tokens tabs (the last two for admins). The same component is the JupyterLab / Notebook 7 sidebar and the notebook
 * panel (js.SecretsPanel()); it talks only to the REST API, from the browser.
 */
import { Me, SecretsClient } from './api';
import { AuditTab } from './audit';
import { ChangeKind, CodeTarget, Context } from './context';
import { ConnectionsTab } from './connections';
import { button, h, uid } from './dom';
import { SecretsTab } from './secrets';
import { SignInView } from './signin';
import { TokensTab } from './tokens';

export type TabName = 'secrets' | 'connections' | 'audit' | 'tokens';
const TABS: [TabName, string][] = [
  ['secrets', 'Secrets'],
  ['connections', 'Connections'],
  ['audit', 'Audit'],
  ['tokens', 'Tokens']
];

export interface ManagerOptions {
  client: SecretsClient;
  code: CodeTarget;
  tab?: TabName;
  changed?: (kind: ChangeKind, name: string, action: string) => void;
}

export class SecretsManager {
  readonly node: HTMLElement;
  /** Resolves when the first tab has loaded (or the start failed and says why). */
  ready: Promise<void>;
  secrets: SecretsTab | null = null;
  connections: ConnectionsTab | null = null;
  audit: AuditTab | null = null;
  tokens: TokensTab | null = null;
  me: Me | null = null;
  private current: TabName;
  private readonly loadedTabs = new Set<TabName>();
  private readonly banner = h('div', { class: 'jp-secrets-health', role: 'alert', hidden: true });
  private readonly who = h('span', { class: 'jp-secrets-who' });
  private readonly tablist = h('div', { class: 'jp-secrets-tablist', role: 'tablist', 'aria-label': 'Secrets manager' });
  private readonly body = h('div', { class: 'jp-secrets-body' });
  private readonly tabButtons = new Map<TabName, HTMLButtonElement>();
  private readonly panels = new Map<TabName, HTMLElement>();
  private readonly header: HTMLElement;
  private signin: SignInView | null = null;

  constructor(private readonly options: ManagerOptions) {
    this.current = options.tab ?? 'secrets';
    this.header = h('div', { class: 'jp-secrets-header' }, h('span', { class: 'jp-secrets-title' }, 'Workspace secrets'), this.who);
    this.node = h('div', { class: 'jp-secrets-manager' }, this.header, this.banner, this.tablist, this.body);
    this.ready = this.start();
  }

  private async start(): Promise<void> {
    try {
      const endpoint = await this.options.client.endpoint();
      if (endpoint.service && !this.signin) {
        // Client mode: the service's login, drawn above the tabs (nothing below is redrawn).
        this.signin = new SignInView(endpoint.service, this.node, () => void this.refresh());
        this.header.appendChild(this.signin.where);
        this.header.after(this.signin.node);
      }
      this.me = await this.options.client.me();
    } catch (error) {
      this.body.replaceChildren(
        h(
          'div',
          { class: 'jp-secrets-error', role: 'alert' },
          (error as Error).message,
          ' ',
          button('Try again', () => {
            this.body.replaceChildren();
            this.ready = this.start();
          })
        )
      );
      if (!this.signin) {
        void this.checkHealth(); // the page's own server: say what is wrong with it
      }
      return;
    }
    const me = this.me;
    this.who.textContent = `${me.name || me.username} · ${me.can_write ? 'admin' : 'read-only'}`;
    const ctx: Context = {
      client: this.options.client,
      me,
      code: this.options.code,
      changed: (kind, name, action) => this.options.changed?.(kind, name, action),
      checkHealth: () => void this.checkHealth()
    };
    this.secrets = new SecretsTab(ctx);
    this.connections = new ConnectionsTab(ctx);
    this.audit = new AuditTab(ctx);
    this.tokens = new TokensTab(ctx);
    const nodes: Record<TabName, HTMLElement> = {
      secrets: this.secrets.node,
      connections: this.connections.node,
      audit: this.audit.node,
      tokens: this.tokens.node
    };
    for (const [name, label] of TABS) {
      if ((name === 'audit' || name === 'tokens') && !me.can_write) {
        continue; // the audit log and run tokens are for admins
      }
      const tabId = uid('tab');
      const panelId = uid('panel');
      const tab = h(
        'button',
        {
          type: 'button',
          role: 'tab',
          id: tabId,
          class: 'jp-secrets-tab-button',
          'aria-controls': panelId,
          'data-tab': name,
          onclick: () => this.select(name, true)
        },
        label
      );
      tab.addEventListener('keydown', (event: KeyboardEvent) => this.onTabKey(event, name));
      this.tabButtons.set(name, tab);
      this.tablist.appendChild(tab);
      const panel = h('div', { role: 'tabpanel', id: panelId, 'aria-labelledby': tabId, class: 'jp-secrets-panel-body' }, nodes[name]);
      this.panels.set(name, panel);
      this.body.appendChild(panel);
    }
    if (!this.tabButtons.has(this.current)) {
      this.current = 'secrets';
    }
    this.select(this.current, false);
    await this.tab(this.current)?.loaded;
  }

  private tab(name: TabName): SecretsTab | ConnectionsTab | AuditTab | TokensTab | null {
    return { secrets: this.secrets, connections: this.connections, audit: this.audit, tokens: this.tokens }[name];
  }

  private onTabKey(event: KeyboardEvent, name: TabName): void {
    const names = [...this.tabButtons.keys()];
    const at = names.indexOf(name);
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (step) {
      event.preventDefault();
      this.select(names[(at + step + names.length) % names.length], true);
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      this.select(names[event.key === 'Home' ? 0 : names.length - 1], true);
    }
  }

  /** Show a tab (loading it the first time); with ``focus`` the tab button takes focus. */
  select(name: TabName, focus: boolean): void {
    if (!this.tabButtons.has(name)) {
      return;
    }
    this.current = name;
    for (const [tabName, tab] of this.tabButtons) {
      const active = tabName === name;
      tab.setAttribute('aria-selected', String(active));
      tab.tabIndex = active ? 0 : -1;
      this.panels.get(tabName)!.hidden = !active;
    }
    if (focus) {
      this.tabButtons.get(name)!.focus();
    }
    if (!this.loadedTabs.has(name)) {
      this.loadedTabs.add(name);
      void this.tab(name)?.reload();
    }
  }

  /** Reload the health banner and every tab shown so far. */
  async refresh(): Promise<void> {
    await this.ready;
    await Promise.all([...this.loadedTabs].map(name => this.tab(name)?.reload()));
  }

  async checkHealth(): Promise<void> {
    let messages: string[];
    try {
      const health = await this.options.client.health();
      messages = health.problems.map(p => p.message);
    } catch (error) {
      messages = [(error as Error).message];
    }
    this.banner.replaceChildren(...messages.map(m => h('p', {}, m)));
    this.banner.hidden = messages.length === 0;
  }

  dispose(): void {
    this.signin?.dispose();
    this.secrets?.close(false);
    this.connections?.close(false);
    this.tokens?.close(false);
    this.node.remove();
  }
}
