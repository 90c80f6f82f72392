import { ApiError } from '@dvic/client';
import { describe, expect, it } from 'vitest';
import { apiErrorText } from '../src/api-error-text.js';

const URL = 'http://dvic.lab:8787';

describe('errors of the server, in one line', () => {
  it('gives the ids to choose from when a node reference matches several nodes', () => {
    const err = new ApiError(409, 'ambiguous', '"ab12" matches 2 nodes: pi-1, pi-2', {
      code: 'ambiguous', message: '', candidates: [{ id: 'ab12aaaa-0000-4000-8000-000000000001', name: 'pi-1' }, { id: 'ab12bbbb-0000-4000-8000-000000000002', name: 'pi-2' }],
    });
    expect(apiErrorText(err, URL)).toBe('"ab12" matches 2 nodes: pi-1, pi-2; give one of: ab12aaaa-0000-4000-8000-000000000001 (pi-1), ab12bbbb-0000-4000-8000-000000000002 (pi-2)');
  });

  it('says to sign in again on 401, and names the server it cannot reach', () => {
    expect(apiErrorText(new ApiError(401, 'unauthorized', 'the token was revoked'), URL)).toBe('the token was revoked: run dvic login');
    const unreachable = new ApiError(0, 'network', 'the server cannot be reached (ECONNREFUSED)', null, { cause: { code: 'ECONNREFUSED' } });
    expect(apiErrorText(unreachable, URL)).toBe('cannot reach http://dvic.lab:8787: ECONNREFUSED');
  });

  it('otherwise gives the server\'s message as it is', () => {
    expect(apiErrorText(new ApiError(409, 'node_offline', 'node "pi" is offline'), URL)).toBe('node "pi" is offline');
  });
});
