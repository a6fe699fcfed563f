//! UI sign-in through the router (no socket, no provider), as the UI Lambda runs it: the session secret
//! from the environment only, any instance accepting a cookie another one signed. The whole flow against
//! a real provider in a browser is `tests/ui/oidc.test.js`.

use axum::body::Body;
use axum::Router;
use http::Request;
use splat::config::{Config, SignInConfig};
use splat::web::auth::{Auth, SignedIn, Signer};
use splat::web::{router, WebState};
use splat_tests::*;

const SECRET: &str = "a session secret of at least 32 characters";

fn sign_in_config(extra: &[(&str, &str)]) -> SignInConfig {
    let mut vars = vec![
        // Nothing listens here: only /login/start and /auth/callback would talk to it.
        ("OIDC_DISCOVERY_URL", "http://127.0.0.1:9"),
        ("OIDC_CLIENT_ID", "splat"),
        ("OIDC_CLIENT_SECRET", "client secret"),
        ("SPLAT_ALLOWED_DOMAINS", "example.com"),
    ];
    vars.extend_from_slice(extra);
    Config::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
    .sign_in
}

/// The UI as the Lambda builds it: no data directory to keep a generated secret in.
fn ui(app: &TestApp, sign_in: &SignInConfig) -> Router {
    let state = WebState::new(app.store.clone(), app.queue.clone(), None, None)
        .with_auth(Auth::from_config(sign_in, None));
    router(state)
}

async fn get(router: &Router, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(router, req.body(Body::empty()).unwrap()).await
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    use tower::ServiceExt;
    Reply::read(router.clone().oneshot(req).await.unwrap()).await
}

fn session_cookie(email: &str, secret: &str, exp: i64) -> String {
    let user = SignedIn {
        email: email.into(),
        name: None,
    };
    let sealed = Signer::new(secret.as_bytes()).seal("splat_session", &user, exp);
    format!("splat_session={sealed}")
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

#[tokio::test]
async fn any_instance_accepts_a_session_signed_with_the_shared_secret() {
    let app = TestApp::new().await;
    let ui = ui(&app, &sign_in_config(&[("SPLAT_SESSION_SECRET", SECRET)]));
    let cookie = session_cookie("ada@example.com", SECRET, in_an_hour());
    let page = get(&ui, "/", &[("cookie", &cookie)]).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains("ada@example.com"),
        "the header names the user"
    );
    assert!(
        html.contains("action=\"/logout\""),
        "and offers to sign out"
    );

    // Another secret, an expired session, or a user no longer on the allowlist: sign in again.
    for (cookie, why) in [
        (
            session_cookie(
                "ada@example.com",
                "another secret, also long enough..",
                in_an_hour(),
            ),
            "another secret",
        ),
        (
            session_cookie("ada@example.com", SECRET, in_an_hour() - 7200),
            "expired",
        ),
        (
            session_cookie("eve@evil.test", SECRET, in_an_hour()),
            "not allowed",
        ),
    ] {
        let page = get(&ui, "/projects/default", &[("cookie", &cookie)]).await;
        assert_eq!(page.status, 303, "{why}");
        assert_eq!(
            page.header("location"),
            Some("/login/start?next=%2Fprojects%2Fdefault")
        );
    }
}

#[tokio::test]
async fn cookies_are_secure_over_https() {
    let app = TestApp::new().await;
    let ui = ui(&app, &sign_in_config(&[("SPLAT_SESSION_SECRET", SECRET)]));
    // Over https the session cookie carries the __Host- prefix (the browser then takes it only from a
    // secure page of this exact host).
    let stale = format!(
        "__Host-{}",
        session_cookie(
            "ada@example.com",
            "another secret, also long enough..",
            in_an_hour(),
        )
    );
    let page = get(
        &ui,
        "/",
        &[("cookie", &stale), ("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(page.status, 303);
    let cleared = page.header("set-cookie").unwrap();
    assert_eq!(
        cleared,
        "__Host-splat_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
    );
    // Signing out deletes the cookie the same way (a CSRF-checked form post).
    let csrf = "t".repeat(43);
    let req = Request::post("/logout")
        .header(
            "cookie",
            format!(
                "__Host-{}; splat_csrf={csrf}",
                session_cookie("ada@example.com", SECRET, in_an_hour())
            ),
        )
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    let out = send(&ui, req).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login?signed_out=1"));
    assert!(out
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with(
            "__Host-splat_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        )));
}

#[tokio::test]
async fn without_a_session_secret_the_lambda_refuses_its_ui() {
    let app = TestApp::new().await;
    let ui = ui(&app, &sign_in_config(&[]));
    let page = get(&ui, "/", &[]).await;
    assert_eq!(page.status, 500);
    assert!(page
        .body
        .as_str()
        .unwrap()
        .contains("SPLAT_SESSION_SECRET is not set"));
    // The stylesheet still loads, so the explanation is readable.
    let html = page.body.as_str().unwrap();
    let css = html
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert!(css.starts_with("/static/"), "{css}");
    assert_eq!(get(&ui, css, &[]).await.status, 200);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_502_and_pages_stay_closed() {
    let app = TestApp::new().await;
    let ui = ui(&app, &sign_in_config(&[("SPLAT_SESSION_SECRET", SECRET)]));
    let page = get(&ui, "/login/start?next=/", &[]).await;
    assert_eq!(page.status, 502);
    assert!(
        !page.body.as_str().unwrap().contains("127.0.0.1:9"),
        "the cause is logged, not shown"
    );
    assert_eq!(get(&ui, "/", &[]).await.status, 303);
}

/// The sign-in function's router (`splat-signin`, no database): only the two routes that talk to the
/// provider, behind CloudFront's origin secret, with the UI's security headers; no page of the UI.
#[tokio::test]
async fn the_sign_in_router_serves_sign_in_alone_behind_the_origin_secret() {
    use splat::web::auth::SignInState;
    let door = "cloudfront-only";
    let signin = splat::web::auth::router(SignInState {
        auth: Auth::from_config(&sign_in_config(&[("SPLAT_SESSION_SECRET", SECRET)]), None),
        public_url: None,
        origin_secret: Some(door.into()),
    });
    let through_cloudfront = [("x-splat-origin-secret", door)];
    assert_eq!(get(&signin, "/login/start?next=/", &[]).await.status, 403);
    // It talks to the provider (nothing listens at 127.0.0.1:9 here: 502), which the UI's pages never do.
    let start = get(&signin, "/login/start?next=/", &through_cloudfront).await;
    assert_eq!(start.status, 502);
    assert!(start.headers.contains_key("content-security-policy"));
    // A callback without the flow's cookie is refused before any provider call.
    let callback = get(
        &signin,
        "/auth/callback?code=x&state=y",
        &through_cloudfront,
    )
    .await;
    assert_eq!(callback.status, 400);
    for page in ["/", "/projects/default", "/settings", "/logout"] {
        assert_eq!(
            get(&signin, page, &through_cloudfront).await.status,
            404,
            "{page}"
        );
    }
}
