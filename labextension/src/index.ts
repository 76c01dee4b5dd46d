/**
 * jupyter-secrets in JupyterLab 4 and Notebook 7:
 * - the Secrets sidebar (key icon in the left area) and its command palette entries;
 * - the notebook panel widget (js.SecretsPanel()), the same manager inside an output;
 * - the redaction notice after a save that the server redacted.
 * Everything goes through one SecretsClient (API base URL and login in one place).
 */
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { SecretsClient } from './api';
import { CodeTarget } from './context';
import { SecretsManager, TabName } from './manager';
import { configurePanels, SecretsPanelModel, SecretsPanelView } from './panel';
import { WIDGET_MODULE, WIDGET_MODULE_VERSION } from './protocol';
import { RedactionWatcher } from './redaction';
import { discover } from './service';

const KEY_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><path class="jp-icon3" fill="#616161" ' +
  'd="M12.65 10A6 6 0 1 0 7 18a6 6 0 0 0 5.65-4H17v4h4v-4h2v-4H12.65zM7 14a2 2 0 1 1 0-4 2 2 0 0 1 0 4z"/></svg>';
export const keyIcon = new LabIcon({ name: 'jupyter-secrets:key', svgstr: KEY_SVG });

export const SIDEBAR_ID = 'jp-secrets-sidebar';
const CATEGORY = 'Secrets';

/**
 * The page's own Jupyter server: save notices (redactions happen where files are saved).
 * The secrets API: found once with ``GET info`` on the page's server. Embedded, it is that
 * server with the page's login; in client mode (the team deployment) it is the secrets
 * service with the service's own login (service.ts), and no credential that can manage
 * secrets passes through the user's server. Every view takes its client from here.
 */
const local = new SecretsClient();
const client = new SecretsClient(() => discover());

/** The sidebar: a Lumino widget that builds the manager the first time it is shown. */
export class SecretsSidebar extends Widget {
  manager: SecretsManager | null = null;

  constructor(private readonly app: JupyterFrontEnd) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-secrets-sidebar');
    this.title.icon = keyIcon;
    this.title.caption = 'Secrets';
    // JupyterLab's left bar shows icons; Notebook 7 lists side panels by label.
    this.title.label = app.name === 'JupyterLab' ? '' : 'Secrets';
  }

  /** The manager, built on first use (so a closed sidebar costs no API call). */
  ensure(): SecretsManager {
    if (!this.manager) {
      this.manager = new SecretsManager({ client, code: new CodeTarget(this.app) });
      this.node.appendChild(this.manager.node);
    }
    return this.manager;
  }

  protected onAfterShow(): void {
    this.ensure();
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      this.ensure();
    }
  }
}

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-secrets:sidebar',
  description: 'The Secrets sidebar: secrets, connections and audit, on the REST API.',
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null): void => {
    const sidebar = new SecretsSidebar(app);
    app.shell.add(sidebar, 'left', { rank: 900, type: 'Secrets' });

    const open = async (tab: TabName): Promise<SecretsManager> => {
      app.shell.activateById(SIDEBAR_ID);
      const manager = sidebar.ensure();
      await manager.ready;
      manager.select(tab, true);
      return manager;
    };
    const commands: [string, string, (m: SecretsManager) => void, TabName][] = [
      ['jupyter-secrets:open', 'Open the Secrets sidebar', () => undefined, 'secrets'],
      ['jupyter-secrets:add-secret', 'Add a secret', m => m.secrets?.openAdd(), 'secrets'],
      ['jupyter-secrets:new-connection', 'New connection', m => void m.connections?.loaded.then(() => m.connections?.openCreate()), 'connections'],
      ['jupyter-secrets:audit', 'Show the audit log', () => undefined, 'audit'],
      ['jupyter-secrets:run-tokens', 'Run tokens', () => undefined, 'tokens']
    ];
    for (const [id, label, then, tab] of commands) {
      app.commands.addCommand(id, {
        label,
        caption: `Secrets: ${label.toLowerCase()}`,
        icon: keyIcon,
        execute: async () => then(await open(tab))
      });
      palette?.addItem({ command: id, category: CATEGORY });
    }
  }
};

const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-secrets:panel',
  description: 'The notebook panel widget (js.SecretsPanel()), drawn in the browser.',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (app: JupyterFrontEnd, registry: IJupyterWidgetRegistry): void => {
    configurePanels(app, client);
    registry.registerWidget({
      name: WIDGET_MODULE,
      version: WIDGET_MODULE_VERSION,
      exports: { SecretsPanelModel, SecretsPanelView }
    });
  }
};

const redactionPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-secrets:redaction',
  description: 'Say when a save was redacted, and reload the document from the file.',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    new RedactionWatcher(app, local);
  }
};

export default [sidebarPlugin, panelPlugin, redactionPlugin];
