// The app the source map tests bundle and minify with esbuild: run as `node dist/app.js DSN RELEASE`,
// it throws through three functions in two files and reports the error with @sentry/node, then prints
// the event id.
const Sentry = require("@sentry/node");
const { checkout } = require("./checkout");

const [dsn, release] = process.argv.slice(2);
Sentry.init({ dsn, release: release || undefined, sendClientReports: false, defaultIntegrations: false });

let eventId;
try {
  checkout({ items: [{ sku: "splat-1", quantity: 3 }] });
} catch (error) {
  eventId = Sentry.captureException(error);
}
Sentry.flush(5000).then(() => console.log(JSON.stringify({ event_id: eventId })));
