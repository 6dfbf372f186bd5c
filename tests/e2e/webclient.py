"""The recipient's side of the portal in the e2e test, run inside the
Internet namespace: follows the sign-up link from the notification over
HTTPS (the portal certificate verified), chooses a password, opens the
inbox and the message, and prints what it found. A scripted client with a
cookie jar (Chromium is not part of the e2e run).

usage: webclient.py SIGNUP_URL PORTAL_IP CA_FILE PASSWORD MARKER
"""

import html
import http.cookiejar
import re
import socket
import ssl
import sys
import urllib.parse
import urllib.request


def main():
    signup, ip, cafile, password, marker = sys.argv[1:6]
    host = urllib.parse.urlsplit(signup).hostname
    real = socket.getaddrinfo

    def resolve(name, *a, **kw):        # no DNS in the namespace
        return real(ip if name == host else name, *a, **kw)
    socket.getaddrinfo = resolve

    ctx = ssl.create_default_context(cafile=cafile)
    jar = http.cookiejar.CookieJar()
    web = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ctx),
        urllib.request.HTTPCookieProcessor(jar))
    base = f"https://{host}"

    def get(url):
        with web.open(url, timeout=30) as r:
            return r.geturl(), r.read().decode("utf-8", "replace")

    def post(url, fields):
        data = urllib.parse.urlencode(fields).encode()
        with web.open(url, data=data, timeout=60) as r:
            return r.geturl(), r.read().decode("utf-8", "replace")

    _, page = get(signup)
    form = dict((m.group(1), html.unescape(m.group(2))) for m in re.finditer(
        r'<input type="hidden" name="([^"]+)"\s+value="([^"]*)"', page))
    if "token" not in form:
        sys.exit(f"webclient: no sign-up form:\n{page}")
    form.update(password=password, confirm=password)
    url, page = post(base + "/signup", form)
    print(f"webclient: signed up, now at {urllib.parse.urlsplit(url).path}",
          flush=True)
    _, page = get(base + "/inbox")
    ids = re.findall(r'href="/message\?id=(\d+)"', page)
    if not ids:
        sys.exit(f"webclient: empty inbox:\n{page}")
    _, page = get(f"{base}/message?id={ids[0]}")
    found = marker in page
    if not found:
        # the body may be framed (sandboxed iframe)
        m = re.search(r'src="(/message/body\?[^"]+)"', page)
        if m:
            _, body = get(base + html.unescape(m.group(1)))
            found = marker in body
    print(f"webclient: message {ids[0]} read, marker "
          f"{'found' if found else 'missing'}", flush=True)
    sys.exit(0 if found else 1)


if __name__ == "__main__":
    main()
