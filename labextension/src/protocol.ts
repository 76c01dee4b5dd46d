/**
 * The wire protocol, mirrored from jupyter_secrets/protocol.py (the source of truth).
 * tests/test_protocol_mirror.py reads both files and fails when they disagree, so change
 * a value there first and then here.
 */

/** REST API root below a server's base URL (a Jupyter server or the secrets service). */
export const API_PATH = 'api/secrets/v1';

/** Marks responses that are the proxy's own errors (upstream errors pass through unmarked). */
export const ERROR_HEADER = 'X-Jupyter-Secrets-Error';
/** Milliseconds the proxy spent before the upstream call left. */
export const OVERHEAD_HEADER = 'X-Jupyter-Secrets-Overhead-Ms';

/** The panel widget's comm messages. Kernel -> front-end: reload what you show. */
export const PANEL_REFRESH = 'refresh';
/** Front-end -> kernel, after the browser changed something (names only, never a value). */
export const PANEL_CHANGED = 'changed';

/** The front-end module and classes that render the panel widget. */
export const WIDGET_MODULE = 'jupyter-secrets';
export const WIDGET_MODULE_VERSION = '0.1.0';
export const PANEL_MODEL = 'SecretsPanelModel';
export const PANEL_VIEW = 'SecretsPanelView';
