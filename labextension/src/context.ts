/** What every tab of the manager shares: the API client, who is signed in, where code goes. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { Connection, Me, SecretRecord, SecretsClient } from './api';

export type ChangeKind = 'secret' | 'connection';

export interface Context {
  client: SecretsClient;
  me: Me;
  code: CodeTarget;
  /** Called after every write the browser made (names only), e.g. to tell the kernel. */
  changed(kind: ChangeKind, name: string, action: string): void;
  /** Re-check the health banner (every reload does). */
  checkHealth(): void;
}

/** The parts of a notebook panel the snippets need (no dependency on @jupyterlab/notebook). */
interface NotebookLike extends Widget {
  content: {
    activeCell: { model: { sharedModel: { setSource(source: string): void } } } | null;
  };
  context: { path: string };
}

function isNotebook(widget: Widget | null | undefined): widget is NotebookLike {
  const candidate = widget as Partial<NotebookLike> | null | undefined;
  return Boolean(
    candidate?.content &&
      'activeCell' in candidate.content &&
      candidate.context?.path?.endsWith('.ipynb')
  );
}

/** Copy a snippet, or insert it as a new cell below the active one in the current notebook. */
export class CodeTarget {
  constructor(private readonly app: JupyterFrontEnd | null) {}

  notebook(): NotebookLike | null {
    const current = this.app?.shell.currentWidget;
    return isNotebook(current) ? current : null;
  }

  canInsert(): boolean {
    return this.notebook() !== null && Boolean(this.app?.commands.hasCommand('notebook:insert-cell-below'));
  }

  /** Insert ``code`` below the active cell; returns the notebook's path. */
  async insert(code: string): Promise<string> {
    const notebook = this.notebook();
    if (!notebook || !this.app) {
      throw new Error('Open a notebook first: the snippet goes below its active cell.');
    }
    await this.app.commands.execute('notebook:insert-cell-below');
    const cell = notebook.content.activeCell;
    if (!cell) {
      throw new Error('The notebook has no active cell to insert below.');
    }
    cell.model.sharedModel.setSource(code);
    return notebook.context.path;
  }

  copy(text: string): void {
    Clipboard.copyToSystem(text);
  }
}

export interface Snippet {
  /** What "Copy" puts on the clipboard. */
  short: string;
  /** What "Insert" puts in a new cell. */
  cell: string;
}

const q = (text: string): string => JSON.stringify(text);

export function connectionSnippet(connection: Pick<Connection, 'name' | 'preset'>): Snippet {
  const expr = `js.connection(${q(connection.name)})`;
  if (connection.preset === 'openai' || connection.preset === 'anthropic') {
    const sdk = connection.preset === 'openai' ? 'OpenAI' : 'Anthropic';
    return {
      short: `${expr}.sdk_kwargs()`,
      cell:
        `import jupyter_secrets as js\nfrom ${connection.preset} import ${sdk}\n\n` +
        `client = ${sdk}(**${expr}.sdk_kwargs())`
    };
  }
  return {
    short: expr,
    cell: `import jupyter_secrets as js\n\nconn = ${expr}\nr = conn.get("/")\nr.status_code`
  };
}

export function secretSnippet(record: Pick<SecretRecord, 'name' | 'allowed_hosts'>): Snippet {
  const placeholder = `{{secrets.${record.name}}}`;
  const host = record.allowed_hosts[0]?.replace(/^\*\./, 'api.');
  const cell = host
    ? 'import jupyter_secrets as js\n\n' +
      `r = js.request("GET", "https://${host}/",\n` +
      `               headers={"Authorization": "Bearer ${placeholder}"})\nr.status_code`
    : `# ${record.name} has no allowed hosts: use it through a connection, or add a host\n` +
      `# (Edit in the Secrets sidebar), then: js.request(..., headers={"Authorization": "Bearer ${placeholder}"})`;
  return { short: placeholder, cell };
}
