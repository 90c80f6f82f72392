import type { FastifyRequest } from 'fastify';
import type { Requester } from '../../../services/command-service.js';

/** Who asked, for the records a request starts (commands, agent updates). */
export const requester = (request: FastifyRequest): Requester => ({ userId: request.user!.id, username: request.user!.username, ip: request.ip });
