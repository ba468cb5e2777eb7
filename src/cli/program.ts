/**
 * The `portico` command tree, on commander: every command and subcommand declares its arguments,
 * options, defaults and an example here, so `--help` works everywhere and unknown options or
 * missing arguments are usage errors (exit 2). The implementations live in the other files of
 * src/cli/ and are imported on demand, so `--help` and small commands do not load the gateway.
 *
 * Exit codes: 0 ok, 1 a check or run failed, 2 usage error, 3 the gateway's admin API could not be
 * reached or refused the request.
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { VERSION } from '../version.js';
import { UsageError, type CliIO } from './common.js';

/** Exit code a long-running command (start, sim, engine) returns: the process keeps running. */
export const KEEP_RUNNING = -1;

export const EXIT_CODES: ReadonlyArray<readonly [number, string]> = [
  [0, 'success (for `config check`: no errors; warnings may be printed)'],
  [
    1,
    'a check or run failed: config problems, a failed drill, a bench run over its error budget, an unknown tenant',
  ],
  [
    2,
    'usage error: unknown command or option, missing or invalid argument (the message and the usage are printed); a command without its subcommand, `portico` alone included (its help is printed)',
  ],
  [3, 'the gateway could not be reached, or its admin API refused the request'],
];

const EXIT_HELP = `
Exit codes:
${EXIT_CODES.map(([c, d]) => `  ${c}  ${d}`).join('\n')}`;

// ---- argument parsers (an invalid value is a usage error) ----

export function portArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535).');
  return n;
}

export function positiveIntArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function positiveNumberArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive number.');
  return n;
}

export function nonNegativeNumberArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('expected a number >= 0.');
  return n;
}

export function fractionArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n <= 1))
    throw new InvalidArgumentError('expected a number from 0 to 1.');
  return n;
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function example(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

function adminOptions(cmd: Command): Command {
  return cmd
    .option(
      '--url <url>',
      'the running gateway; host:port means http:// (default: env PORTICO_URL, else http://127.0.0.1:8080)',
    )
    .option('--admin-token <token>', 'admin token (env PORTICO_ADMIN_TOKEN)');
}

/** Full name of a command: "portico bench run". */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

type Runner = (cmd: Command) => Promise<number>;

/** A usage error's message: what is wrong, then the command's usage and where to read more. */
function withUsage(message: string, cmd: Command): string {
  return `${message}\nusage: ${commandPath(cmd)} ${cmd.usage()}\n(see: ${commandPath(cmd)} --help)`;
}

/** Build the whole tree. `run` wraps every action so the caller learns the exit code. */
export function buildProgram(io: CliIO, setCode: (code: number) => void): Command {
  const act =
    (fn: Runner) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      try {
        setCode(await fn(cmd));
      } catch (err) {
        // A usage error the command found itself reads like commander's: the line, then the usage.
        if (err instanceof UsageError && !err.message.includes('\nusage: '))
          throw new UsageError(withUsage(err.message, cmd));
        throw err;
      }
    };

  const program = new Command('portico')
    .description(
      'Portico: a multi-tenant LLM gateway (one OpenAI-compatible front door for many tenants and backends)',
    )
    .version(VERSION, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .helpCommand('help [command...]', 'show help for a command')
    .addHelpText('after', EXIT_HELP + '\n\nDocs: docs/cli.md, docs/config.md, docs/drills.md\n');
  example(program, [
    'portico start                                   # the demo: examples/demo.yaml',
    'portico config check portico.yaml',
    'portico help usage report',
  ]);

  // ---- start / sim / engine ----
  example(
    program
      .command('start')
      .description('run the gateway')
      .option('-c, --config <file>', 'config file (default: the demo, examples/demo.yaml)')
      .option('--host <host>', "listen address (overrides the config's server.host)")
      .option('-p, --port <n>', "listen port (overrides the config's server.port)", portArg)
      .action(
        act(async (c) => {
          await (await import('./start.js')).runStart(c.opts(), io);
          return KEEP_RUNNING;
        }),
      ),
    [
      'portico start --config portico.yaml --port 8080',
      'PORTICO_DEMO_MODEL=/path/to/model.gguf portico start   # the demo with a local model',
    ],
  );

  example(
    program
      .command('sim')
      .description(
        'run the backend simulator (OpenAI API: chat, completions, embeddings; /sim/config, vLLM-style /metrics)',
      )
      .option('-p, --port <n>', 'listen port', portArg, 9000)
      .option('--host <host>', 'listen address', '127.0.0.1')
      .addOption(
        new Option('--mode <mode>', 'answer with lorem ipsum or echo the messages').choices([
          'lorem',
          'echo',
        ]),
      )
      .option('--ttft-ms <ms>', 'time to first token', nonNegativeNumberArg)
      .option('--itl-ms <ms>', 'inter-token delay when streaming', nonNegativeNumberArg)
      .option('--output-tokens <n>', 'answer length unless max_tokens is lower', positiveIntArg)
      .option('--model <name>', 'a model name to list under /v1/models (repeatable)', collect)
      .action(
        act(async (c) => {
          await (await import('./sim.js')).runSim(c.opts(), io);
          return KEEP_RUNNING;
        }),
      ),
    ['portico sim --port 9101 --mode echo --ttft-ms 200 --itl-ms 20'],
  );

  example(
    program
      .command('engine')
      .description('run the built-in engine (llama.cpp) behind an OpenAI API')
      .requiredOption(
        '-m, --model <model>',
        'a GGUF path or hf:owner/repo:QUANT (downloaded once, with progress) (required)',
      )
      .option('-p, --port <n>', 'listen port', portArg, 5001)
      .option('--host <host>', 'listen address', '127.0.0.1')
      .option('--threads <n>', 'CPU threads (default min(4, cores))', positiveIntArg)
      .option('--sequences <n>', 'requests decoded together (default 4)', positiveIntArg)
      .option('--context <n>', 'context tokens per sequence (default 2048)', positiveIntArg)
      .addOption(
        new Option('--gpu <mode>', 'use an installed GPU build').choices(['auto', 'off']).default('auto'),
      )
      .option(
        '--models-dir <dir>',
        'where downloaded models are kept (default $PORTICO_MODELS_DIR, else ~/.cache/portico/models)',
      )
      .action(
        act(async (c) => {
          await (await import('./engine.js')).runEngine(c.opts(), io);
          return KEEP_RUNNING;
        }),
      ),
    ['portico engine --model hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M --port 5001'],
  );

  // ---- config ----
  const config = program
    .command('config')
    .description('check a config file; print its JSON Schema')
    .addHelpText('after', '\nSee docs/config.md.\n');
  example(
    config
      .command('check')
      .description(
        'validate a config file and print every problem at once (schema, environment, cross-field checks), each with its path',
      )
      .argument('<file>', 'the YAML config file')
      .option('--json', 'print the report as JSON ({ ok, errors, warnings }) for CI')
      .action(
        act(async (c) => (await import('./config.js')).runConfigCheck(c.args[0] as string, c.opts(), io)),
      ),
    ['portico config check portico.yaml', 'portico config check portico.yaml --json | jq .errors'],
  ).addHelpText('after', '\nExit status: 0 when there are no errors (warnings allowed), 1 otherwise.\n');
  example(
    config
      .command('schema')
      .description("print the config's JSON Schema (generated from the schema the gateway validates with)")
      .option('-o, --out <file>', 'write it to a file instead of stdout')
      .action(act(async (c) => (await import('./config.js')).runConfigSchema(c.opts(), io))),
    [
      'portico config schema --out portico.schema.json',
      '# then, first line of portico.yaml:  # yaml-language-server: $schema=./portico.schema.json',
    ],
  );

  // ---- tenants / keys / usage (admin API) ----
  const tenants = program
    .command('tenants')
    .description("manage tenants through a running gateway's admin API");
  example(
    adminOptions(
      tenants
        .command('add')
        .description('create a tenant')
        .argument('<id>', 'tenant id (lower-case letters, digits, ".", "_", "-")')
        .option('--name <name>', 'display name')
        .option('--company <company>', 'company')
        .option('--industry <industry>', 'industry')
        .option('--prompt <text>', 'system prompt')
        .option('--prompt-file <file>', 'read the system prompt from a file')
        .addOption(
          new Option('--policy <policy>', "how the tenant prompt combines with the caller's").choices([
            'prepend',
            'replace',
            'none',
          ]),
        )
        .option('--models <a,b>', 'allowed model aliases (default: all)')
        .option('--rps <n>', 'requests per second', positiveNumberArg)
        .option('--burst <n>', 'burst size', positiveNumberArg)
        .option('--tokens-per-minute <n>', 'tokens per minute', positiveNumberArg)
        .option('--max-in-flight <n>', 'concurrent requests', positiveNumberArg)
        .option('--daily-tokens <n>', 'daily token quota', positiveNumberArg)
        .option('--monthly-tokens <n>', 'monthly token quota', positiveNumberArg)
        .option('--daily-requests <n>', 'daily request quota', positiveNumberArg)
        .option('--monthly-requests <n>', 'monthly request quota', positiveNumberArg)
        .addOption(
          new Option('--priority <class>', 'admission class').choices(['critical', 'high', 'normal', 'low']),
        )
        .option('--json', 'print the created tenant as JSON'),
    ).action(act(async (c) => (await import('./tenants.js')).tenantsAdd(c.args[0] as string, c.opts(), io))),
    [
      'portico tenants add initech --name Initech --prompt "TPS reports first." --models default --daily-tokens 100000',
    ],
  );
  example(
    adminOptions(
      tenants
        .command('list')
        .description('list tenants (from the config file and the admin API)')
        .option('--json', 'print JSON'),
    ).action(act(async (c) => (await import('./tenants.js')).tenantsList(c.opts(), io))),
    ['PORTICO_ADMIN_TOKEN=... portico tenants list --url http://127.0.0.1:8080'],
  );

  const keys = program.command('keys').description("manage tenants' API keys through the admin API");
  example(
    adminOptions(
      keys
        .command('create')
        .description('create an API key; it is printed once')
        .requiredOption('--tenant <id>', 'the tenant (required)')
        .option('--label <label>', 'a label (e.g. the machine or the person)')
        .option(
          '--expires <when>',
          'when the key stops working: a date YYYY-MM-DD (00:00 UTC that day) or an ISO 8601 time with Z or an offset (e.g. 2027-01-01T12:00:00Z)',
        )
        .option('--json', 'print JSON'),
    ).action(act(async (c) => (await import('./tenants.js')).keysCreate(c.opts(), io))),
    [
      'portico keys create --tenant initech --label laptop',
      'portico keys create --tenant initech --label ci --expires 2027-01-01',
    ],
  );
  example(
    adminOptions(
      keys
        .command('list')
        .description(
          'list keys: created through the API, and declared in the config file (source: config, not revocable from the API)',
        )
        .option('--tenant <id>', 'only this tenant')
        .option('--json', 'print JSON'),
    ).action(act(async (c) => (await import('./tenants.js')).keysList(c.opts(), io))),
    ['portico keys list --tenant initech'],
  );
  example(
    adminOptions(
      keys
        .command('revoke')
        .description('revoke a key created through the API (config keys are removed from the config file)')
        .argument('<key-id>', 'the key id (from keys list)')
        .option('--json', 'print JSON'),
    ).action(act(async (c) => (await import('./tenants.js')).keysRevoke(c.args[0] as string, c.opts(), io))),
    ['portico keys revoke key_01J...'],
  );

  const usage = program.command('usage').description('usage and cost reports through the admin API');
  example(
    adminOptions(
      usage
        .command('report')
        .description('requests, tokens and cost per day, month, model or key (exact totals)')
        .option(
          '--tenant <id>',
          'only this tenant (an unknown tenant is an error; a deleted one whose usage the ledger keeps is reported)',
        )
        .option('--month <yyyy-mm>', 'a calendar month, e.g. 2026-11')
        .option('--from <date>', 'first day, YYYY-MM-DD (or a month YYYY-MM)')
        .option('--to <date>', 'last day, YYYY-MM-DD (or a month YYYY-MM)')
        .addOption(
          new Option('--group-by <what>', 'rows per')
            .choices(['day', 'month', 'model', 'key'])
            .default('day'),
        )
        .addOption(
          new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'),
        ),
    ).action(act(async (c) => (await import('./tenants.js')).usageReport(c.opts(), io))),
    [
      'portico usage report --tenant acme-corp --month 2026-11 --group-by model',
      'portico usage report --format csv > usage.csv',
    ],
  );

  // ---- promptset / bench ----
  const promptset = program.command('promptset').description('reproducible promptsets for bench runs');
  example(
    promptset
      .command('generate')
      .description('write DIR/promptset.jsonl and DIR/manifest.json; the same arguments give the same bytes')
      .requiredOption('--out <dir>', 'output directory (required)')
      .option('--seed <n>', 'random seed', '42')
      .option('--scenario <id>', 'scenario id (recorded in the manifest)', 'default')
      .option('--dataset <id>', 'dataset id (recorded in the manifest)', 'general-qa')
      .option('--from <file>', 'source prompts (JSON) instead of the built-in ones')
      .option('--count <n>', 'number of records', positiveIntArg)
      .option('--categories <c1,c2>', 'definition, explanation, code, summarization, text-to-sql')
      .action(
        act(async (c) => {
          await (await import('./promptset.js')).promptsetGenerate(c.opts(), io);
          return 0;
        }),
      ),
    ['portico promptset generate --seed 42 --scenario canary-v1 --count 50 --out bench/promptsets/canary'],
  );

  const bench = program
    .command('bench')
    .description('load harness with pass/fail checks, and run comparisons');
  example(
    bench
      .command('run')
      .description(
        'send a promptset to a gateway; exits 1 when the error rate exceeds --max-error-rate or the pass rate is below --min-pass-rate',
      )
      .requiredOption('--promptset <file>', 'promptset.jsonl (required)')
      .requiredOption('--target <url>', 'the gateway, e.g. http://127.0.0.1:8080 (required)')
      .requiredOption('--run-id <id>', 'names the report files (letters, digits, ".", "_", "-") (required)')
      .option('--key <key>', 'tenant API key (env PORTICO_API_KEY)')
      .option('--model <alias>', 'send chat completions to this model (give --model or --team)')
      .option('--team <team>', 'send to the team route POST /api/{team}/predict')
      .option('--concurrency <n>', 'requests in flight', positiveIntArg, 4)
      .option('--count <n>', 'requests to send (default: one per record)', positiveIntArg)
      .option('--duration <s>', 'or: run for this many seconds', positiveNumberArg)
      .option('--out <dir>', 'where the JSON and Markdown reports go', 'bench/out')
      .option('--stream', 'stream the answers (chat only)')
      .option('--timeout-ms <ms>', 'per-request timeout', positiveNumberArg, 60000)
      .option('--judge-model <alias>', 'grade answers with this model')
      .option(
        '--max-error-rate <0..1>',
        'largest tolerated share of requests that got no answer (HTTP or transport errors)',
        fractionArg,
        0,
      )
      .option(
        '--min-pass-rate <0..1>',
        'smallest tolerated share of answers that pass their content checks',
        fractionArg,
      )
      .option('--quiet', 'no progress line')
      .action(act(async (c) => (await import('./bench.js')).benchRun(c.opts(), io))),
    [
      'portico bench run --promptset bench/promptsets/canary/promptset.jsonl --target http://127.0.0.1:8080 \\\n      --key sk-demo-acme-corp --model default --count 50 --run-id canary-1',
    ],
  );
  example(
    bench
      .command('compare')
      .description('latency and pass-rate deltas between two runs, with significance')
      .argument('<run-a>', 'the baseline report (JSON)')
      .argument('<run-b>', 'the candidate report (JSON)')
      .option('--out <file>', 'also write the Markdown to a file')
      .option('--json', 'print JSON')
      .action(
        act(async (c) =>
          (await import('./bench.js')).benchCompare(c.args[0] as string, c.args[1] as string, c.opts(), io),
        ),
      ),
    ['portico bench compare bench/out/canary-1.json bench/out/canary-2.json'],
  );

  // ---- drills ----
  example(
    program
      .command('drill')
      .description(
        'failure drills against a gateway running the drill config (examples/drills/portico.yaml) with two `portico sim` backends',
      )
      .addArgument(
        new Argument('<drill>', 'which drill').choices([
          'slow-startup',
          'quota-rejection',
          'upstream-timeout',
          'backend-down',
          'all',
        ]),
      )
      .option('--target <url>', 'the gateway', 'http://127.0.0.1:8080')
      .option('--key <key>', 'tenant key of the drill config', 'sk-drill-tenant')
      .option('--quota-key <key>', 'key of the drill tenant with a small daily quota', 'sk-drill-quota')
      .option('--admin-token <token>', 'admin token, for backend-down and all (env PORTICO_ADMIN_TOKEN)')
      .option('--sim-a <url>', 'simulator A', 'http://127.0.0.1:9101')
      .option('--sim-b <url>', 'simulator B', 'http://127.0.0.1:9102')
      .option('--json', 'one JSON line per drill')
      .action(act(async (c) => (await import('./drill.js')).drill(c.args[0] as string, c.opts(), io))),
    [
      'portico sim --port 9101 & portico sim --port 9102 &',
      'PORTICO_ADMIN_TOKEN=drill-admin portico start --config examples/drills/portico.yaml &',
      'portico drill all --admin-token drill-admin',
    ],
  ).addHelpText('after', '\nExit status: 0 when every drill passed, 1 otherwise. See docs/drills.md.\n');

  // ---- backup / restore ----
  example(
    program
      .command('backup')
      .description('online backup of the embedded store (SQLite); the gateway may keep running')
      .requiredOption('-o, --out <file>', 'the backup file to write (required)')
      .option(
        '--data-dir <dir>',
        "the store directory (default: --config's state.data_dir, else .portico-data)",
      )
      .option('-c, --config <file>', 'read state.data_dir from this config')
      .option('--json', 'print JSON')
      .action(act(async (c) => (await import('./backup.js')).backup(c.opts(), io))),
    ['portico backup --config portico.yaml --out backups/portico-$(date +%F).db'],
  );
  example(
    program
      .command('restore')
      .description('restore a backup into the store directory (the gateway must be stopped)')
      .argument('<file>', 'the backup file')
      .option(
        '--data-dir <dir>',
        "the store directory (default: --config's state.data_dir, else .portico-data)",
      )
      .option('-c, --config <file>', 'read state.data_dir from this config')
      .option('--force', 'replace an existing store')
      .action(act(async (c) => (await import('./backup.js')).restore(c.args[0] as string, c.opts(), io))),
    ['portico restore backups/portico-2026-12-01.db --config portico.yaml --force'],
  );

  // ---- completion ----
  example(
    program
      .command('completion')
      .description('print a shell completion script')
      .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
      .action(
        act(async (c) => {
          const { completionScript } = await import('./completion.js');
          io.out(completionScript(c.args[0] as 'bash' | 'zsh', program));
          return 0;
        }),
      ),
    ['source <(portico completion bash)', 'portico completion zsh > "${fpath[1]}/_portico"'],
  );

  return program;
}

/** Every command of the tree, depth first (the program itself first). */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/**
 * Parse and run. Returns the exit code (KEEP_RUNNING for servers). A usage error throws
 * UsageError carrying one line saying what is wrong plus the command's usage.
 */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  for (const cmd of allCommands(program)) {
    cmd
      .configureOutput({
        writeOut: (s) => io.out(s.replace(/\n$/, '')),
        writeErr: (s) => io.err(s.replace(/\n$/, '')),
        // The error itself is reported by whoever catches the UsageError below.
        outputError: () => undefined,
      })
      .showSuggestionAfterError(true)
      .exitOverride((err: CommanderError) => {
        if (err.exitCode === 0) throw err; // --help, --version
        if (err.code === 'commander.help') throw err; // a group without its subcommand: help shown
        throw new UsageError(withUsage(err.message.replace(/^error: /, ''), cmd));
      });
  }
  // `portico help bench run` = `portico bench run --help`.
  if (argv[0] === 'help' && argv.length > 1) argv = [...argv.slice(1), '--help'];
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      if (err.code === 'commander.help') return 2;
    }
    throw err;
  }
  return code;
}
