import { h, type ComponentChildren, type FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { UserView } from '@dvic/protocol/shared';
import { api, call, onUnauthorized } from './api/client.js';
import { Banners } from './components/banners.js';
import { navigate, onLink, usePath } from './router.js';
import { NodesContext, useLiveNodes } from './state/use-live.js';
import { AlertBadge } from './components/alert-badge.js';
import { Alerts } from './views/alerts.js';
import { AgentUpdates } from './views/agent-updates.js';
import { Audit } from './views/audit.js';
import { Commands } from './views/commands.js';
import { Devices } from './views/devices.js';
import { DemoPage } from './views/demo.js';
import { Demos } from './views/demos.js';
import { Deploy } from './views/deploy.js';
import { Login } from './views/login.js';
import { Logs } from './views/logs.js';
import { Overview } from './views/overview.js';
import { Users } from './views/users.js';
import { Wall } from './views/wall.js';

/**
 * A view loaded on first use: the terminal (xterm.js) and the charts (uPlot) are most of the
 * JavaScript, and the overview needs neither.
 */
function lazy<P extends object>(load: () => Promise<FunctionComponent<P>>): FunctionComponent<P> {
  let loaded: FunctionComponent<P> | null = null;
  return function Lazy(props: P) {
    const [, setReady] = useState(false);
    useEffect(() => { if (!loaded) void load().then((c) => { loaded = c; setReady(true); }); }, []);
    return loaded ? h(loaded, props) : <p class="muted">Loading…</p>;
  };
}

const NodeDetail = lazy(() => import('./views/node-detail.js').then((m) => m.NodeDetail));
const DeviceDetail = lazy(() => import('./views/device-detail.js').then((m) => m.DeviceDetail));
const MetricsCompare = lazy(() => import('./views/metrics-compare.js').then((m) => m.MetricsCompare));
const TerminalView = lazy(() => import('./views/terminal.js').then((m) => m.TerminalView));

type Auth = { state: 'checking' } | { state: 'out'; reason?: string } | { state: 'in'; user: UserView };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const path = usePath();
  useEffect(() => {
    signIn().then((user) => setAuth({ state: 'in', user })).catch(() => setAuth({ state: 'out' }));
    return onUnauthorized(() => setAuth({ state: 'out', reason: 'Your session has ended: sign in again.' }));
  }, []);
  const nodes = useLiveNodes(auth.state === 'in');

  if (auth.state === 'checking') return <p class="center muted">Loading…</p>;
  if (auth.state === 'out') return <Login reason={auth.reason} onSignedIn={(user) => setAuth({ state: 'in', user })} />;
  if (path === '/wall') return <NodesContext.Provider value={nodes}><Wall /></NodesContext.Provider>;
  const terminal = /^\/nodes\/([^/]+)\/terminal$/.exec(path);
  const node = /^\/nodes\/([^/]+)$/.exec(path);
  const device = /^\/devices\/([^/]+)$/.exec(path);
  const demo = /^\/demos\/([^/]+)$/.exec(path);
  return (
    <NodesContext.Provider value={nodes}>
      <Shell user={auth.user} onSignOut={() => call(api.POST('/api/v1/auth/logout', { body: {} })).finally(() => setAuth({ state: 'out' }))}>
        {terminal ? <TerminalView nodeId={terminal[1]!} />
          : node ? <NodeDetail nodeId={node[1]!} />
          : device ? <DeviceDetail deviceId={device[1]!} />
          : path === '/devices' ? <Devices />
          : demo ? <DemoPage demoId={demo[1]!} />
          : path === '/demos' ? <Demos />
          : path === '/logs' ? <Logs />
          : path === '/commands' ? <Commands />
          : path === '/deploy' ? <Deploy />
          : path === '/compare' ? <MetricsCompare />
          : path === '/audit' ? <Audit />
          : path === '/alerts' ? <Alerts />
          : path === '/users' ? <Users me={auth.user} />
          : path === '/updates' ? <AgentUpdates />
          : <Overview />}
      </Shell>
    </NodesContext.Provider>
  );
}

const LINKS = [['/', 'Nodes'], ['/demos', 'Demos'], ['/devices', 'Devices'], ['/logs', 'Logs'], ['/commands', 'Commands'], ['/deploy', 'Deploy'], ['/compare', 'Compare'], ['/audit', 'Audit'], ['/users', 'Users'], ['/updates', 'Updates'], ['/wall', 'Wall'], ['/alerts', 'Alerts']] as const;

function Shell({ user, onSignOut, children }: { user: UserView; onSignOut: () => void; children: ComponentChildren }) {
  const path = usePath();
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="/" onClick={(e) => onLink(e, '/')}>DVIC Demo Monitor</a>
        <nav aria-label="Main">
          {LINKS.map(([href, label]) => (
            <a key={href} href={href} aria-current={path === href ? 'page' : undefined} onClick={(e) => onLink(e, href)}>{label}{href === '/alerts' && <AlertBadge />}</a>
          ))}
        </nav>
        <span class="spacer" />
        <ThemeToggle />
        <span class="muted">{user.username}</span>
        <button type="button" onClick={onSignOut}>Sign out</button>
      </header>
      <Banners />
      <main>{children}</main>
    </div>
  );
}

/**
 * The signed-in user. A wall TV opens /wall?token=<viewer API token>: the token becomes an
 * HttpOnly cookie (POST /api/v1/auth/kiosk) and leaves the address bar.
 */
async function signIn(): Promise<UserView> {
  const token = location.pathname === '/wall' ? new URLSearchParams(location.search).get('token') : null;
  if (token) {
    history.replaceState(null, '', '/wall');
    return (await call(api.POST('/api/v1/auth/kiosk', { body: { token } }))).user;
  }
  return (await call(api.GET('/api/v1/auth/me'))).user;
}

export function ThemeToggle() {
  const [theme, setTheme] = useState(() => localStorage.getItem('dvic-theme') ?? 'auto');
  useEffect(() => {
    if (theme === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    localStorage.setItem('dvic-theme', theme);
  }, [theme]);
  const next = theme === 'auto' ? 'dark' : theme === 'dark' ? 'light' : 'auto';
  return <button type="button" onClick={() => setTheme(next)} title="Theme: auto, dark, light">Theme: {theme}</button>;
}

export { navigate };
