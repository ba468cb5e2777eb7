import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redactor, luhnValid } from './redact.js';

test('luhn', () => {
  assert.ok(luhnValid('4111111111111111'));
  assert.ok(luhnValid('378282246310005'));
  assert.ok(!luhnValid('4111111111111112'));
});

test('email, phone, SSN and Luhn-valid card numbers are redacted; look-alikes are kept', () => {
  const r = new Redactor();
  const text =
    'Mail jane.doe+ops@example.co.uk or call +1 (415) 555-0134 / 020 7946 0958; SSN 123-45-6789; ' +
    'card 4111 1111 1111 1111 and 5500-0000-0000-0004. Order 4111111111111112 and build 2026-11-22 stay.';
  const out = r.redact(text);
  assert.doesNotMatch(out, /jane\.doe/);
  assert.doesNotMatch(out, /555-0134/);
  assert.doesNotMatch(out, /7946 0958/);
  assert.doesNotMatch(out, /123-45-6789/);
  assert.doesNotMatch(out, /4111 1111 1111 1111/);
  assert.doesNotMatch(out, /5500-0000-0000-0004/);
  for (const tag of ['EMAIL', 'PHONE', 'SSN', 'CARD']) assert.match(out, new RegExp(`\\[REDACTED_${tag}\\]`));
  assert.match(out, /4111111111111112/, 'not Luhn-valid: not a card');
  assert.match(out, /2026-11-22/, 'dates are not phone numbers');
});

test('configured patterns', () => {
  const r = new Redactor([{ name: 'EMPLOYEE_ID', regex: 'EMP-\\d{6}' }]);
  assert.equal(r.redact('ask EMP-123456 today'), 'ask [REDACTED_EMPLOYEE_ID] today');
});

test('a number or address on its own line is redacted, also in JSON text held in a string', () => {
  const r = new Redactor();
  const lines = 'Details:\n123-45-6789\n+1 415 555 0134\t4111 1111 1111 1111\r\njane@example.com';
  const out = r.redact(lines);
  for (const tag of ['SSN', 'PHONE', 'CARD', 'EMAIL']) assert.match(out, new RegExp(`\\[REDACTED_${tag}\\]`));
  // Tool-call arguments are JSON text: their newlines are the two characters `\n`.
  const args = r.redact(JSON.stringify({ note: lines }));
  assert.doesNotMatch(args, /123-45-6789|555 0134|4111 1111|jane@/);
  assert.deepEqual(JSON.parse(args), { note: out }, 'the escapes are kept: still valid JSON');
});

test('redactJson: every string and key of a parsed body, each as the text it is', () => {
  const r = new Redactor();
  const body = {
    model: 'default',
    messages: [{ role: 'user', content: 'card:\n4111 1111 1111 1111\nssn:\t123-45-6789' }],
    metadata: { 'jane@example.com': 'owner' },
    n: 2,
    stop: null,
  };
  const out = r.redactJson(body);
  assert.doesNotMatch(out, /4111|123-45-6789|jane@/);
  assert.deepEqual(JSON.parse(out), {
    model: 'default',
    messages: [{ role: 'user', content: 'card:\n[REDACTED_CARD]\nssn:\t[REDACTED_SSN]' }],
    metadata: { '[REDACTED_EMAIL]': 'owner' },
    n: 2,
    stop: null,
  });
  assert.equal(r.redactJson({ a: 'no digits here' }), '{"a":"no digits here"}');
  const custom = new Redactor([{ name: 'CODENAME', regex: '^Project [A-Z]+$' }]);
  assert.equal(
    custom.redactJson({ a: 'Project X' }),
    '{"a":"[REDACTED_CODENAME]"}',
    'anchors see the string',
  );
});
