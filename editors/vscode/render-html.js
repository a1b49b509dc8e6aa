#!/usr/bin/env node
// Tokenizes a .tdl file with syntaxes/tdl.tmLanguage.json (through vscode-textmate and
// vscode-oniguruma, the engine VS Code itself uses) and writes an HTML page with coloured
// spans, using colours close to VS Code's "Dark+" theme. Hovering a span shows its scopes.
//
//   node render-html.js INPUT.tdl [OUTPUT.html]   (default output: INPUT.html next to it)
//   node render-html.js --tokens INPUT.tdl        (print every token and its scopes instead)
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const GRAMMAR = path.join(__dirname, 'syntaxes', 'tdl.tmLanguage.json');

// Scope prefix -> colour. The innermost scope of a token that matches a prefix decides its
// colour; among prefixes, the longest one wins (like a TextMate theme's selectors).
const THEME = {
  'comment': '#6A9955',
  'string': '#CE9178',
  'constant.character.escape': '#D7BA7D',
  'constant.numeric': '#B5CEA8',
  'constant.language': '#569CD6',
  'keyword.control': '#C586C0',
  'keyword.operator': '#D4D4D4',
  'keyword.operator.logical': '#569CD6',
  'storage.type': '#569CD6',
  'storage.type.function.graph': '#C586C0',
  'storage.type.string': '#569CD6',
  'storage.type.format': '#569CD6',
  'entity.name.function': '#DCDCAA',
  'support.function': '#DCDCAA',
  'support.type': '#4EC9B0',
  'entity.name.type': '#4EC9B0',
  'entity.name.namespace': '#4EC9B0',
  'support.variable': '#9CDCFE',
  'variable': '#9CDCFE',
  'variable.other.constant': '#4FC1FF',
  'punctuation.section.embedded': '#569CD6',
  'invalid': '#F44747',
};
const FOREGROUND = '#D4D4D4';
const BACKGROUND = '#1E1E1E';

function colourOf(scopes) {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const scope = scopes[i];
    let best = null;
    for (const prefix of Object.keys(THEME)) {
      if ((scope === prefix || scope.startsWith(prefix + '.')) &&
          (best === null || prefix.length > best.length)) {
        best = prefix;
      }
    }
    if (best !== null) return THEME[best];
  }
  return null;
}

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm')).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName !== 'source.tdl') return null;
      return vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, 'utf8'), GRAMMAR);
    },
  });
  return registry.loadGrammar('source.tdl');
}

function tokenize(grammar, text) {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let stack = vsctm.INITIAL;
  return lines.map((line) => {
    const r = grammar.tokenizeLine(line, stack);
    stack = r.ruleStack;
    return r.tokens.map((t) => ({
      text: line.substring(t.startIndex, t.endIndex),
      start: t.startIndex,
      scopes: t.scopes,
    }));
  });
}

const escapeHtml = (s) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function toHtml(title, lines) {
  const body = lines.map((tokens, n) => {
    const spans = tokens.map((t) => {
      const colour = colourOf(t.scopes);
      const text = escapeHtml(t.text);
      if (!colour) return text;
      const scopes = escapeHtml(t.scopes.slice(1).join(' '));
      return `<span style="color:${colour}" title="${scopes}">${text}</span>`;
    }).join('');
    return `<span class="ln">${String(n + 1).padStart(3)}</span>${spans}`;
  }).join('\n');
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { background: ${BACKGROUND}; color: ${FOREGROUND}; margin: 0; padding: 12px; }
h1 { font: 14px sans-serif; color: #999; margin: 0 0 8px 0; }
pre { font: 14px/1.45 "DejaVu Sans Mono", Consolas, monospace; margin: 0; }
.ln { color: #858585; margin-right: 16px; user-select: none; }
</style></head>
<body><h1>${escapeHtml(title)}</h1><pre>${body}</pre></body></html>
`;
}

async function main() {
  const argv = process.argv.slice(2);
  const dump = argv[0] === '--tokens';
  if (dump) argv.shift();
  if (argv.length < 1 || argv.length > 2) {
    console.error('usage: node render-html.js [--tokens] INPUT.tdl [OUTPUT.html]');
    process.exit(2);
  }
  const input = argv[0];
  const grammar = await loadGrammar();
  const lines = tokenize(grammar, fs.readFileSync(input, 'utf8'));
  if (dump) {
    lines.forEach((tokens, n) => {
      for (const t of tokens) {
        console.log(`${n + 1}:${t.start}\t${JSON.stringify(t.text)}\t${t.scopes.slice(1).join(' ')}`);
      }
    });
    return;
  }
  const output = argv[1] || input.replace(/\.tdl$/, '') + '.html';
  fs.writeFileSync(output, toHtml(path.basename(input), lines));
  console.log(`wrote ${output}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
