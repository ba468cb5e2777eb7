import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkDate, exactSum, expiresAt, tenantsAdd } from './tenants.js';
import { adminTarget } from './admin-client.js';
import { gatewayUrl, UsageError } from './common.js';

describe('usage report helpers', () => {
  it('totals are exact: no float noise, no rounding', () => {
    assert.equal(String(exactSum([0.0001, 0.00005915])), '0.00015915');
    assert.equal(exactSum([0.1, 0.2]), 0.3);
    assert.equal(exactSum([0.00000001, 0.00000002]), 0.00000003);
    assert.equal(exactSum([]), 0);
  });

  it('dates are checked in the words the user typed', () => {
    assert.throws(
      () => checkDate('--month', '2026-13', true),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(
          e.message,
          '--month 2026-13: there is no month 13 (months are 01 to 12); use YYYY-MM, e.g. 2026-11',
        );
        return true;
      },
    );
    assert.throws(() => checkDate('--month', 'November', true), /--month November: use YYYY-MM/);
    assert.throws(() => checkDate('--month', '2026-11-02', true), /use YYYY-MM, e.g. 2026-11/);
    assert.throws(
      () => checkDate('--from', '2026-02-30'),
      /--from 2026-02-30: 2026-02 has no day 30 \(it has 28 days\)/,
    );
    assert.doesNotThrow(() => checkDate('--from', '2028-02-29'));
    assert.doesNotThrow(() => checkDate('--to', '2026-12'));
    assert.doesNotThrow(() => checkDate('--month', '2026-01', true));
  });
});

describe('admin command arguments', () => {
  it('a gateway URL without a scheme is taken as http://; another scheme is a usage error', () => {
    assert.equal(gatewayUrl('--url', '127.0.0.1:18080'), 'http://127.0.0.1:18080');
    assert.equal(gatewayUrl('--url', 'localhost:8080/'), 'http://localhost:8080');
    assert.equal(gatewayUrl('--url', 'https://gw.example.com/'), 'https://gw.example.com');
    assert.equal(gatewayUrl('--url', 'HTTP://127.0.0.1:8080'), 'HTTP://127.0.0.1:8080');
    assert.throws(
      () => gatewayUrl('--url', 'ftp://127.0.0.1:8080'),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message ===
          '--url ftp://127.0.0.1:8080: use an http:// or https:// URL, e.g. http://127.0.0.1:8080',
    );
    assert.throws(() => gatewayUrl('--target', 'not a url'), /--target not a url: use an http/);
    const env = { PORTICO_ADMIN_TOKEN: 't', PORTICO_URL: 'gw.internal:8080' };
    const io = { env, out: () => undefined, err: () => undefined };
    assert.equal(adminTarget({}, io).url, 'http://gw.internal:8080');
    assert.equal(adminTarget({ url: '127.0.0.1:18080' }, io).url, 'http://127.0.0.1:18080');
  });

  it('--expires takes a date (the key stops working at 00:00 UTC that day) or an ISO time with an offset', () => {
    assert.equal(expiresAt('2027-01-01'), '2027-01-01T00:00:00Z');
    assert.equal(expiresAt('2027-01-01T12:30:00Z'), '2027-01-01T12:30:00Z');
    assert.equal(expiresAt('2027-01-01T12:30:00+02:00'), '2027-01-01T12:30:00+02:00');
    assert.throws(() => expiresAt('2027-02-30'), /--expires 2027-02-30: 2027-02 has no day 30/);
    for (const bad of ['2027-01-01T12:30:00', 'next year', '2027-01'])
      assert.throws(
        () => expiresAt(bad),
        (e: unknown) =>
          e instanceof UsageError &&
          e.message ===
            `--expires ${bad}: use a date YYYY-MM-DD (the key stops working at 00:00 UTC that day) or an ISO 8601 time with Z or an offset, e.g. 2027-01-01T00:00:00Z`,
      );
  });
});

describe('tenants add', () => {
  it('--prompt-file that cannot be read names the flag and the file (a usage error)', async () => {
    const io = { env: {}, out: () => undefined, err: () => undefined };
    await assert.rejects(
      tenantsAdd(
        'initech',
        { promptFile: '/nonexistent/prompt.txt', adminToken: 't', url: 'http://127.0.0.1:1' },
        io,
      ),
      (e: unknown) =>
        e instanceof UsageError &&
        /^--prompt-file \/nonexistent\/prompt\.txt: cannot read it \(ENOENT: no such file or directory/.test(
          e.message,
        ),
    );
  });
});
