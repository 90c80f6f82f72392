import { useEffect, useState } from 'preact/hooks';
import type { Schemas } from '@dvic/client';
import { api, ApiError, call } from '../api/client.js';
import { dateTime } from '../format.js';

type User = Schemas['User'];
type Role = User['role'];
const ROLES: Role[] = ['viewer', 'operator', 'admin'];

const messageOf = (err: unknown) => (err instanceof ApiError ? err.message : String(err));
const field = (form: HTMLFormElement, name: string) => String(new FormData(form).get(name) ?? '');

/** Users and roles: admins manage everyone; every user changes their own password here. */
export function Users({ me }: { me: { username: string; role: string } }) {
  return (
    <section aria-labelledby="users-title" class="users">
      <div class="toolbar"><h1 id="users-title">Users</h1></div>
      {me.role === 'admin' ? <UserAdmin me={me.username} /> : <p class="muted">Only admins manage users. You are {me.username} ({me.role}).</p>}
      <OwnPassword />
    </section>
  );
}

function UserAdmin({ me }: { me: string }) {
  const [users, setUsers] = useState<User[]>([]);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [resetting, setResetting] = useState<number | null>(null);
  const reload = () => call(api.GET('/api/v1/users')).then((r) => setUsers(r.users)).catch((e: unknown) => setError(messageOf(e)));
  useEffect(() => { void reload(); }, []);

  /** Runs a change, then shows what happened (or why not) and the list as it is now. */
  const change = async (done: string, request: () => Promise<unknown>) => {
    setError('');
    setNotice('');
    try {
      await request();
      setNotice(done);
    } catch (err) {
      setError(messageOf(err));
    }
    await reload();
  };
  const patch = (user: User, body: { role?: Role; disabled?: boolean }, done: string) =>
    change(done, () => call(api.PATCH('/api/v1/users/{id}', { params: { path: { id: user.id } }, body })));

  const add = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const username = field(form, 'username');
    void change(`Added ${username}`, async () => {
      await call(api.POST('/api/v1/users', { body: { username, password: field(form, 'password'), role: field(form, 'role') as Role } }));
      form.reset();
    });
  };
  const reset = (user: User) => (event: Event) => {
    event.preventDefault();
    const password = field(event.currentTarget as HTMLFormElement, 'password');
    void change(`New password set for ${user.username}: their sessions ended`, async () => {
      await call(api.POST('/api/v1/users/{id}/password', { params: { path: { id: user.id } }, body: { password } }));
      setResetting(null);
    });
  };
  const remove = (user: User) => {
    if (!confirm(`Remove ${user.username}? Their sessions and tokens end at once.`)) return;
    void change(`Removed ${user.username}`, () => call(api.DELETE('/api/v1/users/{id}', { params: { path: { id: user.id } }, body: {} })));
  };

  return (
    <>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="banner" role="status">{notice}</p>}
      <table class="users-table">
        <thead><tr><th>User</th><th>Role</th><th>State</th><th>Last sign-in</th><th>Created</th><th>Actions</th></tr></thead>
        <tbody>
          {users.map((user) => (
            <tr key={user.id} data-user={user.username} class={user.disabled ? 'disabled' : undefined}>
              <td>{user.username}{user.username === me && <span class="muted"> (you)</span>}</td>
              <td>
                <select aria-label={`Role of ${user.username}`} value={user.role}
                  onChange={(e) => patch(user, { role: (e.currentTarget as HTMLSelectElement).value as Role }, `${user.username} is now ${(e.currentTarget as HTMLSelectElement).value}`)}>
                  {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
                </select>
              </td>
              <td>{user.disabled ? 'disabled' : 'enabled'}</td>
              <td>{user.last_login_at === null ? 'never' : dateTime(user.last_login_at)}</td>
              <td>{dateTime(user.created_at)}</td>
              <td class="actions">
                <button type="button" onClick={() => patch(user, { disabled: !user.disabled }, `${user.disabled ? 'Enabled' : 'Disabled'} ${user.username}`)}>
                  {user.disabled ? 'Enable' : 'Disable'}
                </button>
                {resetting === user.id
                  ? (
                    <form class="inline" onSubmit={reset(user)}>
                      <label>New password for {user.username} <input name="password" type="password" autocomplete="new-password" minLength={8} required /></label>
                      <button type="submit" class="primary">Set</button>
                      <button type="button" onClick={() => setResetting(null)}>Cancel</button>
                    </form>
                  )
                  : <button type="button" onClick={() => setResetting(user.id)}>Reset password</button>}
                <button type="button" class="danger" onClick={() => remove(user)}>Remove</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="editor add-user" onSubmit={add} aria-label="Add a user">
        <h2>Add a user</h2>
        <label>Username <input name="username" required maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9_.@\-]*" /></label>
        <label>Password <input name="password" type="password" autocomplete="new-password" minLength={8} required /></label>
        <label>Role <select name="role">{ROLES.map((r) => <option key={r} value={r}>{r}</option>)}</select></label>
        <button type="submit" class="primary">Add</button>
      </form>
    </>
  );
}

function OwnPassword() {
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    setError('');
    setNotice('');
    if (field(form, 'new_password') !== field(form, 'again')) return setError('the two new passwords differ');
    try {
      await call(api.POST('/api/v1/auth/password', { body: { current_password: field(form, 'current_password'), new_password: field(form, 'new_password') } }));
      form.reset();
      setNotice('Password changed; your other sessions ended');
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <form class="editor own-password" onSubmit={submit} aria-label="Change your password">
      <h2>Your password</h2>
      <label>Current password <input name="current_password" type="password" autocomplete="current-password" required /></label>
      <label>New password <input name="new_password" type="password" autocomplete="new-password" minLength={8} required /></label>
      <label>New password again <input name="again" type="password" autocomplete="new-password" minLength={8} required /></label>
      <button type="submit" class="primary">Change password</button>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="banner" role="status">{notice}</p>}
    </form>
  );
}
