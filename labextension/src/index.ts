/** Registers the value-entry widget with ipywidgets' manager (JupyterLab 4, Notebook 7). */
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import {
  MODULE_NAME,
  MODULE_VERSION,
  SecretValueModel,
  SecretValueView
} from './widget';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-secrets:value-entry',
  description: 'Secret value entry that sends the value from the browser to the server.',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (_app: JupyterFrontEnd, registry: IJupyterWidgetRegistry): void => {
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: { SecretValueModel, SecretValueView }
    });
  }
};

export default plugin;
