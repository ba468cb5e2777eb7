import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeJsonFault, findJsonFault } from './json-error.js';

describe('findJsonFault', () => {
  it('names the place of the fault, never the text around it', () => {
    const body =
      '{"model":"default","messages":[{"role":"user","content": my SSN is 078-05-1120 please keep it}]}';
    const f = findJsonFault(body);
    assert.ok(f);
    assert.equal(f.offset, body.indexOf('my SSN'));
    assert.equal(f.line, 1);
    assert.equal(f.column, body.indexOf('my SSN') + 1);
    const msg = describeJsonFault(body);
    assert.doesNotMatch(msg, /SSN|078|content|please/);
    assert.match(msg, /at line 1, column 58$/);
  });

  it('counts lines and columns', () => {
    const f = findJsonFault('{\n  "a": 1,\n  "b": Patient\n}');
    assert.deepEqual(f && { line: f.line, column: f.column }, { line: 3, column: 8 });
  });

  it('kinds of fault', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"a":1', /ends before/],
      ['{"a":"x', /ends before/],
      ['tr', /ends before/],
      ['{"a":"x\u0001"}', /control character/],
      ['{"a":"\\q"}', /invalid escape/],
      ['{"a":"\\u12G4"}', /four hex digits/],
      ['{a:1}', /property name in double quotes/],
      ['{"a" 1}', /":" after a property name/],
      ['{"a":1 "b":2}', /"," or "}"/],
      ['[1 2]', /"," or "]"/],
      ['[1,]', /unexpected character where a value should start/],
      ['{"a":1,}', /property name in double quotes/],
      ['{"a":1}x', /after the JSON value/],
      ['01', /after the JSON value/],
      ['-x', /malformed number/],
      ['1.e5', /malformed number/],
      ['1e+', /ends before/],
      ['True', /unexpected character/],
      ['', /ends before/],
    ];
    for (const [text, want] of cases) {
      assert.throws(() => JSON.parse(text), SyntaxError, text);
      const f = findJsonFault(text);
      assert.ok(f, `a fault in ${JSON.stringify(text)}`);
      assert.match(f.problem, want, JSON.stringify(text));
    }
  });

  it('finds no fault in valid JSON, at any depth', () => {
    for (const text of ['{}', '[]', ' {"a":[1,-2.5e-3,true,false,null,"\\u00e9\\n"],"b":{}} ', '"x"', '0'])
      assert.equal(findJsonFault(text), undefined, text);
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    assert.equal(findJsonFault(deep), undefined);
    assert.ok(findJsonFault('['.repeat(200_000)));
  });

  it('agrees with JSON.parse on whether a text is valid (random mutations)', () => {
    const base =
      '{"model":"m","messages":[{"role":"user","content":"hi \\"x\\" \\u00e9"}],"n":-1.5e3,"s":true,"t":null}';
    const alphabet = '{}[]",:\\ 0123456789.-+eEtrufalsn\n\tu\u0001x';
    let seed = 42;
    const rand = (k: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % k;
    };
    for (let round = 0; round < 5000; round++) {
      const chars = [...base];
      for (let m = 0; m <= rand(3); m++) {
        const at = rand(chars.length + 1);
        const op = rand(3);
        const ch = alphabet.charAt(rand(alphabet.length));
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, ch);
        else chars[at] = ch;
      }
      const text = chars.join('');
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      assert.equal(findJsonFault(text) === undefined, valid, JSON.stringify(text));
    }
  });
});
