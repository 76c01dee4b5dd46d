/**
 * Forms: labelled fields (``<label for>`` on every input), an inline error line, Save and
 * Cancel. Opening a form moves focus into it; Escape cancels; Enter submits. A value field
 * lives only while its form is open: it is emptied before the form goes away.
 */
import { DEFAULT_PLACEMENTS, PLACEMENTS, Placement } from './api';
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
