import { defineConfig } from "vite";

// The example server (examples/chat-server) on its default address; `npm run
// dev` proxies the Socket.IO endpoint and the dev-token route to it.
const SERVER = process.env.CHAT_SERVER_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  // Relative asset URLs: the build works at `/` or under any sub-path.
  base: "./",
  build: { outDir: "dist", emptyOutDir: true },
  resolve: {
    // The generated modules live outside this folder; one copy of each.
    dedupe: ["react", "react-dom", "socket.io-client"],
  },
  server: {
    fs: { allow: ["../.."] },
    proxy: {
      "/socket.io": { target: SERVER, ws: true },
      "/dev": SERVER,
    },
  },
});
