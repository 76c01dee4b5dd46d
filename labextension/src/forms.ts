/**
 * Forms: labelled fields (``<label for>`` on every input), an inline error line, Save and
 * Cancel. Opening a form moves focus into it; Escape cancels; Enter submits. A value field
 * lives only while its form is open: it is emptied before the form goes away.
 */
import { DEFAULT_PLACEMENTS, PLACEMENTS, Placement, SharedWith } from './api';
import { Attrs, button, h, uid } from './dom';

export interface Field<T extends HTMLElement = HTMLInputElement> {
  row: HTMLElement;
  input: T;
}

export function textField(
  label: string,
  attrs: Attrs & { value?: string; hint?: string } = {}
): Field {
  const id = uid('field');
  const { hint, value, ...rest } = attrs;
  const hintId = hint ? uid('hint') : undefined;
  const input = h('input', {
    id,
    type: 'text',
    class: 'jp-secrets-input',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': hintId,
    ...rest
  });
  input.value = String(value ?? '');
  const row = h(
    'div',
    { class: 'jp-secrets-field' },
    h('label', { for: id }, label),
    input,
    hint ? h('small', { id: hintId, class: 'jp-secrets-hint' }, String(hint)) : null
  );
  return { row, input };
}

export function selectField(
  label: string,
  options: [string, string][],
  value: string,
  attrs: Attrs = {}
): Field<HTMLSelectElement> {
  const id = uid('field');
  const input = h(
    'select',
    { id, class: 'jp-secrets-input', ...attrs },
    ...options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))
  );
  input.value = value;
  return { row: h('div', { class: 'jp-secrets-field' }, h('label', { for: id }, label), input), input };
}

export function textAreaField(label: string, value: string, hint: string): Field<HTMLTextAreaElement> {
  const id = uid('field');
  const hintId = uid('hint');
  const input = h('textarea', {
    id,
    rows: 2,
    class: 'jp-secrets-input',
    spellcheck: 'false',
    'aria-describedby': hintId
  });
  input.value = value;
  const row = h(
    'div',
    { class: 'jp-secrets-field' },
    h('label', { for: id }, label),
    input,
    h('small', { id: hintId, class: 'jp-secrets-hint' }, hint)
  );
  return { row, input };
}

/** A password box with a show/hide toggle. The value stays in this input, nowhere else. */
export function valueField(label: string): Field & { toggle: HTMLButtonElement } {
  const id = uid('value');
  const input = h('input', {
    id,
    type: 'password',
    class: 'jp-secrets-input jp-secrets-value-input',
    autocomplete: 'new-password',
    spellcheck: 'false',
    'data-lpignore': 'true'
  });
  const toggle = button(
    'Show',
    () => {
      const shown = input.type === 'text';
      input.type = shown ? 'password' : 'text';
      toggle.textContent = shown ? 'Show' : 'Hide';
      toggle.setAttribute('aria-pressed', String(!shown));
      toggle.setAttribute('aria-label', shown ? 'Show the value' : 'Hide the value');
    },
    { 'aria-pressed': 'false', 'aria-controls': id, 'aria-label': 'Show the value', class: 'jp-secrets-button jp-secrets-toggle' }
  );
  const row = h(
    'div',
    { class: 'jp-secrets-field' },
    h('label', { for: id }, label),
    h('div', { class: 'jp-secrets-value-row' }, input, toggle)
  );
  return { row, input, toggle };
}

export const HOSTS_HINT = 'Hosts the value may be sent to, e.g. api.openai.com, *.example.com';

export interface PlacementsField {
  row: HTMLElement;
  boxes: Map<Placement, HTMLInputElement>;
  value(): Placement[];
}

/** Where a value may be placed in an outbound request; header by default. */
export function placementsField(selected: Placement[] | undefined): PlacementsField {
  const current = new Set(selected ?? DEFAULT_PLACEMENTS);
  const boxes = new Map<Placement, HTMLInputElement>();
  const hintId = uid('hint');
  const items = PLACEMENTS.map(place => {
    const id = uid('place');
    const box = h('input', { id, type: 'checkbox', value: place, checked: current.has(place) });
    boxes.set(place, box);
    return h('span', { class: 'jp-secrets-check' }, box, h('label', { for: id }, place));
  });
  const row = h(
    'fieldset',
    { class: 'jp-secrets-field jp-secrets-placements', 'aria-describedby': hintId },
    h('legend', {}, 'May be placed in'),
    h('div', { class: 'jp-secrets-checks' }, ...items),
    h(
      'small',
      { id: hintId, class: 'jp-secrets-hint' },
      'A host that echoes or stores a query or body (an LLM, a paste API) can return the value ' +
        'in a form no scrubber recognises: allow those only for hosts you trust.'
    )
  );
  return {
    row,
    boxes,
    value: () => PLACEMENTS.filter(place => boxes.get(place)!.checked)
  };
}

export interface SharingField {
  row: HTMLElement;
  everyone: HTMLInputElement;
  listed: HTMLInputElement;
  users: HTMLInputElement;
  groups: HTMLInputElement;
  /** What the form says; throws when "users and groups" lists nobody. */
  value(): SharedWith;
}

/** ``everyone``, or ``users alice, bob; groups analysts``. */
export function describeSharing(shared: SharedWith | undefined): string {
  if (!shared || shared === 'everyone') {
    return 'everyone';
  }
  const parts = [
    shared.users.length ? `users ${shared.users.join(', ')}` : '',
    shared.groups.length ? `groups ${shared.groups.join(', ')}` : ''
  ].filter(Boolean);
  return parts.join('; ') || 'admins only';
}

const sortedList = (items: string[]): string[] => [...new Set(items)].sort();
/** Names separated by commas (a name may hold spaces: Hub group names can). */
const names = (text: string): string[] => text.split(',').map(n => n.trim()).filter(Boolean);

/** Whether two ``shared_with`` say the same (order and repeats aside). */
export function sameSharing(a: SharedWith | undefined, b: SharedWith | undefined): boolean {
  const norm = (s: SharedWith | undefined): string =>
    !s || s === 'everyone' ? 'everyone' : JSON.stringify([sortedList(s.users), sortedList(s.groups)]);
  return norm(a) === norm(b);
}

/**
 * Who may use it besides admins: everyone, or listed users and groups (admins only see this
 * field). ``groups``: the admin's own groups, offered as a hint.
 */
export function sharingField(current: SharedWith | undefined, groups: string[] = []): SharingField {
  const group = uid('share');
  const listedNow = Boolean(current && current !== 'everyone');
  const everyone = h('input', { type: 'radio', name: group, id: uid('radio'), value: 'everyone', checked: !listedNow });
  const listed = h('input', { type: 'radio', name: group, id: uid('radio'), value: 'listed', checked: listedNow });
  const users = textField('Users', {
    value: listedNow ? (current as { users: string[] }).users.join(', ') : '',
    placeholder: 'alice, bob',
    hint: 'User names, separated by commas.'
  });
  const groupNames = textField('Groups', {
    value: listedNow ? (current as { groups: string[] }).groups.join(', ') : '',
    placeholder: groups.length ? groups.join(', ') : 'analysts',
    hint: groups.length ? `Group names, separated by commas (yours: ${groups.join(', ')}).` : 'Group names, separated by commas.'
  });
  const lists = h('div', { class: 'jp-secrets-share-lists' }, users.row, groupNames.row);
  const sync = (): void => {
    lists.hidden = !listed.checked;
  };
  everyone.addEventListener('change', sync);
  listed.addEventListener('change', sync);
  sync();
  const hintId = uid('hint');
  const row = h(
    'fieldset',
    { class: 'jp-secrets-field jp-secrets-sharing', 'aria-describedby': hintId },
    h('legend', {}, 'Shared with'),
    h(
      'div',
      { class: 'jp-secrets-checks' },
      h('span', { class: 'jp-secrets-check' }, everyone, h('label', { for: everyone.id }, 'everyone')),
      h('span', { class: 'jp-secrets-check' }, listed, h('label', { for: listed.id }, 'users and groups'))
    ),
    lists,
    h(
      'small',
      { id: hintId, class: 'jp-secrets-hint' },
      'Admins can always use it. Anyone else sees and uses it only when it is shared with them.'
    )
  );
  return {
    row,
    everyone,
    listed,
    users: users.input,
    groups: groupNames.input,
    value: (): SharedWith => {
      if (everyone.checked) {
        return 'everyone';
      }
      const shared = { users: names(users.input.value), groups: names(groupNames.input.value) };
      if (!shared.users.length && !shared.groups.length) {
        users.input.focus();
        throw new Error('List at least one user or group, or share with everyone.');
      }
      return shared;
    }
  };
}

export interface FormOptions {
  title: string;
  fields: HTMLElement[];
  save: string;
  danger?: boolean;
  intro?: HTMLElement | string;
  /** Save: resolve to close the form, throw (Error) to show its message inline. */
  onSave: () => Promise<void>;
  onCancel: () => void;
  /** Which element gets focus when the form opens (default: the first field). */
  focus?: 'first' | 'cancel';
}

/** A form that owns its error line and its busy state. */
export class FormView {
  readonly node: HTMLFormElement;
  readonly error: HTMLElement;
  readonly saveButton: HTMLButtonElement;
  readonly cancelButton: HTMLButtonElement;
  private busy = false;

  constructor(private readonly options: FormOptions) {
    const titleId = uid('title');
    this.error = h('div', { class: 'jp-secrets-error', role: 'alert' });
    this.saveButton = h(
      'button',
      { type: 'submit', class: `jp-secrets-button ${options.danger ? 'jp-mod-warn' : 'jp-mod-accept'}` },
      options.save
    );
    this.cancelButton = button('Cancel', () => options.onCancel());
    this.node = h(
      'form',
      { class: 'jp-secrets-form', 'aria-labelledby': titleId, novalidate: true },
      h('div', { id: titleId, class: 'jp-secrets-form-title' }, options.title),
      typeof options.intro === 'string'
        ? h('p', { class: 'jp-secrets-intro' }, options.intro)
        : options.intro,
      ...options.fields,
      this.error,
      h('div', { class: 'jp-secrets-form-buttons' }, this.saveButton, this.cancelButton)
    );
    this.node.addEventListener('submit', event => {
      event.preventDefault();
      void this.submit();
    });
    this.node.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        options.onCancel();
      }
    });
  }

  /** Move focus into the form (call once it is in the document). */
  focus(): void {
    if (this.options.focus === 'cancel') {
      this.cancelButton.focus();
      return;
    }
    const first = this.node.querySelector<HTMLElement>('input, select, textarea');
    (first ?? this.saveButton).focus();
  }

  showError(message: string): void {
    this.error.textContent = message;
  }

  async submit(): Promise<void> {
    if (this.busy) {
      return;
    }
    this.busy = true;
    this.saveButton.disabled = true;
    this.showError('');
    try {
      await this.options.onSave();
    } catch (error) {
      this.showError((error as Error).message || 'The save failed.');
    } finally {
      this.busy = false;
      this.saveButton.disabled = false;
    }
  }

  /** Empty every value field, then detach: nothing typed outlives the form. */
  dispose(): void {
    this.node.querySelectorAll('input').forEach(input => {
      if (input.type === 'password' || input.classList.contains('jp-secrets-value-input')) {
        input.value = '';
      }
    });
    this.node.remove();
  }
}

/** A labelled checkbox (its label is its accessible name). */
export function checkField(label: string, checked: boolean, hint?: string): Field {
  const id = uid('check');
  const hintId = hint ? uid('hint') : undefined;
  const input = h('input', { id, type: 'checkbox', checked, 'aria-describedby': hintId });
  const row = h(
    'div',
    { class: 'jp-secrets-field jp-secrets-check' },
    input,
    h('label', { for: id }, label),
    hint ? h('small', { id: hintId, class: 'jp-secrets-hint' }, hint) : null
  );
  return { row, input };
}

export interface LimitsField {
  rows: HTMLElement[];
  /** ``rate_limit`` and ``daily_quota`` as typed: a number, null (empty: no limit), or the
   * text itself, which the server refuses with its own message. */
  value(): { rate_limit: number | string | null; daily_quota: number | string | null };
}

/** A connection's per-user limits: calls per minute and calls per UTC day. */
export function limitsField(rateLimit: number | null | undefined, dailyQuota: number | null | undefined): LimitsField {
  const rate = textField('Rate limit (calls per minute)', {
    value: rateLimit ? String(rateLimit) : '',
    placeholder: 'no limit',
    inputmode: 'numeric',
    hint: 'Per user; past it the proxy answers 429 with Retry-After. Empty: no limit.'
  });
  const daily = textField('Daily quota (calls per day)', {
    value: dailyQuota ? String(dailyQuota) : '',
    placeholder: 'no limit',
    inputmode: 'numeric',
    hint: 'Per user and UTC day. Empty: no limit.'
  });
  const read = (input: HTMLInputElement): number | string | null => {
    const text = input.value.trim().replace(/[,_\s]/g, '');
    if (!text) {
      return null;
    }
    return /^\d+$/.test(text) ? Number(text) : input.value.trim();
  };
  return { rows: [rate.row, daily.row], value: () => ({ rate_limit: read(rate.input), daily_quota: read(daily.input) }) };
}

/** ``60/min · 1,000/day``, or '' when the connection has no limit. */
export function describeLimits(rateLimit: number | null | undefined, dailyQuota: number | null | undefined): string {
  return [rateLimit ? `${rateLimit.toLocaleString()}/min` : '', dailyQuota ? `${dailyQuota.toLocaleString()}/day` : '']
    .filter(Boolean)
    .join(' · ');
}

/**
 * The one form or box open in a tab, beside what it is about. Opening another closes it;
 * closing hands focus back to what opened it (else to the tab: focus left on a removed node
 * falls to the page body, and JupyterLab then hands it to the main area) and empties every
 * field it held, so nothing typed or shown outlives it.
 */
export class OpenView {
  view: FormView | HTMLElement | null = null;
  opener: HTMLElement | null = null;
  /** What the view is about (e.g. ``edit:NAME``), for tabs that redraw their rows. */
  key = '';

  constructor(private readonly home: HTMLElement) {}

  get node(): HTMLElement | null {
    return this.view instanceof FormView ? this.view.node : this.view;
  }

  show(view: FormView | HTMLElement, parent: HTMLElement | null | undefined, opener: HTMLElement | null, key = ''): void {
    this.close(false);
    this.view = view;
    this.opener = opener;
    this.key = key;
    parent?.appendChild(this.node!);
    if (view instanceof FormView) {
      view.focus();
    } else {
      view.querySelector<HTMLElement>('button')?.focus();
    }
  }

  close(restoreFocus = true): void {
    const { view, opener } = this;
    this.view = null;
    this.opener = null;
    this.key = '';
    if (!view) {
      return;
    }
    if (restoreFocus && opener?.isConnected) {
      opener.focus();
    } else if (this.home.contains(document.activeElement)) {
      this.home.focus({ preventScroll: true });
    }
    if (view instanceof FormView) {
      view.dispose();
    } else {
      view.querySelectorAll('input').forEach(input => (input.value = ''));
      view.remove();
    }
  }
}

/**
 * The focus a form's closing left, to hand on later (after an awaited reload) with
 * {@link FocusHandOver.to}. Only if it has not moved in between: the person may already be
 * typing in another form, and taking the focus away would send the rest of their keys (a
 * secret's value) nowhere, to be saved cut short.
 */
export class FocusHandOver {
  private readonly resting = document.activeElement;

  /** ``home``: the tab's own node, where a closing form leaves the focus. */
  constructor(private readonly home: HTMLElement) {}

  to(target: HTMLElement): void {
    const now = document.activeElement;
    if (now === null || now === document.body || now === this.home || now === this.resting) {
      target.focus();
    }
  }
}
