// The browser app the Chromium source map check bundles and minifies with esbuild: it reads the DSN
// from the page's query string, throws through three functions in two files and reports the error with
// @sentry/browser; `window.sentEventId` tells the test it was sent.
import * as Sentry from "@sentry/browser";
// The same two files as the Node app (CommonJS; esbuild bundles them for the browser alike).
import { checkout } from "../app/checkout.js";

const dsn = new URLSearchParams(window.location.search).get("dsn");
Sentry.init({ dsn, defaultIntegrations: false, sendClientReports: false });

try {
  checkout({ items: [{ sku: "splat-1", quantity: 3 }] });
} catch (error) {
  const id = Sentry.captureException(error);
  Sentry.flush(5000).then(() => {
    window.sentEventId = id;
  });
}
