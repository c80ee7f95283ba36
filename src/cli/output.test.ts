import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable, renderVertical } from './output.js';
import { jsonLineDiff } from './diff.js';

describe('output', () => {
  it('renders aligned tables with upper-cased headers and no trailing spaces', () => {
    const text = renderTable(['ID', 'Name', 'Last Updated'], [['abc', 'x', '2024'], ['d', 'longer-name', undefined]]);
    assert.equal(text, [
      'ID   NAME         LAST UPDATED',
      'abc  x            2024',
      'd    longer-name',
      '',
    ].join('\n'));
  });

  it('renders a title and flattens newlines inside cells', () => {
    assert.equal(renderTable(['A'], [['one\ntwo']], 'Title'), 'Title\nA\none two\n');
  });

  it('renders vertical key/value blocks', () => {
    assert.equal(renderVertical([['ID', 'abc'], ['Private IP', 'fdaa::2'], ['Empty', '']], 'VM'), 'VM\n  ID         = abc\n  Private IP = fdaa::2\n  Empty      =\n');
  });

  it('diffs JSON by lines', () => {
    assert.deepEqual(jsonLineDiff({ image: 'a', env: { X: '1' } }, { image: 'b', env: { X: '1' } }), ['-  "image": "a",', '+  "image": "b",']);
    assert.deepEqual(jsonLineDiff({ a: 1 }, { a: 1 }), []);
  });
});
