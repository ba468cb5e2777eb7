/**
 * Built-in prompt templates, one generator per category. Each draws from small word banks with the
 * seeded PRNG and attaches an expected-answer check that a correct answer should pass without
 * being tied to one exact wording.
 */
import type { Prng } from './prng.js';
import type { BuiltinCategory, Expectation } from './types.js';

export interface GeneratedPrompt {
  prompt: string;
  max_tokens: number;
  expect: Expectation | null;
}

const TERMS: ReadonlyArray<{ term: string; keywords: string[] }> = [
  { term: 'machine learning', keywords: ['data', 'learn', 'pattern', 'model'] },
  { term: 'a neural network', keywords: ['neuron', 'layer', 'weight', 'node'] },
  { term: 'quantization', keywords: ['precision', 'bit', 'reduc', 'integer'] },
  { term: 'a transformer', keywords: ['attention', 'sequence', 'token', 'encoder', 'decoder'] },
  { term: 'LoRA fine-tuning', keywords: ['low-rank', 'low rank', 'adapter', 'matri', 'parameter'] },
  { term: 'a tokenizer', keywords: ['token', 'text', 'split', 'subword'] },
  { term: 'an embedding', keywords: ['vector', 'dimension', 'represent', 'numer'] },
  { term: 'a load balancer', keywords: ['traffic', 'server', 'distribut', 'request'] },
  { term: 'a rate limiter', keywords: ['request', 'limit', 'rate', 'throttl'] },
  { term: 'a circuit breaker', keywords: ['fail', 'open', 'trip', 'call'] },
  { term: 'a database index', keywords: ['lookup', 'search', 'query', 'faster', 'speed'] },
  { term: 'latency', keywords: ['time', 'delay', 'respon'] },
  { term: 'throughput', keywords: ['rate', 'per second', 'amount', 'volume'] },
  { term: 'a Kubernetes namespace', keywords: ['isolat', 'resource', 'cluster', 'scope'] },
  { term: 'overfitting', keywords: ['training', 'generaliz', 'noise', 'unseen'] },
  { term: 'gradient descent', keywords: ['gradient', 'minimi', 'loss', 'step'] },
];

const DEFINITION_FORMS = [
  'What is {x}?',
  'Define {x} in one or two sentences.',
  'In plain words, what is {x}?',
  'Give a short definition of {x}.',
];

const TOPICS: ReadonlyArray<{ topic: string; keywords: string[] }> = [
  {
    topic: 'how the transformer architecture uses self-attention',
    keywords: ['attention', 'token', 'weight'],
  },
  { topic: 'why quantized models run faster on GPUs', keywords: ['memory', 'bandwidth', 'precision', 'bit'] },
  { topic: 'how HTTP keep-alive reduces latency', keywords: ['connection', 'handshake', 'reuse', 'tcp'] },
  { topic: 'why caches need an eviction policy', keywords: ['memory', 'evict', 'lru', 'space', 'capacity'] },
  {
    topic: 'how retries with exponential backoff avoid overload',
    keywords: ['wait', 'backoff', 'delay', 'retry'],
  },
  { topic: 'how a KV cache speeds up text generation', keywords: ['key', 'value', 'recompute', 'token'] },
  {
    topic: 'what a p99 latency tells you that an average does not',
    keywords: ['tail', 'percent', 'slow', 'outlier'],
  },
  {
    topic: 'how A/B testing compares two model variants',
    keywords: ['traffic', 'split', 'variant', 'compar', 'metric'],
  },
  {
    topic: 'why multi-tenant systems need quotas',
    keywords: ['fair', 'resource', 'tenant', 'noisy', 'limit'],
  },
  {
    topic: 'how continuous batching improves GPU utilization',
    keywords: ['batch', 'request', 'gpu', 'utiliz'],
  },
];

const EXPLANATION_FORMS = [
  'Explain {x}.',
  'Explain {x} to a new engineer in a short paragraph.',
  'Briefly explain {x}, with one concrete example.',
];

const CODE_TASKS: ReadonlyArray<{ lang: string; name: string; task: string; regex: string }> = [
  {
    lang: 'Python',
    name: 'is_prime',
    task: 'returns True when n is a prime number',
    regex: 'def\\s+is_prime\\s*\\(',
  },
  {
    lang: 'Python',
    name: 'reverse_words',
    task: 'reverses the order of words in a sentence',
    regex: 'def\\s+reverse_words\\s*\\(',
  },
  {
    lang: 'Python',
    name: 'fizzbuzz',
    task: 'returns the FizzBuzz list from 1 to n',
    regex: 'def\\s+fizzbuzz\\s*\\(',
  },
  {
    lang: 'JavaScript',
    name: 'isPalindrome',
    task: 'checks whether a string is a palindrome',
    regex: '(function\\s+isPalindrome|isPalindrome\\s*=)',
  },
  {
    lang: 'JavaScript',
    name: 'chunk',
    task: 'splits an array into chunks of a given size',
    regex: '(function\\s+chunk|chunk\\s*=)',
  },
  {
    lang: 'TypeScript',
    name: 'median',
    task: 'returns the median of an array of numbers',
    regex: '(function\\s+median|median\\s*=)',
  },
  { lang: 'Go', name: 'Sum', task: 'returns the sum of a slice of ints', regex: 'func\\s+Sum\\s*\\(' },
  { lang: 'Rust', name: 'factorial', task: 'returns n factorial as u64', regex: 'fn\\s+factorial\\s*\\(' },
];

const SUMMARY_SUBJECTS: ReadonlyArray<{ subject: string; keyword: string; facts: string[] }> = [
  {
    subject: 'The gateway',
    keyword: 'gateway',
    facts: [
      'routes requests from many tenants to several model backends',
      'checks each API key before a request is admitted',
      'keeps a ledger of tokens used by every tenant',
      'retries a failed upstream call once before giving up',
      'exposes Prometheus metrics for latency and errors',
    ],
  },
  {
    subject: 'The inference fleet',
    keyword: 'fleet',
    facts: [
      'runs four model variants on dedicated GPU nodes',
      'scales out when the request queue grows',
      'serves a quantized variant next to the full-precision baseline',
      'reports time to first token for every request',
      'drains a node before it is replaced',
    ],
  },
  {
    subject: 'The evaluation team',
    keyword: 'evaluation',
    facts: [
      'scores model answers with a judge model',
      'keeps a fixed promptset for every release',
      'compares the pass rate of each candidate with the baseline',
      'blocks a release when quality drops by more than two points',
      'publishes a report after every run',
    ],
  },
  {
    subject: 'The billing service',
    keyword: 'billing',
    facts: [
      'reads the usage ledger every hour',
      'prices prompt and completion tokens separately',
      'sends each tenant a monthly invoice',
      'flags tenants that exceed their budget',
      'keeps invoices for seven years',
    ],
  },
];

const SQL_TASKS: ReadonlyArray<{ request: string; regex: string }> = [
  {
    request: 'returns the ten customers with the highest total order amount',
    regex: 'select[\\s\\S]+from[\\s\\S]+order\\s+by[\\s\\S]+limit\\s+10',
  },
  {
    request: 'counts the orders placed in 2024',
    regex: 'select[\\s\\S]*count\\s*\\([\\s\\S]+from\\s+orders',
  },
  {
    request: 'lists customers who have never placed an order',
    regex: 'select[\\s\\S]+from[\\s\\S]+(not\\s+exists|not\\s+in|left\\s+join)',
  },
  {
    request: 'returns the average order amount per country',
    regex: 'select[\\s\\S]*avg\\s*\\([\\s\\S]+group\\s+by',
  },
  {
    request: 'returns the total amount of orders per month',
    regex: 'select[\\s\\S]*sum\\s*\\([\\s\\S]+group\\s+by',
  },
];

const SQL_SCHEMA =
  'customers(id INTEGER PRIMARY KEY, name TEXT, country TEXT)\norders(id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount NUMERIC, placed_at DATE)';

function fill(form: string, x: string): string {
  return form.replace('{x}', x);
}

function definition(rng: Prng): GeneratedPrompt {
  const t = rng.pick(TERMS);
  return {
    prompt: fill(rng.pick(DEFINITION_FORMS), t.term),
    max_tokens: 96,
    expect: { contains_any: t.keywords },
  };
}

function explanation(rng: Prng): GeneratedPrompt {
  const t = rng.pick(TOPICS);
  return {
    prompt: fill(rng.pick(EXPLANATION_FORMS), t.topic),
    max_tokens: 256,
    expect: { contains_any: t.keywords },
  };
}

function code(rng: Prng): GeneratedPrompt {
  const t = rng.pick(CODE_TASKS);
  return {
    prompt: `Write a ${t.lang} function named ${t.name} that ${t.task}. Reply with the code only.`,
    max_tokens: 256,
    expect: { regex: t.regex },
  };
}

function summarization(rng: Prng): GeneratedPrompt {
  const s = rng.pick(SUMMARY_SUBJECTS);
  const facts = rng.sample(s.facts, 3 + rng.int(3));
  const passage = facts.map((f, i) => `${i === 0 ? s.subject : 'It'} ${f}.`).join(' ');
  if (rng.next() < 0.3) {
    return {
      prompt: `Summarize the text below. Reply with a JSON object with the keys "title" and "summary" only.\n\n${passage}`,
      max_tokens: 160,
      expect: { json: { required: ['title', 'summary'] } },
    };
  }
  return {
    prompt: `Summarize the following text in one sentence.\n\n${passage}`,
    max_tokens: 96,
    expect: { contains_any: [s.keyword] },
  };
}

function textToSql(rng: Prng): GeneratedPrompt {
  const t = rng.pick(SQL_TASKS);
  return {
    prompt: `Given these tables:\n${SQL_SCHEMA}\nWrite one SQL query that ${t.request}. Reply with the SQL only.`,
    max_tokens: 160,
    expect: { regex: t.regex, flags: 'i' },
  };
}

export const GENERATORS: Record<BuiltinCategory, (rng: Prng) => GeneratedPrompt> = {
  definition,
  explanation,
  code,
  summarization,
  'text-to-sql': textToSql,
};
