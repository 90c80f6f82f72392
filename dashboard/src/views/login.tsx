import { useState } from 'preact/hooks';
import type { UserView } from '@dvic/protocol/shared';
import { api, ApiError, call } from '../api/client.js';

export function Login({ reason, onSignedIn }: { reason?: string; onSignedIn: (user: UserView) => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    setBusy(true);
    setError('');
    try {
      const { user } = await call(api.POST('/api/v1/auth/login', { body: { username: String(form.get('username')), password: String(form.get('password')) } }));
      onSignedIn(user);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'sign-in failed');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">DVIC Demo Monitor</h1>
        {reason && <p class="banner warn" role="status">{reason}</p>}
        <label>User <input name="username" autocomplete="username" value="admin" required /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required autofocus /></label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
