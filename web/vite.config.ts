import { defineConfig } from "vitest/config";

// The gateway serves dist/ at /: hashed files under /assets/ are cached for a year,
// index.html never. `npm run dev` proxies the API and the WebSocket to a local gateway.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/wapi": "http://127.0.0.1:8080",
      "/web-config.json": "http://127.0.0.1:8080",
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
  test: { include: ["test/**/*.test.ts"] },
});
