// Grafana dashboards for Portico, defined as data and rendered to JSON.
//
// The JSON files under deploy/monitoring/grafana/dashboards/ are generated from this module by
// `npm run monitoring:dashboards` and committed; test/monitoring/dashboards.test.ts fails when
// they drift from it, validates every PromQL expression with promtool and checks every metric
// name against deploy/monitoring/metrics-catalog.json.

export type PanelType = 'timeseries' | 'stat' | 'gauge' | 'bargauge' | 'table' | 'state-timeline';

export interface Target {
  expr: string;
  legend?: string;
  /** Table panels: one row per series at the end of the range. */
  instant?: boolean;
}

export interface PanelSpec {
  title: string;
  description: string;
  type: PanelType;
  targets: Target[];
  unit?: string;
  /** Width in grid columns (of 24); height in grid rows. */
  w?: number;
  h?: number;
  min?: number;
  max?: number;
  /** Ascending thresholds [value, colour]; the base colour is green. */
  thresholds?: [number, string][];
  stack?: boolean;
  decimals?: number;
  /** Value mappings for state panels, e.g. circuit breaker state. */
  mappings?: { value: string; text: string; color: string }[];
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

export interface VariableSpec {
  name: string;
  label: string;
  /** A Grafana label_values(...) query. */
  query: string;
  multi?: boolean;
  includeAll?: boolean;
}

export interface DashboardSpec {
  uid: string;
  file: string;
  title: string;
  description: string;
  tags: string[];
  variables: VariableSpec[];
  rows: RowSpec[];
}

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const DATASOURCE: Json = { type: 'prometheus', uid: '${datasource}' };

// ---------------------------------------------------------------------------------------------
// The dashboards. `$__rate_interval` adapts rate windows to the scrape interval; `$tenant`,
// `$model`, `$backend` and `$instance` are template variables (multi-value, hence =~).

const ratio = (num: string, den: string): string => `(${num}) / (${den})`;

const p = (q: number, bucketSelector: string, by: string[] = []): string =>
  `histogram_quantile(${q}, sum by (${['le', ...by].join(', ')}) (rate(${bucketSelector}[$__rate_interval])))`;

const gateway = (selector = ''): string => `{job="portico"${selector ? `, ${selector}` : ''}}`;

const overview: DashboardSpec = {
  uid: 'portico-overview',
  file: 'overview.json',
  title: 'Portico / Overview',
  description: 'Traffic, errors, latency, tokens, cost, cache and backend health of the whole gateway fleet.',
  tags: ['portico'],
  variables: [],
  rows: [
    {
      title: 'Now',
      panels: [
        {
          title: 'Requests / s',
          description: 'Requests finished per second, all tenants and routes.',
          type: 'stat',
          unit: 'reqps',
          w: 4,
          h: 4,
          targets: [{ expr: 'sum(rate(portico_requests_total[$__rate_interval]))' }],
        },
        {
          title: '5xx error rate',
          description:
            'Share of requests that finished with a 5xx status. Alerts at 1% (warning) and 5% (critical).',
          type: 'stat',
          unit: 'percentunit',
          w: 4,
          h: 4,
          decimals: 2,
          thresholds: [
            [0.01, 'orange'],
            [0.05, 'red'],
          ],
          targets: [
            {
              expr: ratio(
                'sum(rate(portico_requests_total{status=~"5.."}[$__rate_interval]))',
                'sum(rate(portico_requests_total[$__rate_interval]))',
              ),
            },
          ],
        },
        {
          title: 'p95 latency',
          description: '95th percentile of end-to-end request time. Alerts above 2s.',
          type: 'stat',
          unit: 's',
          w: 4,
          h: 4,
          thresholds: [
            [1, 'orange'],
            [2, 'red'],
          ],
          targets: [{ expr: p(0.95, 'portico_request_duration_seconds_bucket') }],
        },
        {
          title: 'Spend, last 24h',
          description: 'USD spent by all tenants over the last 24 hours.',
          type: 'stat',
          unit: 'currencyUSD',
          w: 4,
          h: 4,
          targets: [{ expr: 'sum(increase(portico_cost_usd_total[1d]))' }],
        },
        {
          title: 'Cache hit rate',
          description: 'Share of cached requests answered from L1 or L2 (hits of any tier over L1 lookups).',
          type: 'stat',
          unit: 'percentunit',
          w: 4,
          h: 4,
          targets: [
            {
              expr: ratio(
                'sum(rate(portico_cache_lookups_total{result="hit"}[$__rate_interval]))',
                'sum(rate(portico_cache_lookups_total{tier="l1"}[$__rate_interval])) or sum(rate(portico_cache_lookups_total{tier="l2"}[$__rate_interval]))',
              ),
            },
          ],
        },
        {
          title: 'Healthy backends',
          description: 'Backends (per model) currently marked healthy, out of all known.',
          type: 'stat',
          unit: 'percentunit',
          w: 4,
          h: 4,
          thresholds: [
            [0, 'red'],
            [0.5, 'orange'],
            [1, 'green'],
          ],
          targets: [{ expr: 'avg(max by (backend, model) (portico_backend_up))' }],
        },
      ],
    },
    {
      title: 'Traffic',
      panels: [
        {
          title: 'Requests by route',
          description: 'Requests finished per second, by API route.',
          type: 'timeseries',
          unit: 'reqps',
          stack: true,
          targets: [
            { expr: 'sum by (route) (rate(portico_requests_total[$__rate_interval]))', legend: '{{route}}' },
          ],
        },
        {
          title: 'Responses by status',
          description: 'Requests finished per second, by HTTP status.',
          type: 'timeseries',
          unit: 'reqps',
          stack: true,
          targets: [
            {
              expr: 'sum by (status) (rate(portico_requests_total[$__rate_interval]))',
              legend: '{{status}}',
            },
          ],
        },
        {
          title: 'Latency percentiles',
          description: 'End-to-end request time: p50, p95 and p99.',
          type: 'timeseries',
          unit: 's',
          targets: [
            { expr: p(0.5, 'portico_request_duration_seconds_bucket'), legend: 'p50' },
            { expr: p(0.95, 'portico_request_duration_seconds_bucket'), legend: 'p95' },
            { expr: p(0.99, 'portico_request_duration_seconds_bucket'), legend: 'p99' },
          ],
        },
        {
          title: 'Time to first token (streaming)',
          description: 'Streaming requests: time from request start to the first content byte, p50 and p95.',
          type: 'timeseries',
          unit: 's',
          targets: [
            { expr: p(0.5, 'portico_time_to_first_token_seconds_bucket'), legend: 'p50' },
            { expr: p(0.95, 'portico_time_to_first_token_seconds_bucket'), legend: 'p95' },
          ],
        },
        {
          title: 'In flight and queued',
          description: 'Requests admitted and not finished, and requests waiting in the admission queue.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: 'sum(portico_requests_in_flight)', legend: 'in flight' },
            { expr: 'sum(portico_queue_depth)', legend: 'queued' },
          ],
        },
        {
          title: 'Rejections',
          description:
            'Requests turned away per second: rate limits (429), quotas (429 insufficient_quota), queue timeouts (503).',
          type: 'timeseries',
          unit: 'reqps',
          targets: [
            {
              expr: 'sum(rate(portico_rate_limit_rejections_total[$__rate_interval]))',
              legend: 'rate limit',
            },
            { expr: 'sum(rate(portico_quota_rejections_total[$__rate_interval]))', legend: 'quota' },
            { expr: 'sum(rate(portico_queue_rejections_total[$__rate_interval]))', legend: 'queue timeout' },
          ],
        },
      ],
    },
    {
      title: 'Tokens and cost',
      panels: [
        {
          title: 'Tokens / s',
          description: 'Tokens accounted per second, input and output.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            {
              expr: 'sum by (direction) (rate(portico_tokens_total[$__rate_interval]))',
              legend: '{{direction}}',
            },
          ],
        },
        {
          title: 'Spend rate by tenant',
          description: 'USD per hour, by tenant.',
          type: 'timeseries',
          unit: 'currencyUSD',
          stack: true,
          targets: [
            {
              expr: 'sum by (tenant) (rate(portico_cost_usd_total[$__rate_interval])) * 3600',
              legend: '{{tenant}}',
            },
          ],
        },
        {
          title: 'Gateway replicas up',
          description: 'Gateway targets Prometheus scraped successfully.',
          type: 'stat',
          unit: 'short',
          w: 8,
          targets: [{ expr: `sum(up${gateway()})` }],
        },
      ],
    },
  ],
};

const tenantFilter = 'tenant=~"$tenant"';

const tenant: DashboardSpec = {
  uid: 'portico-tenant',
  file: 'tenant.json',
  title: 'Portico / Tenant',
  description:
    'One tenant (or several): traffic, errors, latency, tokens, spend against budget, limits and cache.',
  tags: ['portico', 'tenant'],
  variables: [
    { name: 'tenant', label: 'Tenant', query: 'label_values(portico_requests_total, tenant)', multi: true },
    {
      name: 'model',
      label: 'Model',
      query: 'label_values(portico_requests_total{tenant=~"$tenant"}, model)',
      multi: true,
      includeAll: true,
    },
  ],
  rows: [
    {
      title: 'Summary',
      panels: [
        {
          title: 'Requests / s',
          description: 'Requests finished per second for the selected tenants and models.',
          type: 'stat',
          unit: 'reqps',
          w: 6,
          h: 4,
          targets: [
            { expr: `sum(rate(portico_requests_total{${tenantFilter}, model=~"$model"}[$__rate_interval]))` },
          ],
        },
        {
          title: 'Error rate (4xx + 5xx)',
          description: 'Share of requests that did not succeed, client and server errors together.',
          type: 'stat',
          unit: 'percentunit',
          w: 6,
          h: 4,
          decimals: 2,
          thresholds: [
            [0.01, 'orange'],
            [0.05, 'red'],
          ],
          targets: [
            {
              expr: ratio(
                `sum(rate(portico_requests_total{${tenantFilter}, model=~"$model", status=~"[45].."}[$__rate_interval]))`,
                `sum(rate(portico_requests_total{${tenantFilter}, model=~"$model"}[$__rate_interval]))`,
              ),
            },
          ],
        },
        {
          title: 'Spend, last 24h',
          description: 'USD spent over the last 24 hours.',
          type: 'stat',
          unit: 'currencyUSD',
          w: 6,
          h: 4,
          targets: [{ expr: `sum(increase(portico_cost_usd_total{${tenantFilter}, model=~"$model"}[1d]))` }],
        },
        {
          title: 'Daily budget used',
          description:
            'Spend over the last 24 hours divided by the configured daily budget (empty when no budget).',
          type: 'gauge',
          unit: 'percentunit',
          w: 6,
          h: 4,
          min: 0,
          max: 1.2,
          thresholds: [
            [0.8, 'orange'],
            [1, 'red'],
          ],
          targets: [
            {
              expr: `sum by (tenant) (increase(portico_cost_usd_total{${tenantFilter}}[1d])) / on (tenant) max by (tenant) (portico_tenant_daily_budget_usd{${tenantFilter}})`,
              legend: '{{tenant}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Traffic and latency',
      panels: [
        {
          title: 'Requests by status',
          description: 'Requests finished per second, by HTTP status.',
          type: 'timeseries',
          unit: 'reqps',
          stack: true,
          targets: [
            {
              expr: `sum by (status) (rate(portico_requests_total{${tenantFilter}, model=~"$model"}[$__rate_interval]))`,
              legend: '{{status}}',
            },
          ],
        },
        {
          title: 'p95 latency by model',
          description: '95th percentile of end-to-end request time, by model.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: p(0.95, `portico_request_duration_seconds_bucket{${tenantFilter}, model=~"$model"}`, [
                'model',
              ]),
              legend: '{{model}}',
            },
          ],
        },
        {
          title: 'Time to first token p95 by model',
          description: 'Streaming requests: 95th percentile of time to the first content byte.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: p(0.95, `portico_time_to_first_token_seconds_bucket{${tenantFilter}, model=~"$model"}`, [
                'model',
              ]),
              legend: '{{model}}',
            },
          ],
        },
        {
          title: 'Inter-token latency p95 by model',
          description: 'Streaming requests: 95th percentile of the gap between chunks.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: p(0.95, `portico_inter_token_latency_seconds_bucket{${tenantFilter}, model=~"$model"}`, [
                'model',
              ]),
              legend: '{{model}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Tokens and cost',
      panels: [
        {
          title: 'Tokens / s by direction',
          description: 'Input and output tokens accounted per second.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            {
              expr: `sum by (direction) (rate(portico_tokens_total{${tenantFilter}, model=~"$model"}[$__rate_interval]))`,
              legend: '{{direction}}',
            },
          ],
        },
        {
          title: 'Spend rate by model',
          description: 'USD per hour, by model.',
          type: 'timeseries',
          unit: 'currencyUSD',
          stack: true,
          targets: [
            {
              expr: `sum by (model) (rate(portico_cost_usd_total{${tenantFilter}, model=~"$model"}[$__rate_interval])) * 3600`,
              legend: '{{model}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Admission and cache',
      panels: [
        {
          title: 'In flight and queued',
          description: 'Requests admitted and not finished, and requests waiting for admission.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: `sum(portico_requests_in_flight{${tenantFilter}})`, legend: 'in flight' },
            { expr: `sum(portico_queue_depth{${tenantFilter}})`, legend: 'queued' },
          ],
        },
        {
          title: 'Queue wait p95',
          description: '95th percentile of time spent in the admission queue.',
          type: 'timeseries',
          unit: 's',
          targets: [{ expr: p(0.95, `portico_queue_wait_seconds_bucket{${tenantFilter}}`), legend: 'p95' }],
        },
        {
          title: 'Rejections by limit',
          description: 'Rejections per second: rate limits by kind, quota windows, queue timeouts.',
          type: 'timeseries',
          unit: 'reqps',
          targets: [
            {
              expr: `sum by (limit) (rate(portico_rate_limit_rejections_total{${tenantFilter}}[$__rate_interval]))`,
              legend: 'rate limit {{limit}}',
            },
            {
              expr: `sum by (window) (rate(portico_quota_rejections_total{${tenantFilter}}[$__rate_interval]))`,
              legend: 'quota {{window}}',
            },
            {
              expr: `sum(rate(portico_queue_rejections_total{${tenantFilter}}[$__rate_interval]))`,
              legend: 'queue timeout',
            },
          ],
        },
        {
          title: 'Cache hit rate by tier',
          description: 'Share of lookups that hit, per cache tier.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: ratio(
                `sum by (tier) (rate(portico_cache_lookups_total{${tenantFilter}, result="hit"}[$__rate_interval]))`,
                `sum by (tier) (rate(portico_cache_lookups_total{${tenantFilter}}[$__rate_interval]))`,
              ),
              legend: '{{tier}}',
            },
          ],
        },
      ],
    },
  ],
};

const cost: DashboardSpec = {
  uid: 'portico-cost',
  file: 'cost.json',
  title: 'Portico / Cost analytics',
  description: 'Spend by tenant and model, budgets, unit cost and the comparison with yesterday.',
  tags: ['portico', 'cost'],
  variables: [
    {
      name: 'tenant',
      label: 'Tenant',
      query: 'label_values(portico_cost_usd_total, tenant)',
      multi: true,
      includeAll: true,
    },
  ],
  rows: [
    {
      title: 'Totals',
      panels: [
        {
          title: 'Spend, last 24h',
          description: 'USD spent over the last 24 hours.',
          type: 'stat',
          unit: 'currencyUSD',
          w: 6,
          h: 4,
          targets: [{ expr: `sum(increase(portico_cost_usd_total{${tenantFilter}}[1d]))` }],
        },
        {
          title: 'Spend, same 24h a day earlier',
          description: 'USD spent in the 24 hours before that, for comparison.',
          type: 'stat',
          unit: 'currencyUSD',
          w: 6,
          h: 4,
          targets: [{ expr: `sum(increase(portico_cost_usd_total{${tenantFilter}}[1d] offset 1d))` }],
        },
        {
          title: 'Projected 30-day spend',
          description: 'The last 24 hours of spend times 30.',
          type: 'stat',
          unit: 'currencyUSD',
          w: 6,
          h: 4,
          targets: [{ expr: `sum(increase(portico_cost_usd_total{${tenantFilter}}[1d])) * 30` }],
        },
        {
          title: 'Cost per 1k output tokens',
          description: 'USD per thousand output tokens over the last hour (all models).',
          type: 'stat',
          unit: 'currencyUSD',
          w: 6,
          h: 4,
          decimals: 4,
          targets: [
            {
              expr: ratio(
                `sum(increase(portico_cost_usd_total{${tenantFilter}}[1h]))`,
                `sum(increase(portico_tokens_total{${tenantFilter}, direction="output"}[1h])) / 1000`,
              ),
            },
          ],
        },
      ],
    },
    {
      title: 'Breakdown',
      panels: [
        {
          title: 'Spend rate by tenant',
          description: 'USD per hour, by tenant.',
          type: 'timeseries',
          unit: 'currencyUSD',
          stack: true,
          targets: [
            {
              expr: `sum by (tenant) (rate(portico_cost_usd_total{${tenantFilter}}[$__rate_interval])) * 3600`,
              legend: '{{tenant}}',
            },
          ],
        },
        {
          title: 'Spend rate by model',
          description: 'USD per hour, by model.',
          type: 'timeseries',
          unit: 'currencyUSD',
          stack: true,
          targets: [
            {
              expr: `sum by (model) (rate(portico_cost_usd_total{${tenantFilter}}[$__rate_interval])) * 3600`,
              legend: '{{model}}',
            },
          ],
        },
        {
          title: 'Spend last hour vs same hour yesterday',
          description: 'Hourly spend now and one day earlier; the cost-spike alert fires above 1.5 times.',
          type: 'timeseries',
          unit: 'currencyUSD',
          targets: [
            { expr: `sum(increase(portico_cost_usd_total{${tenantFilter}}[1h]))`, legend: 'last hour' },
            {
              expr: `sum(increase(portico_cost_usd_total{${tenantFilter}}[1h] offset 1d))`,
              legend: 'a day earlier',
            },
          ],
        },
        {
          title: 'Daily budget used by tenant',
          description:
            'Last-24h spend over the configured daily budget; tenants without a budget are not shown.',
          type: 'bargauge',
          unit: 'percentunit',
          min: 0,
          max: 1.2,
          thresholds: [
            [0.8, 'orange'],
            [1, 'red'],
          ],
          targets: [
            {
              expr: `sum by (tenant) (increase(portico_cost_usd_total{${tenantFilter}}[1d])) / on (tenant) max by (tenant) (portico_tenant_daily_budget_usd{${tenantFilter}})`,
              legend: '{{tenant}}',
              instant: true,
            },
          ],
        },
        {
          title: 'Top spenders, last 24h',
          description: 'Spend by tenant and model over the last 24 hours, largest first.',
          type: 'table',
          unit: 'currencyUSD',
          targets: [
            {
              expr: `sort_desc(sum by (tenant, model) (increase(portico_cost_usd_total{${tenantFilter}}[1d])))`,
              instant: true,
            },
          ],
        },
        {
          title: 'Tokens by model, last 24h',
          description: 'Input and output tokens accounted over the last 24 hours, by model.',
          type: 'table',
          unit: 'short',
          targets: [
            {
              expr: `sort_desc(sum by (model, direction) (increase(portico_tokens_total{${tenantFilter}}[1d])))`,
              instant: true,
            },
          ],
        },
      ],
    },
  ],
};

const cache: DashboardSpec = {
  uid: 'portico-cache',
  file: 'cache.json',
  title: 'Portico / Cache performance',
  description: 'Response cache (L1 memory, L2 Redis) and the upstream prefix cache of vLLM-style backends.',
  tags: ['portico', 'cache'],
  variables: [],
  rows: [
    {
      title: 'Response cache',
      panels: [
        {
          title: 'Hit rate',
          description:
            'Share of cached requests answered from L1 or L2 (hits of any tier over L1 lookups). Alerts below 60%.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: ratio(
                'sum(rate(portico_cache_lookups_total{result="hit"}[$__rate_interval]))',
                'sum(rate(portico_cache_lookups_total{tier="l1"}[$__rate_interval])) or sum(rate(portico_cache_lookups_total{tier="l2"}[$__rate_interval]))',
              ),
              legend: 'hit rate',
            },
          ],
        },
        {
          title: 'Hit rate by tier',
          description: 'Share of lookups that hit, per tier.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: ratio(
                'sum by (tier) (rate(portico_cache_lookups_total{result="hit"}[$__rate_interval]))',
                'sum by (tier) (rate(portico_cache_lookups_total[$__rate_interval]))',
              ),
              legend: '{{tier}}',
            },
          ],
        },
        {
          title: 'Lookups by tier and result',
          description: 'Cache lookups per second.',
          type: 'timeseries',
          unit: 'ops',
          stack: true,
          targets: [
            {
              expr: 'sum by (tier, result) (rate(portico_cache_lookups_total[$__rate_interval]))',
              legend: '{{tier}} {{result}}',
            },
          ],
        },
        {
          title: 'Hit rate by tenant',
          description: 'Share of lookups that hit, per tenant (all tiers).',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: ratio(
                'sum by (tenant) (rate(portico_cache_lookups_total{result="hit"}[$__rate_interval]))',
                'sum by (tenant) (rate(portico_cache_lookups_total[$__rate_interval]))',
              ),
              legend: '{{tenant}}',
            },
          ],
        },
        {
          title: 'L1 entries',
          description: 'Entries held in the in-memory cache, per gateway replica.',
          type: 'timeseries',
          unit: 'short',
          targets: [{ expr: 'sum by (instance) (portico_cache_entries{tier="l1"})', legend: '{{instance}}' }],
        },
        {
          title: 'Evictions',
          description:
            'Evictions per second, by tier; steady evictions with a low hit rate mean the cache is too small.',
          type: 'timeseries',
          unit: 'ops',
          targets: [
            {
              expr: 'sum by (tier) (rate(portico_cache_evictions_total[$__rate_interval]))',
              legend: '{{tier}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Upstream prefix cache (vLLM, simulator)',
      panels: [
        {
          title: 'Prefix cache hit rate',
          description: 'Share of prompt tokens found in the backend prefix cache, per backend instance.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: ratio(
                'sum by (instance) (rate(vllm:prefix_cache_hits_total[$__rate_interval]))',
                'sum by (instance) (rate(vllm:prefix_cache_queries_total[$__rate_interval]))',
              ),
              legend: '{{instance}}',
            },
          ],
        },
        {
          title: 'KV cache usage',
          description: 'Fraction of the KV cache in use, per backend instance and model. Alerts above 90%.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: 'max by (instance, model_name) (vllm:gpu_cache_usage_perc)',
              legend: '{{instance}} {{model_name}}',
            },
          ],
        },
      ],
    },
  ],
};

const backendFilter = 'backend=~"$backend"';

const backends: DashboardSpec = {
  uid: 'portico-backends',
  file: 'backends.json',
  title: 'Portico / Backends and providers',
  description:
    'Health, circuit breakers, upstream traffic, errors and latency per backend; the vLLM fleet and its GPUs.',
  tags: ['portico', 'backends'],
  variables: [
    {
      name: 'backend',
      label: 'Backend',
      query: 'label_values(portico_backend_up, backend)',
      multi: true,
      includeAll: true,
    },
  ],
  rows: [
    {
      title: 'Health',
      panels: [
        {
          title: 'Backend health',
          description: '1 healthy, 0 ejected or down (lowest value over the gateway replicas).',
          type: 'state-timeline',
          w: 12,
          mappings: [
            { value: '0', text: 'down', color: 'red' },
            { value: '1', text: 'up', color: 'green' },
          ],
          targets: [
            {
              expr: `min by (backend, model) (portico_backend_up{${backendFilter}})`,
              legend: '{{backend}} / {{model}}',
            },
          ],
        },
        {
          title: 'Circuit breaker state',
          description:
            '0 closed, 1 half-open, 2 open (highest value over the gateway replicas). Alerts when open for 2 minutes.',
          type: 'state-timeline',
          w: 12,
          mappings: [
            { value: '0', text: 'closed', color: 'green' },
            { value: '1', text: 'half-open', color: 'orange' },
            { value: '2', text: 'open', color: 'red' },
          ],
          targets: [
            {
              expr: `max by (backend, model) (portico_circuit_state{${backendFilter}})`,
              legend: '{{backend}} / {{model}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Upstream traffic',
      panels: [
        {
          title: 'Upstream attempts by status',
          description:
            'Upstream attempts per second by outcome (HTTP status, timeout, connect, stream_cut, aborted).',
          type: 'timeseries',
          unit: 'reqps',
          stack: true,
          targets: [
            {
              expr: `sum by (backend, status) (rate(portico_upstream_requests_total{${backendFilter}}[$__rate_interval]))`,
              legend: '{{backend}} {{status}}',
            },
          ],
        },
        {
          title: 'Upstream error ratio',
          description: 'Failed attempts over all attempts, per backend.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          targets: [
            {
              expr: ratio(
                `sum by (backend) (rate(portico_upstream_errors_total{${backendFilter}}[$__rate_interval]))`,
                `sum by (backend) (rate(portico_upstream_requests_total{${backendFilter}}[$__rate_interval]))`,
              ),
              legend: '{{backend}}',
            },
          ],
        },
        {
          title: 'Upstream errors by class',
          description: 'Failed attempts per second: timeout, connect, status_5xx, status_429, protocol.',
          type: 'timeseries',
          unit: 'reqps',
          stack: true,
          targets: [
            {
              expr: `sum by (backend, class) (rate(portico_upstream_errors_total{${backendFilter}}[$__rate_interval]))`,
              legend: '{{backend}} {{class}}',
            },
          ],
        },
        {
          title: 'Upstream p95 latency',
          description: '95th percentile of upstream attempt time (to full body or stream end), per backend.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: p(0.95, `portico_upstream_duration_seconds_bucket{${backendFilter}}`, ['backend']),
              legend: '{{backend}}',
            },
          ],
        },
        {
          title: 'Retries and fallbacks',
          description: 'Retried attempts per backend, and fallbacks taken from one backend to another.',
          type: 'timeseries',
          unit: 'ops',
          targets: [
            {
              expr: `sum by (backend) (rate(portico_retries_total{${backendFilter}}[$__rate_interval]))`,
              legend: 'retry {{backend}}',
            },
            {
              expr: 'sum by (from_backend, to_backend) (rate(portico_fallbacks_total[$__rate_interval]))',
              legend: 'fallback {{from_backend}} → {{to_backend}}',
            },
          ],
        },
      ],
    },
    {
      title: 'vLLM fleet and GPUs',
      panels: [
        {
          title: 'Running and waiting requests',
          description: 'Requests running and waiting on vLLM-style backends (vLLM, simulator).',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: 'sum by (instance) (vllm:num_requests_running)', legend: 'running {{instance}}' },
            { expr: 'sum by (instance) (vllm:num_requests_waiting)', legend: 'waiting {{instance}}' },
          ],
        },
        {
          title: 'Backend time to first token p95',
          description: '95th percentile of time to first token measured by the backend itself.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: p(0.95, 'vllm:time_to_first_token_seconds_bucket', ['instance']),
              legend: '{{instance}}',
            },
          ],
        },
        {
          title: 'Backend tokens / s',
          description: 'Prompt and generated tokens per second on vLLM-style backends.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: 'sum(rate(vllm:prompt_tokens_total[$__rate_interval]))', legend: 'prompt' },
            { expr: 'sum(rate(vllm:generation_tokens_total[$__rate_interval]))', legend: 'generation' },
          ],
        },
        {
          title: 'GPU memory used',
          description: 'Framebuffer memory used per GPU (DCGM exporter). Alerts above 90%.',
          type: 'timeseries',
          unit: 'percentunit',
          min: 0,
          max: 1,
          targets: [
            {
              expr: 'DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)',
              legend: '{{Hostname}} GPU {{gpu}}',
            },
          ],
        },
        {
          title: 'GPU utilisation',
          description: 'GPU utilisation per GPU (DCGM exporter).',
          type: 'timeseries',
          unit: 'percent',
          min: 0,
          max: 100,
          targets: [{ expr: 'DCGM_FI_DEV_GPU_UTIL', legend: '{{Hostname}} GPU {{gpu}}' }],
        },
      ],
    },
  ],
};

const instanceFilter = 'instance=~"$instance"';

const system: DashboardSpec = {
  uid: 'portico-system',
  file: 'system.json',
  title: 'Portico / System health',
  description: 'Scrape targets, gateway process resources, connections and the shared state stores.',
  tags: ['portico', 'system'],
  variables: [
    {
      name: 'instance',
      label: 'Gateway',
      query: 'label_values(up{job="portico"}, instance)',
      multi: true,
      includeAll: true,
    },
  ],
  rows: [
    {
      title: 'Targets and stores',
      panels: [
        {
          title: 'Targets up',
          description: 'Scrape targets by job: 1 scraped, 0 down.',
          type: 'state-timeline',
          w: 12,
          mappings: [
            { value: '0', text: 'down', color: 'red' },
            { value: '1', text: 'up', color: 'green' },
          ],
          targets: [{ expr: 'up', legend: '{{job}} {{instance}}' }],
        },
        {
          title: 'State stores reachable',
          description: 'Redis and PostgreSQL as seen by each gateway: 1 reachable, 0 not.',
          type: 'state-timeline',
          w: 12,
          mappings: [
            { value: '0', text: 'unreachable', color: 'red' },
            { value: '1', text: 'ok', color: 'green' },
          ],
          targets: [
            { expr: `portico_state_backend_up{${instanceFilter}}`, legend: '{{store}} from {{instance}}' },
          ],
        },
        {
          title: 'State errors',
          description:
            'Failed state operations per second, by store and by the mode applied (fail_open, fail_closed).',
          type: 'timeseries',
          unit: 'ops',
          targets: [
            {
              expr: `sum by (store, mode) (rate(portico_state_errors_total{${instanceFilter}}[$__rate_interval]))`,
              legend: '{{store}} {{mode}}',
            },
          ],
        },
        {
          title: 'Versions',
          description: 'Portico and Node.js versions running on each gateway.',
          type: 'table',
          targets: [{ expr: `portico_build_info{${instanceFilter}}`, instant: true }],
        },
      ],
    },
    {
      title: 'Gateway process',
      panels: [
        {
          title: 'CPU',
          description:
            'CPU seconds per second (1 = one full core). JavaScript runs on one thread; alerts above 0.8.',
          type: 'timeseries',
          unit: 'percentunit',
          targets: [
            {
              expr: `rate(process_cpu_seconds_total{job="portico", ${instanceFilter}}[$__rate_interval])`,
              legend: '{{instance}}',
            },
          ],
        },
        {
          title: 'Resident memory',
          description: 'Resident set size per gateway. Alerts above 3.5 GB.',
          type: 'timeseries',
          unit: 'bytes',
          targets: [
            {
              expr: `process_resident_memory_bytes{job="portico", ${instanceFilter}}`,
              legend: '{{instance}}',
            },
          ],
        },
        {
          title: 'V8 heap',
          description: 'JavaScript heap used and total per gateway.',
          type: 'timeseries',
          unit: 'bytes',
          targets: [
            {
              expr: `nodejs_heap_size_used_bytes{job="portico", ${instanceFilter}}`,
              legend: 'used {{instance}}',
            },
            {
              expr: `nodejs_heap_size_total_bytes{job="portico", ${instanceFilter}}`,
              legend: 'total {{instance}}',
            },
          ],
        },
        {
          title: 'Event loop lag p99',
          description:
            'How late timers fire; above ~100 ms the gateway is CPU-bound or blocked by synchronous work.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: `nodejs_eventloop_lag_p99_seconds{job="portico", ${instanceFilter}}`,
              legend: '{{instance}}',
            },
          ],
        },
        {
          title: 'GC time',
          description: 'Seconds per second spent in garbage collection, by kind.',
          type: 'timeseries',
          unit: 'percentunit',
          targets: [
            {
              expr: `sum by (instance, kind) (rate(nodejs_gc_duration_seconds_sum{job="portico", ${instanceFilter}}[$__rate_interval]))`,
              legend: '{{instance}} {{kind}}',
            },
          ],
        },
        {
          title: 'Client connections and file descriptors',
          description: 'Open client TCP connections (alerts above 900) and open file descriptors.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: `portico_open_connections{${instanceFilter}}`, legend: 'connections {{instance}}' },
            { expr: `process_open_fds{job="portico", ${instanceFilter}}`, legend: 'fds {{instance}}' },
          ],
        },
        {
          title: 'Uptime',
          description: 'Time since each gateway process started.',
          type: 'stat',
          unit: 's',
          targets: [
            {
              expr: `time() - process_start_time_seconds{job="portico", ${instanceFilter}}`,
              legend: '{{instance}}',
            },
          ],
        },
      ],
    },
  ],
};

const engineFilter = 'backend=~"$backend"';
/** p50 and p95 of an engine histogram, one series per engine backend. */
const engineQuantiles = (histogram: string): Target[] =>
  [0.5, 0.95].map((q) => ({
    expr: p(q, `${histogram}_bucket{${engineFilter}}`, ['backend']),
    legend: `p${q * 100} {{backend}}`,
  }));

const engine: DashboardSpec = {
  uid: 'portico-engine',
  file: 'engine.json',
  title: 'Portico / Engine',
  description:
    'The built-in inference engine (in-process `provider: engine` backends and standalone `portico engine`): load, latency and throughput per engine.',
  tags: ['portico', 'engine'],
  variables: [
    {
      name: 'backend',
      label: 'Engine',
      query: 'label_values(portico_engine_num_requests_running, backend)',
      multi: true,
      includeAll: true,
    },
  ],
  rows: [
    {
      title: 'Load',
      panels: [
        {
          title: 'Engine up',
          description:
            'Standalone `portico engine` targets Prometheus scraped successfully (in-process engines are scraped with the gateway).',
          type: 'stat',
          unit: 'short',
          w: 6,
          h: 4,
          thresholds: [
            [0, 'red'],
            [1, 'green'],
          ],
          targets: [{ expr: 'sum(up{job="portico-engine"})' }],
        },
        {
          title: 'Running',
          description: 'Requests being generated now.',
          type: 'stat',
          unit: 'short',
          w: 6,
          h: 4,
          targets: [{ expr: `sum(portico_engine_num_requests_running{${engineFilter}})` }],
        },
        {
          title: 'Waiting',
          description: 'Requests waiting for a free context sequence.',
          type: 'stat',
          unit: 'short',
          w: 6,
          h: 4,
          thresholds: [
            [5, 'orange'],
            [20, 'red'],
          ],
          targets: [{ expr: `sum(portico_engine_num_requests_waiting{${engineFilter}})` }],
        },
        {
          title: 'Generation tokens / s',
          description: 'Tokens generated per second, all engines.',
          type: 'stat',
          unit: 'short',
          w: 6,
          h: 4,
          targets: [
            { expr: `sum(rate(portico_engine_generation_tokens_total{${engineFilter}}[$__rate_interval]))` },
          ],
        },
        {
          title: 'Running and waiting by engine',
          description: 'Requests running and waiting, by engine.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            {
              expr: `sum by (backend) (portico_engine_num_requests_running{${engineFilter}})`,
              legend: 'running {{backend}}',
            },
            {
              expr: `sum by (backend) (portico_engine_num_requests_waiting{${engineFilter}})`,
              legend: 'waiting {{backend}}',
            },
          ],
        },
        {
          title: 'Tokens / s by engine',
          description: 'Prompt tokens processed and tokens generated per second.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            {
              expr: `sum by (backend) (rate(portico_engine_prompt_tokens_total{${engineFilter}}[$__rate_interval]))`,
              legend: 'prompt {{backend}}',
            },
            {
              expr: `sum by (backend) (rate(portico_engine_generation_tokens_total{${engineFilter}}[$__rate_interval]))`,
              legend: 'generation {{backend}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Latency',
      panels: [
        {
          title: 'Time to first token',
          description: 'Engine time to first token, p50 and p95, by engine.',
          type: 'timeseries',
          unit: 's',
          targets: engineQuantiles('portico_engine_time_to_first_token_seconds'),
        },
        {
          title: 'Inter-token latency',
          description: 'Gap between generated tokens, p50 and p95, by engine.',
          type: 'timeseries',
          unit: 's',
          targets: engineQuantiles('portico_engine_inter_token_latency_seconds'),
        },
        {
          title: 'Request duration p95',
          description: '95th percentile of engine request time (arrival to last token), by engine.',
          type: 'timeseries',
          unit: 's',
          targets: [
            {
              expr: p(0.95, `portico_engine_e2e_request_latency_seconds_bucket{${engineFilter}}`, [
                'backend',
              ]),
              legend: '{{backend}}',
            },
          ],
        },
        {
          title: 'Requests / s',
          description: 'Engine requests finished per second, by engine.',
          type: 'timeseries',
          unit: 'reqps',
          targets: [
            {
              expr: `sum by (backend) (rate(portico_engine_e2e_request_latency_seconds_count{${engineFilter}}[$__rate_interval]))`,
              legend: '{{backend}}',
            },
          ],
        },
      ],
    },
  ],
};

export const DASHBOARDS: readonly DashboardSpec[] = [overview, tenant, cost, cache, backends, system, engine];

// ---------------------------------------------------------------------------------------------
// Rendering to Grafana's dashboard JSON model (schemaVersion 39, Grafana 10/11).

function renderPanel(spec: PanelSpec, id: number, x: number, y: number, w: number, h: number): Json {
  const steps: Json[] = [{ color: spec.mappings ? 'transparent' : 'green', value: null }];
  for (const [value, color] of spec.thresholds ?? []) steps.push({ color, value });
  const defaults: { [key: string]: Json } = {
    thresholds: { mode: 'absolute', steps },
  };
  if (spec.unit) defaults.unit = spec.unit;
  if (spec.min !== undefined) defaults.min = spec.min;
  if (spec.max !== undefined) defaults.max = spec.max;
  if (spec.decimals !== undefined) defaults.decimals = spec.decimals;
  if (spec.mappings) {
    const options: { [key: string]: Json } = {};
    for (const m of spec.mappings)
      options[m.value] = { text: m.text, color: m.color, index: Object.keys(options).length };
    defaults.mappings = [{ type: 'value', options }];
    defaults.color = { mode: 'thresholds' };
  }
  if (spec.type === 'timeseries') {
    defaults.custom = {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: spec.stack ? 30 : 10,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: spec.stack ? 'normal' : 'none', group: 'A' },
    };
    defaults.color = { mode: 'palette-classic' };
  }
  let options: Json;
  switch (spec.type) {
    case 'timeseries':
      options = {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['mean', 'max', 'lastNotNull'],
        },
        tooltip: { mode: 'multi', sort: 'desc' },
      };
      break;
    case 'stat':
      options = {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: spec.thresholds ? 'background' : 'value',
        graphMode: 'area',
        textMode: 'auto',
        justifyMode: 'auto',
        orientation: 'auto',
      };
      break;
    case 'gauge':
      options = {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        showThresholdLabels: false,
        showThresholdMarkers: true,
      };
      break;
    case 'bargauge':
      options = {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        displayMode: 'gradient',
        orientation: 'horizontal',
        showUnfilled: true,
      };
      break;
    case 'table':
      options = { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } };
      break;
    case 'state-timeline':
      options = {
        showValue: 'never',
        mergeValues: true,
        alignValue: 'left',
        rowHeight: 0.9,
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'single', sort: 'none' },
      };
      break;
  }
  const targets: Json[] = spec.targets.map((t, i) => {
    const target: { [key: string]: Json } = {
      datasource: DATASOURCE,
      refId: String.fromCharCode(65 + i),
      expr: t.expr,
      range: !t.instant,
      instant: t.instant === true,
      legendFormat: t.legend ?? '__auto',
    };
    if (t.instant) target.format = 'table';
    return target;
  });
  const panel: { [key: string]: Json } = {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos: { h, w, x, y },
    fieldConfig: { defaults, overrides: [] },
    options,
    targets,
  };
  if (spec.type === 'table') {
    // Instant tables: hide the timestamp column and the constant labels.
    panel.transformations = [
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true, __name__: true, job: true },
          indexByName: {},
          renameByName: {},
        },
      },
    ];
  }
  return panel;
}

function renderVariable(v: VariableSpec): Json {
  return {
    name: v.name,
    label: v.label,
    type: 'query',
    datasource: DATASOURCE,
    definition: v.query,
    // The classic string form; Grafana 10+ migrates it to its variable query editor on load.
    query: v.query,
    refresh: 2,
    sort: 1,
    multi: v.multi === true,
    includeAll: v.includeAll === true,
    allValue: v.includeAll ? '.*' : null,
    current: v.includeAll ? { selected: true, text: ['All'], value: ['$__all'] } : {},
    options: [],
    hide: 0,
    regex: '',
  };
}

export function renderDashboard(spec: DashboardSpec): Json {
  const panels: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const panel of row.panels) {
      const w = panel.w ?? 12;
      const h = panel.h ?? 8;
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push(renderPanel(panel, id++, x, y, w, h));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  const datasourceVariable: Json = {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: { selected: false, text: 'Prometheus', value: 'prometheus' },
    hide: 0,
    refresh: 1,
    regex: '',
    options: [],
  };
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: spec.tags,
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    timezone: 'browser',
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [
      {
        title: 'Portico dashboards',
        type: 'dashboards',
        tags: ['portico'],
        asDropdown: true,
        includeVars: false,
        keepTime: true,
      },
    ],
    templating: { list: [datasourceVariable, ...spec.variables.map(renderVariable)] },
    panels,
  };
}

/** File name -> pretty-printed JSON text (with trailing newline), as committed. */
export function renderAll(): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of DASHBOARDS) out.set(spec.file, `${JSON.stringify(renderDashboard(spec), null, 2)}\n`);
  return out;
}
