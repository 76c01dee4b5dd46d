/** Small DOM helpers: elements without a UI framework, text always as text (never HTML). */

type Child = Node | string | null | undefined | false;
export type Attrs = Record<string, unknown>;

/** ``h('button', {class: 'x', onclick: fn, 'aria-label': 'Close'}, 'text')`` */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value as EventListener);
    } else if (key === 'class') {
      node.className = String(value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, ...children);
  return node;
}

export function append(node: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

let counter = 0;
/** A document-unique id for ``<label for>`` and ``aria-*`` references. */
export function uid(prefix: string): string {
  counter += 1;
  return `jp-secrets-${prefix}-${counter}`;
}

/** Text that may be too long for its box: ellipsized by CSS, whole in the tooltip. */
export function clipped(text: string, cls = ''): HTMLSpanElement {
  return h('span', { class: `jp-secrets-clip ${cls}`.trim(), title: text }, text);
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** ``2025-01-31 14:05`` in the browser's local time, or '' for no time. */
export function when(stamp: string | null | undefined): string {
  if (!stamp) {
    return '';
  }
  const date = new Date(stamp);
  if (Number.isNaN(date.getTime())) {
    return stamp;
  }
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

export function plural(count: number, word: string): string {
  return `${count.toLocaleString()} ${word}${count === 1 ? '' : 's'}`;
}

/** Comma- or space-separated items, empty ones dropped. */
export function splitList(text: string): string[] {
  return text.split(/[,\s]+/).filter(Boolean);
}

export function button(
  label: string,
  onclick: (event: MouseEvent) => void,
  attrs: Attrs = {}
): HTMLButtonElement {
  return h('button', { type: 'button', class: 'jp-secrets-button', onclick, ...attrs }, label);
}
