import fs from 'node:fs';
import path from 'node:path';
import { call, uploadArtifact, type DvicApi, type Schemas } from '@dvic/client';
import { bytes } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { renderTable } from '../format/table.js';
import { timestamp } from '../format/timestamp.js';

type Artifact = Schemas['Artifact'];

const USAGE = `usage: dvic artifacts [list|upload|delete] ...

  dvic artifacts [list] [--json]
  dvic artifacts upload <file> --name NAME --version VERSION
                                     (streamed; the server computes size and sha256)
  dvic artifacts delete <artifact>   (id, id prefix, or name@version)

Deploy one with dvic deploy <artifact> ...`;

function table(list: Artifact[], ctx: Context): string {
  return renderTable(['ID', 'NAME', 'VERSION', 'SIZE', 'FORMAT', 'SHA256', 'UPLOADED'], list.map((a) => [
    a.id.slice(0, 8), a.name, a.version, { text: bytes(a.size), align: 'right' }, a.format, a.sha256.slice(0, 16), `${timestamp(a.created_at)} by ${a.created_by}`,
  ]), ctx.color);
}

/** An artifact by id, id prefix, name@version, or name (its newest version). */
export async function findArtifact(api: DvicApi, ref: string): Promise<Artifact> {
  const { artifacts: list } = await call(api.GET('/api/v1/artifacts'));
  const [name, version] = ref.split('@');
  const matches = list.filter((a) => a.id === ref).concat(list.filter((a) => a.id !== ref && a.id.startsWith(ref)))
    .concat(list.filter((a) => a.name === name && (version === undefined || a.version === version)));
  if (matches.length === 0) throw new CliError(`no artifact "${ref}" (dvic artifacts lists them)`);
  return matches[0]!;
}

export async function artifacts(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, name: { type: 'string' }, version: { type: 'string' } }, USAGE);
  if (values.help) return print(ctx, USAGE), 0;
  const [action = 'list', ref] = positionals;
  const server = connection(ctx);
  switch (action) {
    case 'list': {
      const { artifacts: list } = await call(server.api.GET('/api/v1/artifacts'));
      print(ctx, values.json ? JSON.stringify(list, null, 2) : list.length ? table(list, ctx) : 'No artifacts: upload one with dvic artifacts upload <file> --name N --version V.');
      return 0;
    }
    case 'upload': {
      if (!ref) throw new UsageError(`dvic artifacts upload needs a file\n${USAGE}`);
      const stat = fs.statSync(ref, { throwIfNoEntry: false });
      if (!stat?.isFile()) throw new CliError(`${ref} is not a file`);
      const name = (values.name as string | undefined) ?? path.basename(ref).replace(/\.(tar\.gz|tgz|zip)$/, '');
      if (!values.version) throw new UsageError(`give --version\n${USAGE}`);
      const token = server.authHeaders.authorization?.replace(/^Bearer /, '');
      const artifact = await uploadArtifact({ baseUrl: server.url, token }, { name, version: values.version as string },
        fs.createReadStream(ref) as unknown as Blob, stat.size);
      print(ctx, values.json ? JSON.stringify(artifact, null, 2) : `Uploaded ${artifact.name}@${artifact.version} (${bytes(artifact.size)}, ${artifact.format}) id ${artifact.id}\nsha256 ${artifact.sha256}`);
      return 0;
    }
    case 'delete': {
      if (!ref) throw new UsageError(`dvic artifacts delete needs an artifact\n${USAGE}`);
      const artifact = await findArtifact(server.api, ref);
      await call(server.api.DELETE('/api/v1/artifacts/{id}', { params: { path: { id: artifact.id } }, body: {} }));
      print(ctx, `Deleted ${artifact.name}@${artifact.version}`);
      return 0;
    }
    default: throw new UsageError(`unknown action "${action}"\n${USAGE}`);
  }
}
