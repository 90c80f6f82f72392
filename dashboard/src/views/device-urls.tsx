import { deviceUrls } from '../state/devices-store.js';

/** The URLs of a device in all three shapes and an Arduino snippet, each copyable. */
export function DeviceUrls({ token, periodS }: { token: string; periodS?: number }) {
  const urls = deviceUrls(location.origin, token, periodS);
  const rows: [string, string][] = [
    ['Keepalive (JSON body optional)', urls.keepalive], ['Healthchecks', urls.healthchecks], ['Uptime Kuma push', urls.kuma], ['Shell / cron', urls.curl],
  ];
  return (
    <div class="device-urls">
      {rows.map(([label, url]) => (
        <p key={label}><span class="muted">{label}</span> <code data-testid="device-url">{url}</code> <CopyButton text={url} /></p>
      ))}
      <p class="muted">Arduino (libs/arduino/DvicKeepalive) <CopyButton text={urls.arduino} /></p>
      <pre class="snippet" data-testid="arduino-snippet">{urls.arduino}</pre>
    </div>
  );
}

function CopyButton({ text }: { text: string }) {
  return <button type="button" onClick={() => void navigator.clipboard?.writeText(text).catch(() => undefined)}>Copy</button>;
}
