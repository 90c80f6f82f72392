import type { Migration } from './migration.js';
import { migration as m0001 } from './0001-users-sessions-tokens-nodes.js';
import { migration as m0002 } from './0002-node-agent-config.js';
import { migration as m0003 } from './0003-log-records-and-demos.js';
import { migration as m0004 } from './0004-commands-and-audit.js';
import { migration as m0005 } from './0005-search-index-in-its-own-file.js';
import { migration as m0006 } from './0006-token-roles-and-user-state.js';
import { migration as m0007 } from './0007-demo-file-owner.js';
import { migration as m0008 } from './0008-devices.js';
import { migration as m0009 } from './0009-token-scope.js';
import { migration as m0010 } from './0010-enrollments.js';
import { migration as m0011 } from './0011-demo-identity.js';
import { migration as m0012 } from './0012-demo-actions.js';
import { migration as m0013 } from './0013-artifacts-and-deployments.js';
import { migration as m0014 } from './0014-alerts.js';
import { migration as m0015 } from './0015-agent-updates.js';
import { migration as m0016 } from './0016-leader-outbox.js';
import { migration as m0017 } from './0017-work-owner-replica.js';
import { migration as m0018 } from './0018-log-search-lexemes.js';
import { migration as m0019 } from './0019-log-search-blocks.js';
import { migration as m0020 } from './0020-demo-index-on-demo-lines.js';

export type { Migration };

/** Every migration, in order (a test checks that file names, versions and this list agree). */
export const migrations: Migration[] = [m0001, m0002, m0003, m0004, m0005, m0006, m0007, m0008, m0009, m0010, m0011, m0012, m0013, m0014, m0015, m0016, m0017, m0018, m0019, m0020];
