// Preact sets `value` and `checked` again at every render of a field whenever the DOM differs, so a
// field given one without an input handler loses what the user typed at the next live update (the
// SSH port of "Add machine" went back to 22 while a node reported its hardware). Uncontrolled
// fields take defaultValue / defaultChecked (an option: selected) instead; controlled ones follow
// every keystroke (onInput; onChange only where it fires at once: a select, a checkbox, a radio).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SOURCES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');
const FIELDS = new Set(['input', 'select', 'textarea']);

/** `file:line <tag>` of each field that sets value or checked with no onInput / onChange. */
function resetOnRender(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isJsxSelfClosingElement(node) || ts.isJsxOpeningElement(node)) && FIELDS.has(node.tagName.getText(source))) {
      const attributes = node.attributes.properties.filter(ts.isJsxAttribute);
      const names = attributes.map((a) => a.name.getText(source));
      const type = attributes.find((a) => a.name.getText(source) === 'type')?.initializer?.getText(source).replace(/['"]/g, '');
      // Without preact/compat, onChange fires on commit (blur) for text: typing needs onInput.
      const changesAtOnce = node.tagName.getText(source) === 'select' || type === 'checkbox' || type === 'radio';
      const controlled = names.includes('onInput') || (names.includes('onChange') && changesAtOnce);
      if (!controlled && (names.includes('value') || names.includes('checked'))) {
        found.push(`${path.basename(fileName)}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1} <${node.tagName.getText(source)}>`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function tsxFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? tsxFiles(full) : e.name.endsWith('.tsx') ? [full] : [];
  });
}

describe('form fields keep what the user typed across renders', () => {
  it('finds a field that would be reset, and leaves controlled and default-valued ones', () => {
    const sample = [
      'const a = <input name="port" value="22" />;',
      'const b = <label><input type="checkbox" checked={on} /></label>;',
      'const c = <select value={role} onChange={(e) => set(e)}><option>x</option></select>;',
      'const d = <input name="port" defaultValue="22" />;',
      'const e = <input name="name" value={name} onChange={(e) => set(e)} />;',
      'const f = <input name="name" value={name} onInput={(e) => set(e)} />;',
    ].join('\n');
    expect(resetOnRender('sample.tsx', sample)).toEqual(['sample.tsx:1 <input>', 'sample.tsx:2 <input>', 'sample.tsx:5 <input>']);
  });

  it('no field of the dashboard sets value or checked without handling input', () => {
    const files = tsxFiles(SOURCES);
    expect(files.length).toBeGreaterThan(20);
    expect(files.flatMap((f) => resetOnRender(f, fs.readFileSync(f, 'utf8')))).toEqual([]);
  });
});
