/**
 * The Tokens tab (admins): run tokens for headless runs (papermill, nbclient, scheduled jobs).
 * Lists them with their last use, mints one (shown here once, in this page only: never in
 * widget state, storage or a notebook), and revokes one at once (confirmed beside its row).
 */
import { RunToken } from './api';
import { Context } from './context';
import { button, clipped, h, when } from './dom';
import { FormView, OpenView, textField } from './forms';

type Status = 'active' | 'expired' | 'revoked';

function statusOf(token: RunToken, now: number): Status {
  if (token.revoked_at) {
    return 'revoked';
  }
  return Date.parse(token.expires_at) <= now ? 'expired' : 'active';
}

export class TokensTab {
  readonly node: HTMLElement;
  loaded: Promise<void> = Promise.resolve();
  private readonly opened: OpenView;
  private readonly addButton: HTMLButtonElement;
  private readonly addSlot = h('div', { class: 'jp-secrets-add-slot' });
  private readonly status = h('div', { class: 'jp-secrets-status', role: 'status', 'aria-live': 'polite' });
  private readonly list = h('ul', { class: 'jp-secrets-list', 'aria-label': 'Run tokens' });

  constructor(private readonly ctx: Context) {
    this.addButton = button('New run token', () => this.openCreate(), { class: 'jp-secrets-button jp-mod-accept' });
    this.node = h(
      'div',
      { class: 'jp-secrets-tab jp-secrets-tokens', tabindex: '-1' },
      h(
        'p',
        { class: 'jp-secrets-intro' },
        'Run tokens let notebooks run outside a kernel this server started (papermill, nbclient, scheduled jobs) ' +
          'use secrets by name, as one user, until they expire or are revoked. They cannot read or change a secret.'
      ),
      h(
        'div',
        { class: 'jp-secrets-toolbar' },
        h(
          'div',
          { class: 'jp-secrets-toolbar-buttons' },
          this.addButton,
          button('Refresh', () => void this.reload(), { 'aria-label': 'Reload the run tokens' })
        )
      ),
      this.addSlot,
      this.status,
      this.list
    );
    this.opened = new OpenView(this.node);
  }

  reload(): Promise<void> {
    this.loaded = this.load();
    return this.loaded;
  }

  private async load(): Promise<void> {
    try {
      const tokens = await this.ctx.client.listRunTokens();
      const now = Date.now();
      const order: Record<Status, number> = { active: 0, expired: 1, revoked: 2 };
      tokens.sort((a, b) => order[statusOf(a, now)] - order[statusOf(b, now)] || b.created_at.localeCompare(a.created_at));
      this.list.replaceChildren(
        ...(tokens.length ? tokens.map(t => this.row(t, statusOf(t, now))) : [h('li', { class: 'jp-secrets-empty' }, 'No run tokens yet.')])
      );
    } catch (error) {
      this.say((error as Error).message, 'error');
    }
  }

  private say(message: string, tone: 'ok' | 'error' = 'ok'): void {
    this.status.textContent = message;
    this.status.dataset.tone = tone;
  }

  private row(token: RunToken, status: Status): HTMLLIElement {
    const label = token.name || token.id;
    const slot = h('div', { class: 'jp-secrets-row-slot' });
    const revoke = button('Revoke', ev => this.place(this.revokeForm(token), slot, ev.currentTarget as HTMLElement), {
      'aria-label': `Revoke run token ${label} of ${token.username}`,
      class: 'jp-secrets-button jp-mod-warn',
      disabled: status !== 'active'
    });
    return h(
      'li',
      { class: `jp-secrets-row jp-secrets-token jp-mod-${status}`, 'data-name': label, 'data-id': token.id },
      h(
        'div',
        { class: 'jp-secrets-row-head' },
        clipped(label, 'jp-secrets-name'),
        h('span', { class: 'jp-secrets-badge' }, status),
        clipped(token.username, 'jp-secrets-user')
      ),
      h(
        'div',
        { class: 'jp-secrets-cells' },
        h('span', { class: 'jp-secrets-cell' }, `created ${when(token.created_at)}`),
        h('span', { class: 'jp-secrets-cell' }, status === 'revoked' ? `revoked ${when(token.revoked_at)}` : `expires ${when(token.expires_at)}`),
        h('span', { class: 'jp-secrets-cell' }, token.last_used_at ? `last used ${when(token.last_used_at)}` : 'never used')
      ),
      h('div', { class: 'jp-secrets-actions' }, revoke),
      slot
    );
  }

  // -- forms -----------------------------------------------------------------------------

  private place(view: FormView | HTMLElement, parent: HTMLElement, opener: HTMLElement | null): void {
    this.opened.show(view, parent, opener);
  }

  /** Close the open form or the shown token (its text goes with it). */
  close(restoreFocus = true): void {
    this.opened.close(restoreFocus);
  }

  openCreate(): FormView {
    const name = textField('Name', { placeholder: 'nightly', hint: 'What runs with it, e.g. nightly or weekly-report.' });
    const ttl = textField('Expires after', { value: '8h', hint: 'Like 30m, 8h or 7d (at most the server allows).' });
    const user = textField('User', {
      placeholder: this.ctx.me.username,
      hint: 'Whose shared secrets and connections the run may use. Empty: you.'
    });
    const form = new FormView({
      title: 'New run token',
      fields: [name.row, ttl.row, user.row],
      save: 'Create',
      onCancel: () => this.close(),
      onSave: async () => {
        const body: { name: string; ttl: string; user?: string } = { name: name.input.value.trim(), ttl: ttl.input.value.trim() };
        if (!body.name) {
          name.input.focus();
          throw new Error('Give the run token a name, like nightly.');
        }
        if (user.input.value.trim()) {
          body.user = user.input.value.trim();
        }
        const created = await this.ctx.client.createRunToken(body);
        await this.load();
        this.place(this.shownOnce(created.token, created), this.addSlot, this.addButton);
      }
    });
    this.place(form, this.addSlot, this.addButton);
    return form;
  }

  /** The new token, once: a read-only field and Copy; Done (or Escape) drops it from the page. */
  private shownOnce(token: string, record: RunToken): HTMLElement {
    const field = h('input', {
      type: 'text',
      readonly: true,
      class: 'jp-secrets-input jp-secrets-token-value',
      'aria-label': `The new run token ${record.name ?? ''}`.trim(),
      autocomplete: 'off',
      spellcheck: 'false'
    });
    field.value = token;
    const note = h('div', { class: 'jp-secrets-status', role: 'status', 'aria-live': 'polite' });
    const box: HTMLElement = h(
      'div',
      { class: 'jp-secrets-snippet jp-secrets-new-token', role: 'group', 'aria-label': 'New run token' },
      h(
        'p',
        { class: 'jp-secrets-intro' },
        `Run token ${record.name ?? ''} for ${record.username}, until ${when(record.expires_at)}. ` +
          'Copy it now: it is not shown again. The run needs it as JUPYTER_SECRETS_TOKEN, ' +
          'with JUPYTER_SECRETS_URL set to this API.'
      ),
      field,
      h(
        'div',
        { class: 'jp-secrets-form-buttons' },
        button('Copy', () => {
          this.ctx.code.copy(field.value);
          note.textContent = 'Copied.';
        }),
        button('Done', () => this.close())
      ),
      note
    );
    box.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        this.close();
      }
    });
    return box;
  }

  private revokeForm(token: RunToken): FormView {
    const label = token.name || token.id;
    return new FormView({
      title: `Revoke run token ${label}?`,
      intro: `Runs using it as ${token.username} are refused from their next call. This cannot be undone.`,
      fields: [],
      save: 'Revoke',
      danger: true,
      focus: 'cancel',
      onCancel: () => this.close(),
      onSave: async () => {
        await this.ctx.client.revokeRunToken(token.id);
        this.close(false);
        this.say(`Revoked run token ${label}.`);
        await this.load();
      }
    });
  }
}
