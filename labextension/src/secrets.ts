/**
 * The Secrets tab: search, kind and owner filters, sorting and paging over the secrets list;
 * add, replace, edit hosts and placements, delete (confirmed beside its row), "Use in code".
 * The list holds metadata only; a value exists only in an open form's input.
 */
import { ApiError, Connection, DEFAULT_PLACEMENTS, Kind, Placement, SecretRecord } from './api';
import { connectionSnippet, Context, secretSnippet, Snippet } from './context';
import { button, clipped, h, plural, splitList, uid, when } from './dom';
import {
  describeSharing,
  FocusHandOver,
  FormView,
  HOSTS_HINT,
  OpenView,
  placementsField,
  sameSharing,
  sharingField,
  textField,
  valueField
} from './forms';

export const PAGE_SIZE = 50;

type SortKey = 'name' | 'updated' | 'used';
const placementsOf = (r: SecretRecord): Placement[] => r.placements ?? DEFAULT_PLACEMENTS;
const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((item, i) => item === b[i]);

export function matches(record: SecretRecord, query: string): boolean {
  if (!query) {
    return true;
  }
  const haystack = [record.name, record.description, record.owner, ...record.allowed_hosts, ...record.used_by]
    .join(' ')
    .toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every(word => haystack.includes(word));
}

export class SecretsTab {
  readonly node: HTMLElement;
  private records: SecretRecord[] = [];
  private connections: Connection[] = [];
  private visible: SecretRecord[] = [];
  private page = 0;
  private readonly opened: OpenView;
  private searchTimer = 0;
  private readonly search: HTMLInputElement;
  private readonly kind: HTMLSelectElement;
  private readonly owner: HTMLSelectElement;
  private readonly sort: HTMLSelectElement;
  private readonly addButton: HTMLButtonElement;
  private readonly addSlot = h('div', { class: 'jp-secrets-add-slot' });
  private readonly status = h('div', { class: 'jp-secrets-status', role: 'status', 'aria-live': 'polite' });
  private readonly list = h('ul', { class: 'jp-secrets-list', 'aria-label': 'Secrets' });
  private readonly pager = h('div', { class: 'jp-secrets-pager' });
  /** Resolves when the latest load has rendered (tests and benchmarks wait on it). */
  loaded: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: Context) {
    const search = textField('Search', {
      type: 'search',
      placeholder: 'Name, host, connection…',
      oninput: () => {
        window.clearTimeout(this.searchTimer);
        this.searchTimer = window.setTimeout(() => {
          this.page = 0;
          this.render();
        }, 80);
      }
    });
    this.search = search.input;
    const select = (label: string, options: [string, string][], value: string, onchange: () => void) => {
      const node = h(
        'select',
        { id: uid('select'), class: 'jp-secrets-input', onchange },
        ...options.map(([v, t]) => h('option', { value: v }, t))
      );
      node.value = value;
      const row = h('div', { class: 'jp-secrets-field' }, h('label', { for: node.id }, label), node);
      return { node, row };
    };
    const kind = select(
      'Kind',
      [
        ['user', 'User secrets'],
        ['system', 'Connection keys'],
        ['all', 'All']
      ],
      'user',
      () => void this.reload()
    );
    const owner = select(
      'Owner',
      [
        ['all', 'Anyone'],
        ['me', 'Me']
      ],
      'all',
      () => void this.reload()
    );
    const sort = select(
      'Sort by',
      [
        ['name', 'Name'],
        ['updated', 'Last updated'],
        ['used', 'Last used']
      ],
      'name',
      () => this.render()
    );
    this.kind = kind.node;
    this.owner = owner.node;
    this.sort = sort.node;
    this.addButton = button('Add secret', () => this.openAdd(), {
      class: 'jp-secrets-button jp-mod-accept',
      hidden: !ctx.me.can_write
    });
    this.node = h(
      'div',
      { class: 'jp-secrets-tab jp-secrets-secrets', tabindex: -1 },
      h(
        'div',
        { class: 'jp-secrets-toolbar' },
        search.row,
        kind.row,
        owner.row,
        sort.row,
        h(
          'div',
          { class: 'jp-secrets-toolbar-buttons' },
          button('Refresh', () => { this.say(''); void this.reload(); }, { 'aria-label': 'Reload the secrets list' }),
          this.addButton
        )
      ),
      this.addSlot,
      this.status,
      this.list,
      this.pager
    );
    this.opened = new OpenView(this.node);
  }

  say(message: string, tone: 'ok' | 'error' = 'ok'): void {
    this.status.textContent = message;
    this.status.dataset.tone = tone;
  }

  /** Fetch the list (and connections, to know who owns a system secret), then render. */
  reload(): Promise<void> {
    this.ctx.checkHealth();
    this.loaded = this.load();
    return this.loaded;
  }

  private async load(): Promise<void> {
    if (!this.ctx.me.can_list) {
      this.records = [];
      this.list.replaceChildren(h('li', { class: 'jp-secrets-empty' }, 'Only secrets admins can see secrets on this server.'));
      return;
    }
    try {
      const kind = this.kind.value as Kind | 'all';
      const [records, connections] = await Promise.all([
        this.ctx.client.listSecrets(this.owner.value as 'me' | 'all', kind),
        kind === 'user' ? Promise.resolve(this.connections) : this.ctx.client.listConnections()
      ]);
      this.records = records;
      this.connections = connections;
    } catch (error) {
      this.say((error as Error).message, 'error');
      return;
    }
    this.render();
  }

  private sorted(): SecretRecord[] {
    const key = this.sort.value as SortKey;
    const records = this.records.filter(r => matches(r, this.search.value.trim()));
    const byName = (a: SecretRecord, b: SecretRecord): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    if (key === 'name') {
      return records.sort(byName);
    }
    const field = key === 'updated' ? 'updated_at' : 'last_used_at';
    return records.sort((a, b) => (b[field] ?? '').localeCompare(a[field] ?? '') || byName(a, b));
  }

  /** Draw the current page; an open row form moves to the redrawn row (or closes). */
  render(): void {
    this.visible = this.sorted();
    const pages = Math.max(1, Math.ceil(this.visible.length / PAGE_SIZE));
    this.page = Math.min(this.page, pages - 1);
    const start = this.page * PAGE_SIZE;
    const rows = this.visible.slice(start, start + PAGE_SIZE).map(r => this.row(r));
    if (!rows.length) {
      const empty = this.records.length
        ? 'No secret matches the search.'
        : this.owner.value === 'me'
          ? 'You own no secrets.'
          : this.kind.value === 'system'
            ? 'No connection keys yet.'
            : 'No secrets yet.';
      rows.push(h('li', { class: 'jp-secrets-empty' }, empty));
    }
    this.list.replaceChildren(...rows);
    if (this.opened.node && this.opened.key !== 'add') {
      const slot = this.rowSlot(this.opened.key);
      if (slot) {
        slot.appendChild(this.opened.node);
      } else {
        this.close(false);
      }
    }
    this.renderPager(start, pages);
  }

  private renderPager(start: number, pages: number): void {
    const total = this.visible.length;
    if (total <= PAGE_SIZE) {
      this.pager.replaceChildren(total ? h('span', {}, plural(total, 'secret')) : '');
      return;
    }
    const go = (page: number) => () => {
      this.page = page;
      this.render();
      this.list.querySelector<HTMLElement>('.jp-secrets-name')?.scrollIntoView({ block: 'nearest' });
    };
    this.pager.replaceChildren(
      button('Previous', go(this.page - 1), { disabled: this.page === 0, 'aria-label': 'Previous page' }),
      h('span', { 'aria-live': 'polite' }, `${(start + 1).toLocaleString()}–${Math.min(start + PAGE_SIZE, total).toLocaleString()} of ${total.toLocaleString()}`),
      button('Next', go(this.page + 1), { disabled: this.page >= pages - 1, 'aria-label': 'Next page' })
    );
  }

  private owningConnection(record: SecretRecord): Connection | undefined {
    return this.connections.find(c => c.owns_secret && c.secret === record.name);
  }

  private row(record: SecretRecord): HTMLLIElement {
    const name = record.name;
    const system = record.kind === 'system';
    const owner = system ? this.owningConnection(record) : undefined;
    const uses = record.use_count ? `, ${plural(record.use_count, 'use')}` : '';
    const cell = (label: string, text: string, cls: string) =>
      h('div', { class: `jp-secrets-cell ${cls}` }, h('span', { class: 'jp-secrets-cell-label' }, `${label}: `), clipped(text));
    const actions: HTMLElement[] = [
      button('Use in code', ev => this.openUse(record, ev.currentTarget as HTMLElement), {
        'aria-label': `Use ${name} in code`,
        title: `Copy or insert code that uses ${name}`
      })
    ];
    if (this.ctx.me.can_write && !system) {
      actions.push(
        button('Replace', ev => this.openReplace(record, ev.currentTarget as HTMLElement), {
          'aria-label': `Replace the value of ${name}`,
          title: `Replace the value of ${name}`
        }),
        button('Edit', ev => this.openEdit(record, ev.currentTarget as HTMLElement), {
          'aria-label': `Edit ${name}`,
          title: `Edit the description, hosts, placements and sharing of ${name}`
        }),
        button('Delete', ev => this.openDelete(record, ev.currentTarget as HTMLElement), {
          'aria-label': `Delete ${name}`,
          title: `Delete ${name}`,
          class: 'jp-secrets-button jp-mod-warn'
        })
      );
    } else if (this.ctx.me.can_write && owner) {
      actions.push(
        button('Rotate key', ev => this.openRotate(record, owner, ev.currentTarget as HTMLElement), {
          'aria-label': `Rotate the key of connection ${owner.name}`,
          title: `Replace ${name}, the key of connection ${owner.name}`
        })
      );
    }
    return h(
      'li',
      { class: 'jp-secrets-row', 'data-name': name },
      h(
        'div',
        { class: 'jp-secrets-row-head' },
        clipped(name, 'jp-secrets-name'),
        system ? h('span', { class: 'jp-secrets-badge', title: owner ? `Key of connection ${owner.name}` : 'Made by a connection' }, 'system') : null,
        h('span', { class: 'jp-secrets-version', title: `Version ${record.version}, updated ${when(record.updated_at)} by ${record.updated_by}` }, `v${record.version}`)
      ),
      record.description ? clipped(record.description, 'jp-secrets-description') : null,
      h(
        'div',
        { class: 'jp-secrets-cells' },
        cell('Hosts', record.allowed_hosts.join(', ') || (system ? 'its connection' : 'connections only'), 'jp-secrets-hosts'),
        cell('Placements', placementsOf(record).join(', '), 'jp-secrets-placements-cell'),
        cell('Used by', record.used_by.join(', ') || '-', 'jp-secrets-used'),
        cell('Last used', record.last_used_at ? `${when(record.last_used_at)}${uses}` : 'never', 'jp-secrets-last'),
        this.ctx.me.can_write ? cell('Shared with', describeSharing(record.shared_with), 'jp-secrets-shared') : null
      ),
      h('div', { class: 'jp-secrets-actions' }, ...actions),
      h('div', { class: 'jp-secrets-row-slot' })
    );
  }

  // -- forms -----------------------------------------------------------------------------

  /** The row slot a form keyed ``action:NAME`` opens in. */
  private rowSlot(key: string): HTMLElement | null {
    const name = key.split(':')[1];
    return this.list.querySelector<HTMLElement>(`[data-name="${CSS.escape(name)}"] .jp-secrets-row-slot`);
  }

  private open(key: string, view: FormView | HTMLElement, opener: HTMLElement | null): void {
    this.opened.show(view, key === 'add' ? this.addSlot : this.rowSlot(key), opener, key);
  }

  /** Close the open form (its value emptied); focus goes back to what opened it. */
  close(restoreFocus = true): void {
    this.opened.close(restoreFocus);
  }

  private async afterWrite(message: string, name: string, action: string): Promise<void> {
    const opener = this.opened.opener;
    this.close(false);
    const focus = new FocusHandOver(this.node);
    this.say(message);
    this.ctx.changed('secret', name, action);
    await this.reload();
    const rowButton = this.list.querySelector<HTMLElement>(`[data-name="${CSS.escape(name)}"] button`);
    focus.to(rowButton ?? (opener?.isConnected ? opener : this.addButton));
  }

  openAdd(): FormView {
    const nameField = textField('Name', { placeholder: 'OPENAI_API_KEY', hint: 'Letters, digits and _; saved in UPPER_CASE.' });
    const description = textField('Description', { placeholder: 'What it is for' });
    const hosts = textField('Allowed hosts', { placeholder: 'api.openai.com, *.example.com', hint: HOSTS_HINT });
    const placements = placementsField(DEFAULT_PLACEMENTS);
    const value = valueField('Value');
    const sharing = sharingField('everyone', this.ctx.me.groups);
    const form = new FormView({
      title: 'Add a secret',
      fields: [nameField.row, description.row, hosts.row, placements.row, value.row, sharing.row],
      save: 'Save',
      onCancel: () => this.close(),
      onSave: async () => {
        const name = nameField.input.value.trim();
        if (!name) {
          nameField.input.focus();
          throw new Error('Give the secret a name, like OPENAI_API_KEY.');
        }
        if (!value.input.value) {
          value.input.focus();
          throw new Error('Type the value first.');
        }
        const chosen = placements.value();
        if (!chosen.length) {
          throw new Error('Choose at least one place the value may go (header is the usual one).');
        }
        const body: Parameters<typeof this.ctx.client.createSecret>[0] = {
          name,
          value: value.input.value,
          description: description.input.value.trim()
        };
        const hostList = splitList(hosts.input.value);
        if (hostList.length) {
          body.allowed_hosts = hostList;
        }
        if (!sameList(chosen, DEFAULT_PLACEMENTS)) {
          body.placements = chosen;
        }
        const shared = sharing.value();
        if (shared !== 'everyone') {
          body.shared_with = shared;
        }
        const record = await this.ctx.client.createSecret(body);
        value.input.value = '';
        const notes = [...(record.warnings ?? [])];
        if (!record.allowed_hosts.length) {
          notes.push('It has no allowed hosts, so only connections can use it (js.request cannot): Edit adds hosts.');
        }
        await this.afterWrite([`Added ${record.name} (version ${record.version}).`, ...notes].join(' '), record.name, 'create');
      }
    });
    this.open('add', form, this.addButton);
    return form;
  }

  private openReplace(record: SecretRecord, opener: HTMLElement): void {
    const value = valueField('New value');
    const form = new FormView({
      title: `Replace the value of ${record.name}`,
      intro: `Now at version ${record.version}; the new value becomes version ${record.version + 1}.`,
      fields: [value.row],
      save: 'Replace',
      onCancel: () => this.close(),
      onSave: async () => {
        if (!value.input.value) {
          throw new Error('Type the new value first.');
        }
        const saved = await this.ctx.client.replaceSecret(record.name, value.input.value);
        value.input.value = '';
        const message = [`Replaced the value of ${saved.name} (version ${saved.version}).`, ...(saved.warnings ?? [])];
        await this.afterWrite(message.join(' '), saved.name, 'replace');
      }
    });
    this.open(`replace:${record.name}`, form, opener);
  }

  private openRotate(record: SecretRecord, connection: Connection, opener: HTMLElement): void {
    const value = valueField(`New key for ${connection.name}`);
    const form = new FormView({
      title: `Rotate the key of connection ${connection.name}`,
      intro: `${record.name} is this connection's own key; calls use the new key at once.`,
      fields: [value.row],
      save: 'Rotate',
      onCancel: () => this.close(),
      onSave: async () => {
        if (!value.input.value) {
          throw new Error('Type the new key first.');
        }
        await this.ctx.client.patchConnection(connection.name, { value: value.input.value });
        value.input.value = '';
        this.ctx.changed('connection', connection.name, 'rotate');
        await this.afterWrite(`Rotated the key of ${connection.name}.`, record.name, 'replace');
      }
    });
    this.open(`rotate:${record.name}`, form, opener);
  }

  private openEdit(record: SecretRecord, opener: HTMLElement): void {
    const description = textField('Description', { value: record.description });
    const hosts = textField('Allowed hosts', { value: record.allowed_hosts.join(', '), placeholder: 'api.openai.com, *.example.com', hint: HOSTS_HINT });
    const placements = placementsField(placementsOf(record));
    const sharing = sharingField(record.shared_with, this.ctx.me.groups);
    const form = new FormView({
      title: `Edit ${record.name}`,
      fields: [description.row, hosts.row, placements.row, sharing.row],
      save: 'Save',
      onCancel: () => this.close(),
      onSave: async () => {
        const fields: Parameters<typeof this.ctx.client.patchSecret>[1] = {};
        if (description.input.value.trim() !== record.description) {
          fields.description = description.input.value.trim();
        }
        const hostList = splitList(hosts.input.value);
        if (!sameList(hostList, record.allowed_hosts)) {
          fields.allowed_hosts = hostList;
        }
        const chosen = placements.value();
        if (!chosen.length) {
          throw new Error('Choose at least one place the value may go (header is the usual one).');
        }
        if (!sameList(chosen, placementsOf(record))) {
          fields.placements = chosen;
        }
        const shared = sharing.value();
        if (!sameSharing(shared, record.shared_with)) {
          fields.shared_with = shared;
        }
        if (!Object.keys(fields).length) {
          this.close();
          this.say(`Nothing changed in ${record.name}.`);
          return;
        }
        const saved = await this.ctx.client.patchSecret(record.name, fields);
        await this.afterWrite(`Updated ${saved.name}.`, saved.name, 'metadata');
      }
    });
    this.open(`edit:${record.name}`, form, opener);
  }

  private openDelete(record: SecretRecord, opener: HTMLElement): void {
    const users = record.used_by;
    const consequence = users.length
      ? `It is used by ${users.join(', ')}: ${users.length > 1 ? 'they' : 'it'} will stop working.`
      : 'Nothing uses it.';
    const form = new FormView({
      title: `Delete ${record.name}?`,
      intro: `${consequence} This cannot be undone.`,
      fields: [],
      save: 'Delete',
      danger: true,
      focus: 'cancel',
      onCancel: () => this.close(),
      onSave: async () => {
        try {
          await this.ctx.client.deleteSecret(record.name, users.length > 0);
        } catch (error) {
          if (error instanceof ApiError && error.status === 409) {
            throw new Error(`${error.message} Reload to see what uses it now.`);
          }
          throw error;
        }
        await this.afterWrite(`Deleted ${record.name}.`, record.name, 'delete');
      }
    });
    form.node.classList.add('jp-secrets-confirm');
    this.open(`delete:${record.name}`, form, opener);
  }

  private openUse(record: SecretRecord, opener: HTMLElement): void {
    const owner = record.kind === 'system' ? this.owningConnection(record) : undefined;
    const snippet = owner ? connectionSnippet(owner) : secretSnippet(record);
    this.open(`use:${record.name}`, snippetBox(this.ctx, snippet, () => this.close()), opener);
  }
}

/** The "Use in code" box: the snippet, Copy, Insert into the current notebook, Close. */
export function snippetBox(ctx: Context, snippet: Snippet, onClose: () => void): HTMLElement {
  const note = h('div', { class: 'jp-secrets-status', role: 'status', 'aria-live': 'polite' });
  const canInsert = ctx.code.canInsert();
  const box: HTMLElement = h(
    'div',
    { class: 'jp-secrets-snippet', role: 'group', 'aria-label': 'Use in code' },
    h('code', { class: 'jp-secrets-code' }, snippet.short),
    h(
      'div',
      { class: 'jp-secrets-form-buttons' },
      button('Copy', () => {
        ctx.code.copy(snippet.short);
        note.textContent = 'Copied.';
      }),
      button(
        'Insert into notebook',
        () => {
          ctx.code.insert(snippet.cell).then(
            path => (note.textContent = `Inserted a cell in ${path}.`),
            error => (note.textContent = (error as Error).message)
          );
        },
        { disabled: !canInsert, title: canInsert ? 'Insert a cell below the active one' : 'Open a notebook to insert code into it' }
      ),
      button('Close', onClose)
    ),
    note
  );
  box.addEventListener('keydown', (event: KeyboardEvent) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      onClose();
    }
  });
  return box;
}
