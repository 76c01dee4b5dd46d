/**
 * After a save, ask the server whether it redacted stored values from what was written; if
 * so, say which (names only) and reload the open document from the file, so the page shows
 * what is on disk and the next save or run holds no surprise.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import type { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ApiError, Redaction, SecretsClient } from './api';

interface ContextLike {
  path: string;
  revert(): Promise<void>;
  model: { dirty: boolean };
  saveState: ISignal<unknown, 'started' | 'completed' | 'failed'>;
}

interface DocumentLike extends Widget {
  context: ContextLike;
}

/** Resolve once ``context`` has finished the save in flight (JupyterLab marks the document
 * clean only after a follow-up request), or after ``ms`` if it was not saving. */
function saved(context: ContextLike, ms = 3000): Promise<void> {
  if (!context.model.dirty) {
    return Promise.resolve();
  }
  return new Promise(resolve => {
    const finish = (): void => {
      window.clearTimeout(timer);
      context.saveState.disconnect(onState);
      resolve();
    };
    const onState = (_sender: unknown, state: string): void => {
      if (state !== 'started') {
        finish();
      }
    };
    const timer = window.setTimeout(finish, ms);
    context.saveState.connect(onState);
  });
}

function isDocument(widget: Widget): widget is DocumentLike {
  const context = (widget as unknown as Partial<DocumentLike>).context;
  return Boolean(context && typeof context.path === 'string' && typeof context.revert === 'function');
}

/** Short enough for a toast (JupyterLab cuts them at 140 characters): names, never values. */
export function redactionMessage(redaction: Redaction, reloaded: boolean): string {
  const names = redaction.names;
  const what = names.length
    ? `the value of ${names.slice(0, 2).join(', ')}${names.length > 2 ? ` and ${names.length - 2} more` : ''}`
    : `${redaction.count} secret value${redaction.count === 1 ? '' : 's'}`;
  const after = reloaded ? 'reloaded from the file' : 'reload it to see the file';
  return `${redaction.path}: ${what} was redacted on save; ${after}.`;
}

export class RedactionWatcher {
  /** Per path: the last redaction id handled (ids only grow). */
  private readonly seen = new Map<string, number>();
  private start: Promise<number>;
  private unavailable = false;

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly client: SecretsClient
  ) {
    this.start = client.redactions(null).then(
      reply => reply.latest,
      error => {
        // No save notices on this server (a server in client mode without a feed, or the
        // extension off): stop asking at every save.
        this.unavailable = error instanceof ApiError && error.status === 404;
        return 0;
      }
    );
    app.serviceManager.contents.fileChanged.connect((_sender, change: Contents.IChangedArgs) => {
      if (change.type === 'save' && change.newValue?.path) {
        void this.check(change.newValue.path);
      }
    });
  }

  private async check(path: string): Promise<void> {
    const contexts = this.contexts(path);
    await Promise.all(contexts.map(context => saved(context)));
    const after = this.seen.get(path) ?? (await this.start);
    if (this.unavailable) {
      return;
    }
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
    const reloaded = await this.revert(contexts);
    Notification.warning(redactionMessage(latest, reloaded > 0), { autoClose: false });
  }

  /** The document contexts open on ``path`` (one per document, however many views). */
  private contexts(path: string): ContextLike[] {
    const found = new Set<ContextLike>();
    for (const widget of this.app.shell.widgets('main')) {
      if (isDocument(widget) && widget.context.path === path) {
        found.add(widget.context);
      }
    }
    return [...found];
  }

  /** Reload each document from disk unless it was edited after the save (then say so). */
  private async revert(contexts: ContextLike[]): Promise<number> {
    let reloaded = 0;
    for (const context of contexts) {
      if (!context.model.dirty) {
        await context.revert();
        reloaded += 1;
      }
    }
    return reloaded;
  }
}
