/**
 * The value-entry widget. Its model has no value attribute: the typed value lives only in
 * the view's <input>, goes from here to the server's REST API with the page's own
 * credentials, and the kernel hears back only "saved NAME version N" or the server's error.
 */
import {
  DOMWidgetModel,
  DOMWidgetView,
  IBackboneModelOptions,
  ISerializers
} from '@jupyter-widgets/base';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const MODULE_NAME = 'jupyter-secrets';
export const MODULE_VERSION = '0.1.0';
const API_PATH = 'api/secrets/v1/secrets';

/** What the kernel may ask: send the typed value (with metadata), or forget it. */
type KernelRequest =
  | {
      action: 'submit';
      method: 'POST' | 'PUT';
      name: string;
      fields?: { description?: string; allowed_hosts?: string[] };
    }
  | { action: 'clear' };

/** The only things the kernel is told: never the value. */
type KernelReply =
  | { event: 'saved'; name: string; version: number }
  | { event: 'error'; status: number; message: string }
  | { event: 'submit-requested' };

export class SecretValueModel extends DOMWidgetModel {
  static serializers: ISerializers = { ...DOMWidgetModel.serializers };

  /** The input the admin typed into last (several views of one model may exist). */
  source: HTMLInputElement | null = null;
  private busy = false;

  defaults(): Backbone.ObjectHash {
    return {
      ...super.defaults(),
      _model_name: 'SecretValueModel',
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      _view_name: 'SecretValueView',
      _view_module: MODULE_NAME,
      _view_module_version: MODULE_VERSION,
      placeholder: 'Secret value',
      disabled: false,
      frontend: ''
    };
  }

  initialize(attributes: Backbone.ObjectHash, options: IBackboneModelOptions): void {
    super.initialize(attributes, options);
    this.on('msg:custom', this.onKernelRequest, this);
    if (this.comm) {
      // Tell the kernel this front-end exists, so it does not fall back to a Password field.
      // (No comm: a model restored from saved notebook state, with no kernel to tell.)
      this.set('frontend', `${MODULE_NAME} ${MODULE_VERSION}`);
      this.save_changes();
    }
  }

  reply(content: KernelReply): void {
    this.send(content, {});
  }

  private onKernelRequest(content: KernelRequest): void {
    if (content.action === 'clear') {
      this.forget();
    } else if (content.action === 'submit') {
      void this.submit(content.method, content.name, content.fields ?? {});
    }
  }

  private forget(): void {
    this.source = null;
    this.trigger('secrets:clear');
  }

  private async submit(
    method: 'POST' | 'PUT',
    name: string,
    fields: Record<string, unknown>
  ): Promise<void> {
    const value = this.source?.value ?? '';
    if (this.busy) {
      return;
    }
    if (!value) {
      this.reply({ event: 'error', status: 0, message: 'Type the value first.' });
      return;
    }
    const settings = ServerConnection.makeSettings();
    const url =
      method === 'POST'
        ? URLExt.join(settings.baseUrl, API_PATH)
        : URLExt.join(settings.baseUrl, API_PATH, encodeURIComponent(name));
    const body = method === 'POST' ? { ...fields, name, value } : { value };
    this.busy = true;
    try {
      const response = await ServerConnection.makeRequest(
        url,
        {
          method,
          body: JSON.stringify(body),
          headers: { 'Content-Type': 'application/json' }
        },
        settings
      );
      const payload = await response.json().catch(() => ({}));
      if (!response.ok) {
        const message =
          typeof payload?.message === 'string' ? payload.message : response.statusText;
        this.reply({ event: 'error', status: response.status, message });
        return;
      }
      this.forget();
      this.reply({ event: 'saved', name: String(payload.name), version: Number(payload.version) });
    } catch (error) {
      this.reply({
        event: 'error',
        status: 0,
        message: `Could not reach the Jupyter server: ${(error as Error).message}`
      });
    } finally {
      this.busy = false;
    }
  }
}

export class SecretValueView extends DOMWidgetView {
  private input: HTMLInputElement | null = null;

  render(): void {
    const model = this.model as SecretValueModel;
    const input = document.createElement('input');
    input.type = 'password';
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.className = 'jp-secrets-value-input widget-input';
    input.setAttribute('aria-label', 'Secret value');
    input.addEventListener('input', () => {
      model.source = input;
    });
    input.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        model.source = input;
        model.reply({ event: 'submit-requested' });
      }
    });
    this.input = input;
    this.el.classList.add('jp-secrets-value', 'widget-inline-hbox');
    this.el.appendChild(input);
    this.listenTo(model, 'secrets:clear', () => {
      input.value = '';
    });
    this.listenTo(model, 'change:placeholder change:disabled', this.update);
    this.update();
  }

  update(): void {
    if (this.input) {
      this.input.placeholder = this.model.get('placeholder');
      this.input.disabled = this.model.get('disabled');
    }
  }

  remove(): void {
    const model = this.model as SecretValueModel;
    if (this.input && model.source === this.input) {
      model.source = null;
    }
    this.input = null;
    super.remove();
  }
}
