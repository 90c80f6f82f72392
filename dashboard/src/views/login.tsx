import { useState } from 'preact/hooks';
import type { UserView } from '@dvic/protocol/shared';
import { api, ApiError, call } from '../api/client.js';

/** A lockout says until when, in the reader's own time. */
function signInError(err: ApiError): string {
  const retryAt = err.details?.retry_at;
  if (err.code !== 'too_many_attempts' || !retryAt) return err.message;
  return `Too many failed sign-ins: try again at ${new Date(retryAt).toLocaleTimeString()} (in ${Math.max(1, Math.ceil((retryAt - Date.now()) / 60_000))} min).`;
}

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
      setError(err instanceof ApiError ? signInError(err) : 'sign-in failed');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">DVIC Demo Monitor</h1>
        {reason && <p class="banner warn" role="status">{reason}</p>}
        <label>User <input name="username" autocomplete="username" defaultValue="admin" required /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required autofocus /></label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
