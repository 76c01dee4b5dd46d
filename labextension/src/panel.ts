/**
 * The notebook panel (``js.SecretsPanel()``): an ipywidget whose view is the secrets
 * manager itself, fed by REST from this browser with the page's login. The kernel side only
 * displays it: it never asks this view for a value, and hears back only names ("changed").
 * Two front-ends on one kernel each have their own view and their own forms, so the value
 * typed in one is sent by that one, and no other view can answer for it.
 */
import { DOMWidgetModel, DOMWidgetView, IBackboneModelOptions, ISerializers } from '@jupyter-widgets/base';
import { JupyterFrontEnd } from '@jupyterlab/application';

import { SecretsClient } from './api';
import { ChangeKind, CodeTarget } from './context';
import { SecretsManager, TabName } from './manager';
import {
  PANEL_CHANGED,
  PANEL_MODEL,
  PANEL_REFRESH,
  PANEL_VIEW,
  WIDGET_MODULE,
  WIDGET_MODULE_VERSION
} from './protocol';

let app: JupyterFrontEnd | null = null;
let client: SecretsClient | null = null;

/** Called once by the plugin: where snippets go, and the API client every view shares. */
export function configurePanels(frontEnd: JupyterFrontEnd, apiClient: SecretsClient): void {
  app = frontEnd;
  client = apiClient;
}

export class SecretsPanelModel extends DOMWidgetModel {
  static serializers: ISerializers = { ...DOMWidgetModel.serializers };

  defaults(): Backbone.ObjectHash {
    return {
      ...super.defaults(),
      _model_name: PANEL_MODEL,
      _model_module: WIDGET_MODULE,
      _model_module_version: WIDGET_MODULE_VERSION,
      _view_name: PANEL_VIEW,
      _view_module: WIDGET_MODULE,
      _view_module_version: WIDGET_MODULE_VERSION,
      tab: 'secrets',
      frontend: ''
    };
  }

  initialize(attributes: Backbone.ObjectHash, options: IBackboneModelOptions): void {
    super.initialize(attributes, options);
    this.on('msg:custom', (content: { action?: string }) => {
      if (content?.action === PANEL_REFRESH) {
        this.trigger('secrets:refresh');
      }
    });
    if (this.comm) {
      // Tell the kernel this front-end can draw the panel (else it shows a read-only table).
      this.set('frontend', `${WIDGET_MODULE} ${WIDGET_MODULE_VERSION}`);
      this.save_changes();
    }
  }

  /** Tell the kernel what changed: kind, name, action. Never a value. */
  notifyChanged(kind: ChangeKind, name: string, action: string): void {
    this.send({ event: PANEL_CHANGED, kind, name, action }, {});
  }
}

export class SecretsPanelView extends DOMWidgetView {
  manager: SecretsManager | null = null;

  render(): void {
    const model = this.model as SecretsPanelModel;
    this.el.classList.add('jp-secrets-panel');
    this.manager = new SecretsManager({
      client: client ?? new SecretsClient(),
      code: new CodeTarget(app),
      tab: model.get('tab') as TabName,
      changed: (kind, name, action) => model.notifyChanged(kind, name, action)
    });
    this.el.appendChild(this.manager.node);
    this.listenTo(model, 'secrets:refresh', () => void this.manager?.refresh());
    // Keys typed in the panel belong to its forms, not to the notebook's shortcuts.
    this.el.addEventListener('keydown', (event: KeyboardEvent) => {
      if ((event.target as HTMLElement).closest('input, textarea, select, button')) {
        event.stopPropagation();
      }
    });
  }

  remove(): void {
    this.manager?.dispose();
    this.manager = null;
    super.remove();
  }
}
