/**
 * A tiny OpenAI-compatible server for harness tests. The prompt steers it:
 *   "status:NNN" -> that HTTP status with an OpenAI error body; "sleep:MS" -> waits MS first;
 *   "garbage" -> 200 with a non-JSON body; anything else -> "ANSWER: <prompt>".
 * Model "judge" answers "4". `delayMs` adds a fixed latency to every answer (A/B variants).
 */
import Fastify, { type FastifyInstance } from 'fastify';

export interface FakeServer {
  url: string;
  requests: number;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

function lastUserContent(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const messages = (body as { messages?: unknown }).messages;
  if (!Array.isArray(messages)) return '';
  const last: unknown = messages[messages.length - 1];
  if (
    typeof last === 'object' &&
    last !== null &&
    typeof (last as { content?: unknown }).content === 'string'
  ) {
    return (last as { content: string }).content;
  }
  return '';
}

export async function startFakeOpenAI(opts: { delayMs?: number; name?: string } = {}): Promise<FakeServer> {
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  const state = { requests: 0 };
  const steer = async (prompt: string): Promise<{ status: number; raw?: string } | null> => {
    const sleepMatch = /sleep:(\d+)/.exec(prompt);
    if (sleepMatch) await sleep(Number(sleepMatch[1]));
    else if (opts.delayMs) await sleep(opts.delayMs);
    const statusMatch = /status:(\d{3})/.exec(prompt);
    if (statusMatch) return { status: Number(statusMatch[1]) };
    if (prompt.includes('garbage')) return { status: 200, raw: '<html>not json</html>' };
    return null;
  };
  const errorBody = (status: number) => ({
    error: { message: `fake error ${status}`, type: 'server_error', param: null, code: 'fake' },
  });

  app.post('/v1/chat/completions', async (req, reply) => {
    state.requests++;
    const body = req.body as { model?: string; stream?: boolean };
    const prompt = lastUserContent(body);
    const steered = await steer(prompt);
    if (steered && steered.status >= 400) return reply.code(steered.status).send(errorBody(steered.status));
    if (steered?.raw) return reply.code(200).type('text/html').send(steered.raw);
    const answer = body.model === 'judge' ? '4' : `ANSWER: ${prompt}`;
    const words = answer.split(/(?<= )/);
    if (body.stream) {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (const w of words) {
        res.write(
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model ?? 'fake', choices: [{ index: 0, delta: { content: w }, finish_reason: null }] })}\n\n`,
        );
      }
      res.write(
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model ?? 'fake', choices: [], usage: { prompt_tokens: 7, completion_tokens: words.length, total_tokens: 7 + words.length } })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
      return reply;
    }
    return {
      id: 'c1',
      object: 'chat.completion',
      model: body.model ?? 'fake',
      choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 7, completion_tokens: words.length, total_tokens: 7 + words.length },
    };
  });

  app.post('/api/:team/predict', async (req, reply) => {
    state.requests++;
    const { team } = req.params as { team: string };
    const body = req.body as { prompt?: string };
    const prompt = body.prompt ?? '';
    const steered = await steer(prompt);
    if (steered && steered.status >= 400) return reply.code(steered.status).send(errorBody(steered.status));
    return { team, text: `ANSWER: ${prompt}`, model: `${team}-model` };
  });

  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: address,
    get requests() {
      return state.requests;
    },
    close: () => app.close(),
  };
}
