/**
 * The Connections tab: create from a preset (the key typed here, in the browser), edit,
 * delete (confirmed beside its row), rotate the key, Test (a cheap call through the proxy,
 * status and time only) and "Use in code".
 */
import { Auth, Connection, Preset, SecretRecord } from './api';
import { connectionSnippet, Context } from './context';
import { button, clipped, h, uid } from './dom';
import {
  checkField,
  describeLimits,
  describeSharing,
  FocusHandOver,
  Field,
  FormView,
  limitsField,
  OpenView,
  sameSharing,
  selectField,
  sharingField,
  textAreaField,
  textField,
  valueField
} from './forms';
import { snippetBox } from './secrets';

const SCHEMES: [Auth['scheme'], string][] = [
  ['bearer', 'Bearer token (Authorization header)'],
  ['header', 'Custom header'],
  ['basic', 'Basic auth'],
  ['query', 'Query parameter'],
  ['none', 'No key']
];
const SCHEME_FIELD: Partial<Record<Auth['scheme'], [keyof Auth, string, string]>> = {
  header: ['header', 'Header name', 'x-api-key'],
  basic: ['username', 'Username', 'api'],
  query: ['param', 'Query parameter', 'key']
};

function describeAuth(auth: Auth): string {
  const detail = auth.header ?? auth.username ?? auth.param;
  return detail ? `${auth.scheme} (${detail})` : auth.scheme;
}

function headersText(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) {
      continue;
    }
    const at = line.indexOf(':');
    if (at < 1) {
      throw new Error(`Write each extra header as "Name: value" (got "${line.trim().slice(0, 40)}").`);
    }
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

/** The auth scheme select plus the one field its scheme needs (header, username, param). */
class AuthFields {
  readonly scheme: Field<HTMLSelectElement>;
  readonly detail: Field;
  readonly rows: HTMLElement[];

  constructor(auth: Auth) {
    this.scheme = selectField('Auth scheme', SCHEMES, auth.scheme, { onchange: () => this.sync() });
    this.detail = textField('Header name');
    this.rows = [this.scheme.row, this.detail.row];
    this.set(auth);
  }

  set(auth: Auth): void {
    this.scheme.input.value = auth.scheme;
    const spec = SCHEME_FIELD[auth.scheme];
    this.detail.input.value = spec ? String(auth[spec[0]] ?? '') : '';
    this.sync();
  }

  private sync(): void {
    const spec = SCHEME_FIELD[this.scheme.input.value as Auth['scheme']];
    this.detail.row.hidden = !spec;
    if (spec) {
      this.detail.row.querySelector('label')!.textContent = spec[1];
      this.detail.input.placeholder = spec[2];
    }
  }

  value(): Auth {
    const scheme = this.scheme.input.value as Auth['scheme'];
    const spec = SCHEME_FIELD[scheme];
    return spec ? { scheme, [spec[0]]: this.detail.input.value.trim() } : { scheme };
  }
}

export class ConnectionsTab {
  readonly node: HTMLElement;
  private connections: Connection[] = [];
  private presets: Preset[] = [];
  private readonly opened: OpenView;
  private readonly addButton: HTMLButtonElement;
  private readonly addSlot = h('div', { class: 'jp-secrets-add-slot' });
  private readonly status = h('div', { class: 'jp-secrets-status', role: 'status', 'aria-live': 'polite' });
  private readonly list = h('ul', { class: 'jp-secrets-list', 'aria-label': 'Connections' });
  loaded: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: Context) {
    this.addButton = button('New connection', () => this.openCreate(), {
      class: 'jp-secrets-button jp-mod-accept',
      hidden: !ctx.me.can_write
    });
    this.node = h(
      'div',
      { class: 'jp-secrets-tab jp-secrets-connections', tabindex: -1 },
      h(
        'div',
        { class: 'jp-secrets-toolbar' },
        h(
          'div',
          { class: 'jp-secrets-toolbar-buttons' },
          button('Refresh', () => { this.say(''); void this.reload(); }, { 'aria-label': 'Reload the connections' }),
          this.addButton
        )
      ),
      this.addSlot,
      this.status,
      this.list
    );
    this.opened = new OpenView(this.node);
  }

  say(message: string, tone: 'ok' | 'error' = 'ok'): void {
    this.status.textContent = message;
    this.status.dataset.tone = tone;
  }

  reload(): Promise<void> {
    this.ctx.checkHealth();
    this.loaded = this.load();
    return this.loaded;
  }

  private async load(): Promise<void> {
    try {
      [this.connections, this.presets] = await Promise.all([
        this.ctx.client.listConnections(),
        this.presets.length ? Promise.resolve(this.presets) : this.ctx.client.presets()
      ]);
    } catch (error) {
      this.say((error as Error).message, 'error');
      return;
    }
    this.render();
  }

  private render(): void {
    const rows = this.connections.map(c => this.row(c));
    if (!rows.length) {
      rows.push(
        h(
          'li',
          { class: 'jp-secrets-empty' },
          this.ctx.me.can_write
            ? 'No connections yet. "New connection" creates one from a preset (OpenAI, Anthropic, any HTTP API).'
            : 'No connections yet: ask a secrets admin to create one.'
        )
      );
    }
    this.list.replaceChildren(...rows);
    if (this.opened.node && !this.opened.node.isConnected) {
      this.close(false); // its row is gone (deleted elsewhere): drop the form and its value
    }
  }

  private testPath(connection: Connection): string {
    return this.presets.find(p => p.name === connection.preset)?.test_path ?? '/';
  }

  private row(connection: Connection): HTMLLIElement {
    const name = connection.name;
    const result = h('div', { class: 'jp-secrets-test-result', role: 'status', 'aria-live': 'polite' });
    const slot = h('div', { class: 'jp-secrets-row-slot' });
    const actions: HTMLElement[] = [
      button('Test', () => void this.test(connection, result), {
        'aria-label': `Test connection ${name}`,
        title: `GET ${this.testPath(connection)} through the proxy`
      }),
      button('Use in code', ev => this.openIn(slot, snippetBox(this.ctx, connectionSnippet(connection), () => this.close()), ev.currentTarget as HTMLElement), {
        'aria-label': `Use connection ${name} in code`
      })
    ];
    if (this.ctx.me.can_write) {
      actions.push(
        button('Rotate key', ev => this.openIn(slot, this.rotateForm(connection), ev.currentTarget as HTMLElement), {
          'aria-label': `Rotate the key of connection ${name}`,
          disabled: !connection.secret
        }),
        button('Edit', ev => this.openIn(slot, this.editForm(connection), ev.currentTarget as HTMLElement), {
          'aria-label': `Edit connection ${name}`
        }),
        button('Delete', ev => this.openIn(slot, this.deleteForm(connection), ev.currentTarget as HTMLElement), {
          'aria-label': `Delete connection ${name}`,
          class: 'jp-secrets-button jp-mod-warn'
        })
      );
    }
    const key = connection.secret
      ? `${connection.secret}${connection.owns_secret ? ' (its own key)' : ''}`
      : 'none';
    return h(
      'li',
      { class: 'jp-secrets-row', 'data-name': name },
      h(
        'div',
        { class: 'jp-secrets-row-head' },
        clipped(name, 'jp-secrets-name'),
        h('span', { class: 'jp-secrets-badge' }, connection.preset)
      ),
      connection.description ? clipped(connection.description, 'jp-secrets-description') : null,
      h(
        'div',
        { class: 'jp-secrets-cells' },
        h('div', { class: 'jp-secrets-cell' }, h('span', { class: 'jp-secrets-cell-label' }, 'URL: '), clipped(connection.base_url)),
        h('div', { class: 'jp-secrets-cell' }, h('span', { class: 'jp-secrets-cell-label' }, 'Auth: '), clipped(describeAuth(connection.auth))),
        h('div', { class: 'jp-secrets-cell' }, h('span', { class: 'jp-secrets-cell-label' }, 'Key: '), clipped(key)),
        this.ctx.me.can_write
          ? h(
              'div',
              { class: 'jp-secrets-cell jp-secrets-shared' },
              h('span', { class: 'jp-secrets-cell-label' }, 'Shared with: '),
              clipped(describeSharing(connection.shared_with))
            )
          : null,
        connection.rate_limit || connection.daily_quota
          ? h(
              'div',
              { class: 'jp-secrets-cell jp-secrets-limits' },
              h('span', { class: 'jp-secrets-cell-label' }, 'Limits: '),
              clipped(describeLimits(connection.rate_limit, connection.daily_quota))
            )
          : null,
        connection.export_env
          ? h('div', { class: 'jp-secrets-cell jp-secrets-env' }, h('span', { class: 'jp-secrets-cell-label' }, 'Environment: '), clipped('exported to kernels'))
          : null
      ),
      h('div', { class: 'jp-secrets-actions' }, ...actions),
      result,
      slot
    );
  }

  private async test(connection: Connection, result: HTMLElement): Promise<void> {
    result.textContent = 'Testing…';
    delete result.dataset.tone;
    try {
      const probe = await this.ctx.client.probe(connection.name, this.testPath(connection));
      const text = `${probe.status} ${probe.statusText || ''}`.trim();
      result.textContent = `${text} · ${probe.ms} ms${probe.message ? ` · ${probe.message}` : ''}`;
      result.dataset.tone = probe.status < 400 ? 'ok' : 'error';
    } catch (error) {
      result.textContent = (error as Error).message;
      result.dataset.tone = 'error';
    }
  }

  // -- forms -----------------------------------------------------------------------------

  private place(view: FormView | HTMLElement, parent: HTMLElement, opener: HTMLElement | null): void {
    this.opened.show(view, parent, opener);
  }

  private openIn(slot: HTMLElement, view: FormView | HTMLElement, opener: HTMLElement): void {
    this.place(view, slot, opener);
  }

  close(restoreFocus = true): void {
    this.opened.close(restoreFocus);
  }

  private async afterWrite(message: string, name: string, action: string): Promise<void> {
    this.close(false);
    const focus = new FocusHandOver(this.node);
    this.say(message);
    this.ctx.changed('connection', name, action);
    await this.reload();
    const first = this.list.querySelector<HTMLElement>(`[data-name="${CSS.escape(name)}"] button`);
    focus.to(first ?? this.addButton);
  }

  openCreate(): FormView {
    const presetSelect = selectField(
      'Preset',
      this.presets.map(p => [p.name, p.name === 'http' ? 'Other HTTP API' : p.name]),
      this.presets[0]?.name ?? 'http'
    );
    const name = textField('Name', { hint: 'Lower-case letters, digits, - or _; code uses it: js.connection("name").' });
    const baseUrl = textField('Base URL', { placeholder: 'https://api.example.com/v1' });
    const auth = new AuthFields({ scheme: 'bearer' });
    const description = textField('Description', { placeholder: 'What it is for' });
    const headers = textAreaField('Extra headers', '', 'One "Name: value" per line; values may hold {{secrets.NAME}}.');
    const sharing = sharingField('everyone', this.ctx.me.groups);
    const limits = limitsField(null, null);
    const exportEnv = checkField('Export its environment to kernels', false, 'Kernels started afterwards get the SDK variables (e.g. OPENAI_BASE_URL, and OPENAI_API_KEY = the kernel\'s own token, never the key).');
    const sourceName = uid('source');
    const typed = h('input', { type: 'radio', name: sourceName, id: uid('radio'), value: 'typed', checked: true });
    const existing = h('input', { type: 'radio', name: sourceName, id: uid('radio'), value: 'existing' });
    const key = valueField('Key');
    const secret = selectField('Secret', [], '');
    const source = h(
      'fieldset',
      { class: 'jp-secrets-field' },
      h('legend', {}, 'Key'),
      h('span', { class: 'jp-secrets-check' }, typed, h('label', { for: typed.id }, 'Type the key')),
      h('span', { class: 'jp-secrets-check' }, existing, h('label', { for: existing.id }, 'Use an existing secret'))
    );
    let userSecrets: SecretRecord[] | null = null;
    const syncSource = () => {
      const useExisting = existing.checked;
      key.row.hidden = useExisting;
      secret.row.hidden = !useExisting;
      if (useExisting && userSecrets === null) {
        userSecrets = [];
        this.ctx.client.listSecrets('all', 'user').then(
          records => {
            userSecrets = records;
            secret.input.replaceChildren(...records.map(r => h('option', { value: r.name }, r.name)));
          },
          error => form.showError((error as Error).message)
        );
      }
    };
    typed.addEventListener('change', syncSource);
    existing.addEventListener('change', syncSource);
    let nameTouched = false;
    name.input.addEventListener('input', () => (nameTouched = true));
    const applyPreset = () => {
      const preset = this.presets.find(p => p.name === presetSelect.input.value);
      if (!preset) {
        return;
      }
      if (!nameTouched) {
        name.input.value = preset.name === 'http' ? '' : preset.name;
      }
      baseUrl.input.value = preset.base_url ?? '';
      auth.set(preset.auth);
      headers.input.value = headersText(preset.headers);
    };
    presetSelect.input.addEventListener('change', applyPreset);
    const form = new FormView({
      title: 'New connection',
      fields: [presetSelect.row, name.row, baseUrl.row, ...auth.rows, source, key.row, secret.row, description.row, headers.row, sharing.row, ...limits.rows, exportEnv.row],
      save: 'Create',
      onCancel: () => this.close(),
      onSave: async () => {
        const body: Record<string, unknown> = {
          name: name.input.value.trim(),
          preset: presetSelect.input.value,
          base_url: baseUrl.input.value.trim(),
          auth: auth.value(),
          description: description.input.value.trim(),
          headers: parseHeaders(headers.input.value),
          ...limits.value()
        };
        if (exportEnv.input.checked) {
          body.export_env = true;
        }
        if (!body.name) {
          name.input.focus();
          throw new Error('Give the connection a name, like openai.');
        }
        const shared = sharing.value();
        if (shared !== 'everyone') {
          body.shared_with = shared;
        }
        if (auth.value().scheme !== 'none') {
          if (existing.checked) {
            if (!secret.input.value) {
              throw new Error('Choose the secret this connection uses.');
            }
            body.secret = secret.input.value;
          } else {
            if (!key.input.value) {
              key.input.focus();
              throw new Error('Type the key first.');
            }
            body.value = key.input.value;
          }
        }
        const created = await this.ctx.client.createConnection(body);
        key.input.value = '';
        await this.afterWrite(`Created connection ${created.name}. Press Test to try it.`, created.name, 'create');
      }
    });
    applyPreset();
    syncSource();
    this.place(form, this.addSlot, this.addButton);
    return form;
  }

  private editForm(connection: Connection): FormView {
    const baseUrl = textField('Base URL', { value: connection.base_url });
    const auth = new AuthFields(connection.auth);
    const description = textField('Description', { value: connection.description });
    const headers = textAreaField('Extra headers', headersText(connection.headers), 'One "Name: value" per line; values may hold {{secrets.NAME}}.');
    const sharing = sharingField(connection.shared_with, this.ctx.me.groups);
    const limits = limitsField(connection.rate_limit, connection.daily_quota);
    const exportEnv = checkField('Export its environment to kernels', Boolean(connection.export_env), 'Kernels started afterwards get the SDK variables (e.g. OPENAI_BASE_URL, and OPENAI_API_KEY = the kernel\'s own token, never the key).');
    return new FormView({
      title: `Edit connection ${connection.name}`,
      fields: [baseUrl.row, ...auth.rows, description.row, headers.row, sharing.row, ...limits.rows, exportEnv.row],
      save: 'Save',
      onCancel: () => this.close(),
      onSave: async () => {
        const body: Record<string, unknown> = {
          base_url: baseUrl.input.value.trim(),
          auth: auth.value(),
          description: description.input.value.trim(),
          headers: parseHeaders(headers.input.value)
        };
        const shared = sharing.value();
        if (!sameSharing(shared, connection.shared_with)) {
          body.shared_with = shared;
        }
        const limited = limits.value();
        if (limited.rate_limit !== (connection.rate_limit ?? null)) {
          body.rate_limit = limited.rate_limit;
        }
        if (limited.daily_quota !== (connection.daily_quota ?? null)) {
          body.daily_quota = limited.daily_quota;
        }
        if (exportEnv.input.checked !== Boolean(connection.export_env)) {
          body.export_env = exportEnv.input.checked;
        }
        const saved = await this.ctx.client.patchConnection(connection.name, body);
        await this.afterWrite(`Updated connection ${saved.name}.`, saved.name, 'update');
      }
    });
  }

  private rotateForm(connection: Connection): FormView {
    const key = valueField('New key');
    const shared = !connection.owns_secret;
    return new FormView({
      title: `Rotate the key of ${connection.name}`,
      intro: shared
        ? `${connection.name} uses the secret ${connection.secret}: its new value applies to everything that uses it.`
        : 'Calls through this connection use the new key at once.',
      fields: [key.row],
      save: 'Rotate',
      onCancel: () => this.close(),
      onSave: async () => {
        if (!key.input.value) {
          throw new Error('Type the new key first.');
        }
        if (shared && connection.secret) {
          await this.ctx.client.replaceSecret(connection.secret, key.input.value);
          this.ctx.changed('secret', connection.secret, 'replace');
        } else {
          await this.ctx.client.patchConnection(connection.name, { value: key.input.value });
        }
        key.input.value = '';
        await this.afterWrite(`Rotated the key of ${connection.name}.`, connection.name, 'rotate');
      }
    });
  }

  private deleteForm(connection: Connection): FormView {
    const own = connection.owns_secret && connection.secret ? ` Its own key ${connection.secret} is deleted with it.` : '';
    const form = new FormView({
      title: `Delete connection ${connection.name}?`,
      intro: `Code that calls js.connection("${connection.name}") will fail.${own} This cannot be undone.`,
      fields: [],
      save: 'Delete',
      danger: true,
      focus: 'cancel',
      onCancel: () => this.close(),
      onSave: async () => {
        await this.ctx.client.deleteConnection(connection.name);
        await this.afterWrite(`Deleted connection ${connection.name}.`, connection.name, 'delete');
      }
    });
    form.node.classList.add('jp-secrets-confirm');
    return form;
  }
}
