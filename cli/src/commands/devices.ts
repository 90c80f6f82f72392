import { call, type DvicApi, type Schemas } from '@dvic/client';
import { parse, parseLabels } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { renderTable, type Cell } from '../format/table.js';
import { timestamp } from '../format/timestamp.js';

type Device = Schemas['Device'];

const USAGE = `usage: dvic devices [list|add|pause|resume|remove|urls] ...

  dvic devices [list] [--json]
  dvic devices add <name> [--period 60] [--grace 30] [--label k=v ...] [--node <node>]
                                     (prints the token and its URLs: shown once)
  dvic devices pause <device>        (no late or down until its next ping or a resume)
  dvic devices resume <device>
  dvic devices remove <device>
  dvic devices urls <device> [--new-token]
                                     (the URLs with <token>; --new-token makes a new token, the old one stops)

A device is anything that pings without an agent (ESP32, cron job, script): docs/devices.md.`;

const STATUS_COLOR: Record<Device['status'], Cell['color']> = { up: 'green', late: 'yellow', down: 'red', new: undefined, paused: undefined };

/** The URLs a device can call, in the three shapes the server accepts. */
export function deviceUrls(base: string, token: string): string {
  return [
    `keepalive:    ${base}/api/v1/devices/${token}/keepalive      (POST, optional JSON body)`,
    `healthchecks: ${base}/ping/${token}   (/start, /fail, /log, /<exit status>)`,
    `uptime kuma:  ${base}/api/push/${token}?status=up&msg=OK&ping=`,
    `shell/cron:   curl -fsS -m 5 -X POST ${base}/api/v1/devices/${token}/keepalive`,
  ].join('\n');
}

function table(devices: Device[], ctx: Context): string {
  const rows = devices.map((d): (Cell | string)[] => [
    d.name, { text: d.status, color: STATUS_COLOR[d.status] }, d.last_seen ? timestamp(d.last_seen) : 'never', `${d.period_s}+${d.grace_s}s`,
    { text: String(d.ping_count), align: 'right' }, d.last_message ?? '',
  ]);
  return renderTable(['NAME', 'STATUS', 'LAST SEEN', 'PERIOD', 'PINGS', 'MESSAGE'], rows, ctx.color);
}

const byId = (id: string) => ({ params: { path: { id } } });

export async function devices(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' }, period: { type: 'string' }, grace: { type: 'string' }, label: { type: 'string', multiple: true },
    node: { type: 'string' }, 'new-token': { type: 'boolean' },
  }, USAGE);
  if (values.help) return print(ctx, USAGE), 0;
  const [action = 'list', name] = positionals;
  const { api, url } = connection(ctx);
  const needName = () => {
    if (!name) throw new UsageError(`dvic devices ${action} needs a device name or id`);
    return name;
  };
  switch (action) {
    case 'list': {
      const { devices: list } = await call(api.GET('/api/v1/devices'));
      print(ctx, values.json ? JSON.stringify(list, null, 2) : list.length ? table(list, ctx) : 'No devices: add one with dvic devices add <name>.');
      return 0;
    }
    case 'add': return add(api, url, needName(), values, ctx);
    case 'pause':
    case 'resume': {
      const { device } = await call(api.POST(`/api/v1/devices/{id}/${action}`, { ...byId(needName()), body: {} }));
      print(ctx, `${device.name}: ${device.status}`);
      return 0;
    }
    case 'remove':
      await call(api.DELETE('/api/v1/devices/{id}', { ...byId(needName()), body: {} }));
      print(ctx, `Removed ${name}`);
      return 0;
    case 'urls': {
      if (!values['new-token']) {
        await call(api.GET('/api/v1/devices/{id}', byId(needName())));
        print(ctx, `${deviceUrls(url, '<token>')}\n(the token was shown once; dvic devices urls ${name} --new-token makes a new one)`);
        return 0;
      }
      const { token } = await call(api.POST('/api/v1/devices/{id}/token', { ...byId(needName()), body: {} }));
      print(ctx, `token: ${token}   (shown once; the old one no longer works)\n${deviceUrls(url, token)}`);
      return 0;
    }
    default: throw new UsageError(`unknown action "${action}"\n${USAGE}`);
  }
}

function integer(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} must be a whole number of seconds`);
  return n;
}

async function add(api: DvicApi, url: string, name: string, values: Record<string, unknown>, ctx: Context): Promise<number> {
  const labels = parseLabels((values.label as string[] | undefined) ?? []) as Record<string, string>;
  const period = integer(values.period, '--period');
  const grace = integer(values.grace, '--grace');
  const body = {
    name, ...(period !== undefined ? { period_s: period } : {}), ...(grace !== undefined ? { grace_s: grace } : {}),
    ...(Object.keys(labels).length ? { labels } : {}), ...(values.node ? { node: values.node as string } : {}),
  };
  const { device, token } = await call(api.POST('/api/v1/devices', { body }));
  print(ctx, `Added ${device.name} (every ${device.period_s} s, grace ${device.grace_s} s)\ntoken: ${token}   (shown once)\n${deviceUrls(url, token)}`);
  return 0;
}
