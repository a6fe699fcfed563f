"""Sign-in as a browser does it, without a browser: the real OpenID provider of the UI checks (tests/ui/
oidc_provider.mjs, the certified `oidc-provider` package, whose development login form takes any login as
an account with that email), and a client that keeps cookies and follows redirects from the front to the
provider and back."""

import http.cookiejar
import re
import select
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness import stop

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID, CLIENT_SECRET = "splat", "splat-test-client-secret"  # oidc_provider.mjs's one client


class Provider:
    """`node tests/ui/oidc_provider.mjs` on a free loopback port, its client registered for `redirect_uri`."""

    def __init__(self, redirect_uri, log_path, timeout=30.0):
        self.log_path = Path(log_path)
        self.proc = subprocess.Popen(["node", str(ROOT / "tests" / "ui" / "oidc_provider.mjs")],
                                     env={"PATH": "/usr/local/bin:/usr/bin:/bin", "REDIRECT_URI": redirect_uri},
                                     stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if select.select([self.proc.stdout], [], [], 0.1)[0]:
                match = re.match(r"ISSUER (\S+)", self.proc.stdout.readline())
                if match:
                    self.issuer = match.group(1)
                    return
        self.stop()
        raise RuntimeError(f"the OpenID provider did not start (tests/setup installs it):\n{self.log_path.read_text()}")

    def stop(self):
        stop(self.proc)


class _FrontIsHttps(http.cookiejar.DefaultCookiePolicy):
    """Secure cookies go back over the front's plain http: the front stands for CloudFront's https."""

    def return_ok_secure(self, cookie, request):
        return True


class Browser:
    """Cookies (one jar, by host, as a browser keeps them) and redirects followed."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar(policy=_FrontIsHttps())
        cookies = urllib.request.HTTPCookieProcessor(self.jar)
        self.following = urllib.request.build_opener(cookies)
        self.staying = urllib.request.build_opener(cookies, _NoRedirect)

    def open(self, url, data=None, follow=True, headers=None):
        """(status, headers, body, final URL)."""
        opener = self.following if follow else self.staying
        try:
            with opener.open(urllib.request.Request(url, data=data, headers=headers or {}), timeout=60) as response:
                return response.status, response.headers, response.read().decode(), response.url
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode(), e.url

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)

    def sign_in(self, url, login):
        """Opens `url` on the front: the UI sends it to sign-in, the sign-in function to the provider, whose
        login form is filled in as `login`; the answer is what the browser lands on afterwards."""
        status, _, form, at = self.open(url)
        action = re.search(r'<form[^>]*action="([^"]+)"', form)
        assert status == 200 and action, f"no login form at {at} ({status}):\n{form[:2000]}"
        fields = urllib.parse.urlencode({"prompt": "login", "login": login, "password": "any password"})
        return self.open(urllib.parse.urljoin(at, action.group(1)), data=fields.encode())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
