import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { prettyLine } from './logger.js';

describe('readable log lines (stdout is a terminal)', () => {
  it('time, level, message, then the fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 11, 6, 4, 5, 6),
      pid: 1,
      hostname: 'h',
      service: 'portico',
      backend: 'qwen-engine',
      reason: 'cannot download x (offline?)',
      msg: 'engine qwen-engine has no model yet',
    });
    assert.equal(
      prettyLine(line),
      '04:05:06 WARN  engine qwen-engine has no model yet  backend=qwen-engine reason="cannot download x (offline?)"\n',
    );
    assert.ok(prettyLine(line, true).includes('\u001b[33mWARN \u001b[0m'));
    assert.equal(prettyLine('not json\n'), 'not json\n');
  });
});
