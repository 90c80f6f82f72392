import { storageBanner } from '../state/health.js';
import { useLiveStatus, useNodes } from '../state/use-live.js';

/** What the page must say above everything: the live connection is lost, the server's disk is full. */
export function Banners() {
  const status = useLiveStatus();
  const storage = storageBanner(useNodes().server);
  return (
    <>
      {status.state === 'lost' && <div class="banner bad" role="alert">⚠ Live connection lost ({status.detail}): retrying… (values below may be stale)</div>}
      {storage && <div class={`banner ${storage.tone}`} role="alert" data-testid="storage-banner">{storage.text}</div>}
    </>
  );
}
