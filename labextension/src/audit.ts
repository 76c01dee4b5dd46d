/** The Audit tab (admins): recent events, newest first, filtered by secret, user, action. */
import { AuditEvent, AuditFilters } from './api';
import { Context } from './context';
import { button, clipped, h, uid, when } from './dom';
import { selectField, textField } from './forms';

export const AUDIT_ACTIONS = [
  'create',
  'replace',
  'delete',
  'metadata',
  'batch',
  'connection_create',
  'connection_update',
  'connection_delete',
  'proxy_call',
  'request_call',
  'refused_call',
  'rotate_key'
];
const REFUSED = 'refused_call';
const PAGE = 50;

export class AuditTab {
  readonly node: HTMLElement;
  private next: number | null = null;
  private timer = 0;
  private readonly secret = textField('Secret', { placeholder: 'NAME' });
  private readonly user = textField('User', { placeholder: 'user name' });
  private readonly action = selectField('Action', [['', 'Any'], ...AUDIT_ACTIONS.map(a => [a, a] as [string, string])], '');
  private readonly refused: HTMLInputElement;
  private readonly status = h('div', { class: 'jp-secrets-status', role: 'status', 'aria-live': 'polite' });
  private readonly list = h('ul', { class: 'jp-secrets-list jp-secrets-audit-list', 'aria-label': 'Audit events' });
  private readonly more: HTMLButtonElement;
  loaded: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: Context) {
    const refusedId = uid('refused');
    this.refused = h('input', { type: 'checkbox', id: refusedId });
    const changed = () => {
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(() => void this.reload(), 250);
    };
    this.secret.input.addEventListener('input', changed);
    this.user.input.addEventListener('input', changed);
    this.action.input.addEventListener('change', () => {
      this.refused.checked = this.action.input.value === REFUSED;
      void this.reload();
    });
    this.refused.addEventListener('change', () => {
      this.action.input.value = this.refused.checked ? REFUSED : '';
      void this.reload();
    });
    this.more = button('Older events', () => void this.load(true), { hidden: true });
    this.node = h(
      'div',
      { class: 'jp-secrets-tab jp-secrets-audit' },
      h(
        'div',
        { class: 'jp-secrets-toolbar' },
        this.secret.row,
        this.user.row,
        this.action.row,
        h('div', { class: 'jp-secrets-field jp-secrets-check' }, this.refused, h('label', { for: refusedId }, 'Refused only')),
        h('div', { class: 'jp-secrets-toolbar-buttons' }, button('Refresh', () => void this.reload(), { 'aria-label': 'Reload the audit log' }))
      ),
      this.status,
      this.list,
      this.more
    );
  }

  filters(): AuditFilters {
    return {
      secret: this.secret.input.value.trim() || undefined,
      user: this.user.input.value.trim() || undefined,
      action: this.action.input.value || undefined,
      limit: PAGE
    };
  }

  reload(): Promise<void> {
    this.ctx.checkHealth();
    this.loaded = this.load(false);
    return this.loaded;
  }

  private async load(older: boolean): Promise<void> {
    if (!this.ctx.me.can_write) {
      this.list.replaceChildren(h('li', { class: 'jp-secrets-empty' }, 'The audit log is for secrets admins.'));
      return;
    }
    try {
      const reply = await this.ctx.client.audit({ ...this.filters(), before: older ? (this.next ?? undefined) : undefined });
      this.next = reply.next;
      const rows = reply.events.map(e => this.row(e));
      if (older) {
        this.list.append(...rows);
      } else {
        this.list.replaceChildren(...(rows.length ? rows : [h('li', { class: 'jp-secrets-empty' }, 'No events match.')]));
      }
      this.more.hidden = reply.next === null;
      this.status.textContent = '';
    } catch (error) {
      this.status.textContent = (error as Error).message;
      this.status.dataset.tone = 'error';
    }
  }

  private row(event: AuditEvent): HTMLLIElement {
    const where = [event.connection && `via ${event.connection}`, event.host && `to ${event.host}`, event.method && event.path && `${event.method} ${event.path}`]
      .filter(Boolean)
      .join(' ');
    const outcome = [event.status !== null ? String(event.status) : '', event.duration_ms !== null ? `${Math.round(event.duration_ms)} ms` : '']
      .filter(Boolean)
      .join(' · ');
    return h(
      'li',
      { class: `jp-secrets-row jp-secrets-event${event.action === REFUSED ? ' jp-mod-refused' : ''}`, 'data-action': event.action },
      h(
        'div',
        { class: 'jp-secrets-row-head' },
        h('span', { class: 'jp-secrets-time' }, when(event.time)),
        h('span', { class: 'jp-secrets-badge' }, event.action),
        clipped(event.user, 'jp-secrets-user')
      ),
      h(
        'div',
        { class: 'jp-secrets-cells' },
        event.secrets.length ? clipped(event.secrets.join(', '), 'jp-secrets-cell') : null,
        where ? clipped(where, 'jp-secrets-cell') : null,
        outcome ? h('span', { class: 'jp-secrets-cell' }, outcome) : null,
        event.notebook_path ? clipped(`from ${event.notebook_path}`, 'jp-secrets-cell') : null
      ),
      event.reason ? clipped(event.reason, 'jp-secrets-reason') : null
    );
  }
}
