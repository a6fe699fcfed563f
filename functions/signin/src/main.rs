//! The sign-in Lambda, outside the VPC and without a database: CloudFront sends `/login/*` and `/auth/*`
//! here, where the OpenID provider is reachable (discovery, token exchange, JWKS). It issues the same
//! signed session cookie the UI function checks with the same `SPLAT_SESSION_SECRET`, so the UI, in the
//! VPC with no way to the internet, never talks to the provider.

use splat::config::Config;
use splat::web::auth::{router, Auth, SignInState};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    splat::init_tracing();
    // Routes start at `/`; no stage name may prefix them.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let config = Config::from_env()?;
    let auth = Auth::from_config(&config.sign_in, None);
    auth.log();
    let state = SignInState {
        auth,
        public_url: config.public_url.clone(),
        origin_secret: config.origin_secret.clone(),
    };
    lambda_http::run(router(state)).await
}
