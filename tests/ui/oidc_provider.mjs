// A real OpenID provider for the sign-in checks: the certified `oidc-provider` package, with one client
// (Splat, confidential, PKCE required) and the package's development login form, where any login is an
// account whose email is that login. Consent is granted without asking (a first-party client).
//
// Run: REDIRECT_URI=http://127.0.0.1:PORT/auth/callback [CONFORM_ID_TOKEN_CLAIMS=1] node oidc_provider.mjs
// Prints `ISSUER <url>` once it listens on a free port of 127.0.0.1.
import http from "node:http";
import Provider from "oidc-provider";

export const CLIENT_ID = "splat";
export const CLIENT_SECRET = "splat-test-client-secret";

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    }],
    pkce: { required: () => true },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    // By default scope claims go into the ID token itself, as most providers do; CONFORM_ID_TOKEN_CLAIMS=1
    // keeps them for userinfo only (the package's own default, and some providers' behaviour).
    conformIdTokenClaims: process.env.CONFORM_ID_TOKEN_CLAIMS === "1",
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          // `silent@…` stands for providers that never send email_verified at all.
          const verified = id.startsWith("silent") ? {} : { email_verified: !id.startsWith("unverified") };
          return { sub: id, email: id, ...verified, name: id.split("@")[0] };
        },
      };
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope("openid email profile");
      await grant.save();
      return grant;
    },
  });
  server.on("request", provider.callback());
  console.log(`ISSUER ${issuer}`);
});
