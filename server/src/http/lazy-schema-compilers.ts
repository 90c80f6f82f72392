import AjvCompiler from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

/**
 * Fastify's own compilers (Ajv for requests, fast-json-stringify for responses), each route's
 * schema compiled on its first use instead of at start-up.
 *
 * Why: compiling every route's schemas up front took about 4 s of CPU on every start (the API has
 * some 150 routes, most with a response schema per status); a server, a test or a replica then
 * pays only for the routes it serves. The schemas are the generated ones from protocol/, checked
 * at build time, and `server/test/http/lazy-schema-compilers.test.ts` builds the app with the
 * eager compilers too, so a schema that does not compile still fails a test.
 */
export function lazySchemaCompilers(): NonNullable<FastifyServerOptions['schemaController']> {
  const buildValidator: ValidatorFactory = AjvCompiler();
  const buildSerializer: SerializerFactory = SerializerSelector();
  return {
    compilersFactory: {
      buildValidator: (...pool: Parameters<ValidatorFactory>) => {
        const compile = buildValidator(...pool);
        return (route: ValidatorRoute) => lazyValidator(() => compile(route));
      },
      buildSerializer: (...pool: Parameters<SerializerFactory>) => {
        const compile = buildSerializer(...pool);
        return (route: SerializerRoute) => lazySerializer(() => compile(route));
      },
    },
  };
}

type ValidatorFactory = ReturnType<typeof AjvCompiler>;
type ValidatorRoute = Parameters<ReturnType<ValidatorFactory>>[0];
type Validator = ReturnType<ReturnType<ValidatorFactory>>;
type SerializerFactory = ReturnType<typeof SerializerSelector>;
type SerializerRoute = Parameters<ReturnType<SerializerFactory>>[0];
type Serializer = ReturnType<ReturnType<SerializerFactory>>;

function lazyValidator(compile: () => Validator): Validator {
  let compiled: Validator | undefined;
  const validator = () => (compiled ??= compile());
  const validate = (data: unknown, context?: object) => validator()(data, context as never);
  // Fastify reads what Ajv puts on the function: `errors` after a failure, and `schemaEnv` to let
  // Ajv coerce a root value in place.
  Object.defineProperties(validate, {
    errors: { get: () => validator().errors },
    schemaEnv: { get: () => validator().schemaEnv },
  });
  return validate as Validator;
}

function lazySerializer(compile: () => Serializer): Serializer {
  let compiled: Serializer | undefined;
  return (document: unknown) => (compiled ??= compile())(document);
}
