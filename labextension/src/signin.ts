/**
 * The secrets service's sign-in, drawn in a manager (the sidebar, each notebook panel): where
 * the service is, "Forget token", and, while a call waits for a login, the admin-token form
 * (standalone service) or the Sign in button that opens the Hub login window (JupyterHub).
 * It sits above the manager's tabs and touches nothing else, so open forms, typed fields and
 * filters stay as they are while a person signs in; the waiting call then goes again.
 */
import { button, clipped, h, uid } from './dom';
import { FormView, valueField } from './forms';
import { HubLogin, LoginState, ServiceLogin, TokenLogin } from './service';

export class SignInView {
  /** Goes in the manager's header: which service, and Forget for a token login. */
  readonly where: HTMLElement;
  /** Goes above the tabs: shown while a call waits for a login. */
  readonly node: HTMLElement;
  private readonly forgetButton: HTMLButtonElement | null = null;
  private readonly note = h('p', { class: 'jp-secrets-intro', role: 'status', 'aria-live': 'polite' });
  private form: FormView | null = null;
  private hubButtons: HTMLElement | null = null;
  private returnFocus: HTMLElement | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly login: ServiceLogin,
    private readonly host: HTMLElement,
    onForget: () => void
  ) {
    if (login instanceof TokenLogin) {
      this.forgetButton = button(
        'Forget token',
        () => {
          login.forget();
          onForget();
        },
        {
          'aria-label': 'Forget the admin token in this browser tab',
          title: 'Remove the admin token from this browser tab (sessionStorage)'
        }
      );
    }
    this.where = h(
      'span',
      { class: 'jp-secrets-where' },
      h('span', { class: 'jp-secrets-where-label' }, 'Secrets service:'),
      clipped(login.label, 'jp-secrets-service-url'),
      this.forgetButton
    );
    this.node = h(
      'section',
      { class: 'jp-secrets-signin', 'aria-label': 'Sign in to the secrets service', hidden: true },
      this.note
    );
    this.unsubscribe = login.subscribe(state => this.show(state));
  }

  private show(state: LoginState): void {
    if (this.forgetButton) {
      this.forgetButton.hidden = !(this.login as TokenLogin).signedIn;
    }
    const wasHidden = this.node.hidden;
    if (state.step === 'idle') {
      this.close();
      return;
    }
    this.note.textContent = state.note;
    this.node.hidden = false;
    if (this.login instanceof TokenLogin) {
      this.tokenForm(this.login);
    } else if (this.login instanceof HubLogin) {
      this.hubPrompt(this.login, state);
    }
    if (wasHidden) {
      this.takeFocus();
    }
  }

  /** Move focus into the prompt if this manager had it (or nothing had), to come back later. */
  private takeFocus(): void {
    const active = document.activeElement as HTMLElement | null;
    if (active && active !== document.body && !this.host.contains(active)) {
      return; // the person is working elsewhere (another manager, the notebook)
    }
    this.returnFocus = active && active !== document.body ? active : null;
    if (this.form) {
      this.form.focus();
    } else {
      this.hubButtons?.querySelector<HTMLElement>('button')?.focus();
    }
  }

  private tokenForm(login: TokenLogin): void {
    if (this.form) {
      return; // keep what is typed while the state changes
    }
    const token = valueField('Admin token');
    const hintId = uid('hint');
    token.input.setAttribute('aria-describedby', hintId);
    token.row.appendChild(
      h(
        'small',
        { id: hintId, class: 'jp-secrets-hint' },
        "The service's JUPYTER_SECRETS_ADMIN_TOKEN. Kept in this browser tab only (until Forget " +
          'token or the tab closes) and sent only to the service.'
      )
    );
    this.form = new FormView({
      title: 'Sign in to the secrets service',
      intro: this.note,
      fields: [token.row],
      save: 'Sign in',
      onCancel: () => login.cancel(),
      onSave: async () => {
        const typed = token.input.value;
        token.input.value = '';
        await login.submit(typed);
      }
    });
    this.node.appendChild(this.form.node);
  }

  private hubPrompt(login: HubLogin, state: LoginState): void {
    if (!this.hubButtons) {
      this.hubButtons = h(
        'div',
        { class: 'jp-secrets-form-buttons' },
        button('Sign in', () => login.open(), {
          class: 'jp-secrets-button jp-mod-accept',
          'aria-label': 'Sign in to the secrets service',
          title: `Open ${login.loginUrl} in a small window`
        }),
        button('Cancel', () => login.cancel())
      );
      this.node.appendChild(this.hubButtons);
    }
    this.hubButtons.dataset.step = state.step;
  }

  private close(): void {
    const hadFocus = this.node.contains(document.activeElement);
    this.form?.dispose();
    this.form = null;
    this.node.prepend(this.note);
    this.hubButtons?.remove();
    this.hubButtons = null;
    this.node.hidden = true;
    this.note.textContent = '';
    const back = this.returnFocus;
    this.returnFocus = null;
    if (hadFocus && back?.isConnected) {
      back.focus();
    }
  }

  dispose(): void {
    this.unsubscribe();
    this.close();
    this.where.remove();
    this.node.remove();
  }
}
