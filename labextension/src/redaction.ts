/**
 * After a save, ask the server whether it redacted stored values from what was written; if
 * so, say which (names only) and reload the open document from the file, so the page shows
 * what is on disk and the next save or run holds no surprise.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { Redaction, SecretsClient } from './api';

interface DocumentLike extends Widget {
  context: { path: string; revert(): Promise<void>; model: { dirty: boolean } };
}

function isDocument(widget: Widget): widget is DocumentLike {
  const context = (widget as unknown as Partial<DocumentLike>).context;
  return Boolean(context && typeof context.path === 'string' && typeof context.revert === 'function');
}

export function redactionMessage(redaction: Redaction, reloaded: boolean): string {
  const what = redaction.names.length
    ? `the value of ${redaction.names.join(', ')} (now [REDACTED:${redaction.names[0]}]${redaction.names.length > 1 ? ' …' : ''})`
    : `${redaction.count} stored secret value${redaction.count === 1 ? '' : 's'}`;
  return (
    `Saved ${redaction.path} without ${what}: secret values are never written to files. ` +
    (reloaded
      ? 'The open document was reloaded from the file. '
      : 'Reload the document from disk to see what was saved. ') +
    'Use secrets by name instead: {{secrets.NAME}} or js.connection(...).'
  );
}

export class RedactionWatcher {
  /** Per path: the last redaction id handled (ids only grow). */
  private readonly seen = new Map<string, number>();
  private start: Promise<number>;

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly client: SecretsClient
  ) {
    this.start = client.redactions(null).then(
      reply => reply.latest,
      () => 0
    );
    app.serviceManager.contents.fileChanged.connect((_sender, change: Contents.IChangedArgs) => {
      if (change.type === 'save' && change.newValue?.path) {
        void this.check(change.newValue.path);
      }
    });
  }

  private async check(path: string): Promise<void> {
    const after = this.seen.get(path) ?? (await this.start);
    let redactions: Redaction[];
    try {
      redactions = (await this.client.redactions(after, path)).redactions;
    } catch {
      return; // e.g. the extension is not enabled on this server
    }
    if (!redactions.length) {
      return;
    }
    this.seen.set(path, Math.max(after, ...redactions.map(r => r.id)));
    const latest = redactions[redactions.length - 1];
    const reloaded = await this.revert(path);
    Notification.warning(redactionMessage(latest, reloaded > 0), { autoClose: false });
  }

  /** Reload every open view of ``path`` from disk (not dirty: it was just saved). */
  private async revert(path: string): Promise<number> {
    const seen = new Set<unknown>();
    let reloaded = 0;
    for (const widget of this.app.shell.widgets('main')) {
      if (isDocument(widget) && widget.context.path === path && !seen.has(widget.context)) {
        seen.add(widget.context);
        if (!widget.context.model.dirty) {
          await widget.context.revert();
          reloaded += 1;
        }
      }
    }
    return reloaded;
  }
}
