// TDL language client: starts `tdl lsp` (stdio) for .tdl files.
// Setting `tdl.server.path` names the tdl executable (default "tdl", found on PATH);
// `tdl.server.enabled` turns the server off (highlighting and snippets still work).
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

function createClient() {
  const config = vscode.workspace.getConfiguration('tdl');
  const command = config.get('server.path') || 'tdl';
  const run = { command, args: ['lsp'], transport: TransportKind.stdio };
  const serverOptions = { run, debug: run };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'tdl' },
      { scheme: 'untitled', language: 'tdl' },
    ],
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/*.tdl'),
    },
  };
  // The id 'tdl' makes the `tdl.trace.server` setting apply to this client.
  return new LanguageClient('tdl', 'TDL Language Server', serverOptions, clientOptions);
}

async function startClient() {
  if (!vscode.workspace.getConfiguration('tdl').get('server.enabled', true)) return;
  client = createClient();
  try {
    await client.start();
  } catch (err) {
    const path = vscode.workspace.getConfiguration('tdl').get('server.path') || 'tdl';
    vscode.window.showErrorMessage(
      `TDL: could not start the language server (\`${path} lsp\`): ${err && err.message ? err.message : err}. ` +
      'Set "tdl.server.path" to the tdl executable.');
    client = undefined;
  }
}

async function stopClient() {
  if (!client) return;
  const c = client;
  client = undefined;
  try {
    await c.stop();
  } catch (_) {
    // The server may already be gone.
  }
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('tdl.restartServer', async () => {
      await stopClient();
      await startClient();
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('tdl.server')) {
        await stopClient();
        await startClient();
      }
    }),
  );
  await startClient();
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate };
