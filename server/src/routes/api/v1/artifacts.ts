import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import type { StagedUpload } from '../../../services/artifact-store.js';
import { errors } from '../../../schemas/common.js';
import { ArtifactRef } from '../../../schemas/protocol-schemas.js';

const ArtifactQuery = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', description: 'Letters, digits, . _ - (no path)' }),
  version: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' }),
}, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

/** Upload bodies are streams handed from the content-type parser to the preHandler, never buffered. */
const uploads = new WeakMap<FastifyRequest, Readable>();
const staged = new WeakMap<FastifyRequest, StagedUpload>();

export const artifactsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { artifacts } = app;

  app.addContentTypeParser('application/octet-stream', (request, payload, done) => {
    uploads.set(request, payload);
    done(null, ''); // the body proper is the stream, read by the preHandler
  });

  app.post('/artifacts', {
    config: { role: 'operator', audit: 'artifact.upload', octetStream: true },
    schema: {
      tags: ['deploy'], summary: 'Upload an artifact: the raw bytes as application/octet-stream',
      description: 'Streamed to the data dir; the server computes size and sha256. Past DVIC_ARTIFACT_MAX_MB (or the store\'s DVIC_ARTIFACTS_MAX_MB) the answer is 413. A name and version pair is unique (409).',
      querystring: ArtifactQuery,
      body: { content: { 'application/octet-stream': { schema: { type: 'string', description: 'The raw bytes (streamed; shown here as empty)' } } } },
      response: { 201: Type.Object({ artifact: ArtifactRef }), ...errors(400, 401, 403, 409, 413, 415) },
    },
    preHandler: async (request) => {
      const length = request.headers['content-length'];
      await artifacts.checkDeclaredSize(length === undefined ? undefined : Number(length));
      const body = uploads.get(request);
      if (!body) throw new ApiError(415, ErrorCode.unsupportedMediaType, 'send the raw bytes with content-type: application/octet-stream');
      staged.set(request, await artifacts.stage(body));
    },
  }, async (request, reply) => {
    const upload = staged.get(request)!;
    reply.code(201);
    return { artifact: await artifacts.commit(upload, request.query.name, request.query.version, request.user!.username) };
  });

  app.get('/artifacts', {
    schema: {
      tags: ['deploy'], summary: 'Every artifact, newest first',
      response: { 200: Type.Object({ artifacts: Type.Array(ArtifactRef) }), ...errors(401) },
    },
  }, async () => ({ artifacts: await artifacts.list() }));

  app.get('/artifacts/:id', {
    schema: {
      tags: ['deploy'], summary: 'One artifact',
      params: IdParams, response: { 200: Type.Object({ artifact: ArtifactRef }), ...errors(401, 404) },
    },
  }, async (request) => ({ artifact: await artifacts.get(request.params.id) }));

  app.get('/artifacts/:id/download', {
    config: { role: 'operator' },
    schema: {
      tags: ['deploy'], summary: 'The artifact\'s bytes (application/octet-stream), streamed',
      params: IdParams, response: { 200: Type.Unsafe({ type: 'string', format: 'binary' }), ...errors(401, 403, 404) },
    },
  }, async (request, reply) => {
    const artifact = await artifacts.get(request.params.id);
    const file = `${artifact.name}-${artifact.version}${artifact.format === 'file' ? '' : `.${artifact.format}`}`;
    return reply.type('application/octet-stream').header('content-length', artifact.size)
      .header('content-disposition', `attachment; filename="${file}"`).header('x-sha256', artifact.sha256)
      .send(fs.createReadStream(artifacts.file(artifact.id)));
  });

  app.delete('/artifacts/:id', {
    config: { role: 'operator', audit: 'artifact.delete' },
    schema: {
      tags: ['deploy'], summary: 'Delete an artifact (not while a deployment uses it)',
      params: IdParams, response: { 200: Type.Object({ artifact: ArtifactRef }), ...errors(401, 403, 404, 409) },
    },
  }, async (request) => ({ artifact: await app.deployments.deleteArtifact(request.params.id) }));
};
