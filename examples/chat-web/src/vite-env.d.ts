/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The chat server's origin, when it is not the page's. */
  readonly VITE_SERVER_URL?: string;
}
