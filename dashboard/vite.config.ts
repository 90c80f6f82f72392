import { defineConfig } from 'vite';

// Preact through the automatic JSX runtime; the server proxies nothing: in dev, run the server
// and open Vite's port, API calls go to /api on the same origin via the proxy below.
export default defineConfig({
  root: import.meta.dirname,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 400 },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8787', ws: true } } },
});
