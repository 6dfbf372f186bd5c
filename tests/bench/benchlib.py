"""Building blocks of `make bench`: private instances of Postern's daemons
and of the reference tools (Postfix's smtp-source and smtp-sink, a
throw-away Postfix relay, Dovecot LMTP, nginx, wrk), each on loopback, on
a free port, under one temporary directory.

Every process started here is recorded, runs in its own session (its own
process group), and is stopped by stop_all(): on normal exit, on an
exception, on SIGINT/SIGTERM. The bench process makes itself a child
subreaper, so daemons that detach (Postfix's master) stay its descendants
and are reaped instead of lingering."""

import ctypes
import email
import email.policy
import http.client
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

_procs = []          # every Popen started, newest last
_cleanups = []       # callables run by stop_all, newest first
_lock = threading.Lock()


class Unavailable(Exception):
    """A reference tool or setup step is missing: the figure is n/a."""


def is_root():
    return os.geteuid() == 0


def become_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap():
    """Collects exited orphans (children adopted as subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def tool(name):
    """Absolute path of a reference tool, or Unavailable."""
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    p = shutil.which(name)
    if p:
        return p
    raise Unavailable(f"{name} is not installed (scripts/bench-deps.sh)")


_ports = set()


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports:
            _ports.add(port)
            return port


def wait_port(port, proc=None, timeout=30, what="server"):
    """Waits until something accepts on 127.0.0.1:port (a readiness probe:
    connects, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"{what} exited ({proc.returncode}) before "
                              f"listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise Unavailable(f"{what} does not listen on {port} after {timeout} s")


def spawn(argv, log, env=None, cwd=None):
    """Starts argv in its own session, output to the file log."""
    e = dict(os.environ)
    if env:
        e.update(env)
    with open(log, "ab") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=e, cwd=cwd,
                             start_new_session=True)
    with _lock:
        _procs.append(p)
    return p


def kill_group(pgid, timeout=10):
    """SIGTERM to a process group, SIGKILL to what is left after timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reap()
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def stop(p, timeout=10):
    if p is None:
        return
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # Children that outlived their leader are still in its group.
    kill_group(p.pid, timeout=2)
    try:
        p.wait(timeout=5)
    except (subprocess.TimeoutExpired, ChildProcessError):
        pass
    reap()


def on_cleanup(fn):
    with _lock:
        _cleanups.append(fn)
    return fn


def stop_all():
    with _lock:
        fns, _cleanups[:] = list(reversed(_cleanups)), []
        procs, _procs[:] = list(reversed(_procs)), []
    for fn in fns:
        try:
            fn()
        except Exception as e:          # keep stopping the rest
            print(f"bench: cleanup: {e}")
    for p in procs:
        try:
            stop(p, timeout=5)
        except Exception as e:
            print(f"bench: stopping {p.args[0]}: {e}")
    reap()


def install_signal_handlers():
    def handler(sig, frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def tail(path, n=8):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return " | ".join(lines[-n:])
    except OSError:
        return ""


# --- processes and memory ------------------------------------------------

def _ppid_map():
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            m[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return m


def tree(pid):
    """pid and all its descendants."""
    m = _ppid_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in m.items() if pp == p]
    return sorted(out)


def vmhwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pids):
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tck
        except (OSError, ValueError, IndexError):
            pass
    return total


# --- Postfix's smtp-sink and smtp-source -----------------------------------

class CountingSink:
    """Postfix's smtp-sink with -c: counts sessions and messages. A reader
    thread follows its counter line and notes when each count was
    reached, so a measurement can end when the last message arrived."""

    def __init__(self, work, name, lmtp=False):
        self.port = free_port()
        self.log = os.path.join(work, f"{name}.log")
        argv = [tool("smtp-sink"), "-c"]
        if lmtp:
            argv.append("-L")
        if is_root():
            argv += ["-u", "nobody"]
        argv += [f"127.0.0.1:{self.port}", "256"]
        self.mesg = 0
        self.sess = 0
        self.t_mesg = time.monotonic()
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        with _lock:
            _procs.append(self.proc)
        threading.Thread(target=self._reader, daemon=True).start()
        wait_port(self.port, self.proc, what="smtp-sink")

    def _reader(self):
        buf = b""
        rx = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                break
            now = time.monotonic()
            buf += chunk
            recs = re.split(rb"[\r\n]", buf)
            buf = recs.pop()
            last = None
            for r in recs:
                m = rx.search(r)
                if m:
                    last = m
            if last is None:
                continue
            with self.cond:
                sess, mesg = int(last.group(1)), int(last.group(2))
                if mesg != self.mesg:
                    self.t_mesg = now
                self.sess, self.mesg = sess, mesg
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def counts(self):
        with self.cond:
            return self.sess, self.mesg

    def wait_mesg(self, target, timeout):
        """Time at which mesg reached target, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.mesg < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.5))
            return self.t_mesg

    def stop(self):
        stop(self.proc)


def smtp_source(port, n, sessions, size=20480, lmtp=False,
                sender="alice@example.com", rcpt="ext@example.org",
                timeout=600):
    """Runs smtp-source; returns (t_start, t_end) or raises Unavailable
    with its complaint."""
    argv = [tool("smtp-source"), "-s", str(sessions), "-m", str(n),
            "-l", str(size), "-M", "bench.test", "-f", sender, "-t", rcpt]
    if lmtp:
        argv.append("-L")
    argv.append(f"127.0.0.1:{port}")
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, start_new_session=True)
    t1 = time.monotonic()
    if r.returncode != 0:
        out = (r.stderr or r.stdout).decode("utf-8", "replace").strip()
        raise Unavailable("smtp-source: " + (out.splitlines()[-1] if out
                                             else f"exit {r.returncode}"))
    return t0, t1


def relay_rate(sink, port, n, sessions, **kw):
    """n messages through whatever listens on port to sink; the time ends
    when the sink has the last one. Returns (msg/s, sink accepts)."""
    s0, m0 = sink.counts()
    t0, t1 = smtp_source(port, n, sessions, **kw)
    t_last = sink.wait_mesg(m0 + n, timeout=120)
    s1, m1 = sink.counts()
    if t_last is None:
        raise Unavailable(f"the sink got {m1 - m0} of {n} messages")
    return n / (max(t1, t_last) - t0), s1 - s0


# --- a private Postfix relay -------------------------------------------------

def system_postfix_state():
    """A sentence on the system's own Postfix, which is never touched."""
    pidfile = "/var/spool/postfix/pid/master.pid"
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return (f"the system's Postfix runs (master pid {pid}); left "
                "alone: the private instance has its own config, queue "
                "and port")
    except (OSError, ValueError, IndexError):
        return "the system's Postfix is not running; it is not started"


MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixRelay:
    """A throw-away Postfix instance (`postfix -c DIR`): its own main.cf and
    master.cf, queue and data directories under work, an smtpd on a
    loopback port, everything relayed to relayhost, no local delivery.
    Its defaults are Postfix's (queue files fsynced, connection cache to
    the relayhost on)."""

    def __init__(self, work, relay_port):
        if not is_root():
            raise Unavailable("a private Postfix needs root (its daemons "
                              "run as the postfix user)")
        for n in ("postfix", "postmulti"):
            tool(n)
        try:
            pwd.getpwnam("postfix")
            grp.getgrnam("postdrop")
        except KeyError:
            raise Unavailable("no postfix user or postdrop group "
                              "(the postfix package creates them)")
        self.dir = os.path.join(work, "postfix")
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        data = os.path.join(self.dir, "data")
        for d in (self.conf, self.queue, data):
            os.makedirs(d)
        os.chmod(self.dir, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.maillog = os.path.join(self.dir, "maillog")
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
config_directory = {self.conf}
queue_directory = {self.queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = {self.maillog}
maillog_file_prefixes = {self.dir}
myhostname = postfix.bench.test
mydomain = bench.test
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{relay_port}
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
message_size_limit = 0
biff = no
""")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        self.master = None
        on_cleanup(self.stop)
        r = subprocess.run([tool("postfix"), "-c", self.conf, "start"],
                           capture_output=True, text=True, timeout=60)
        self.master = self._master_pid()
        if r.returncode != 0 or self.master is None:
            raise Unavailable("postfix -c DIR start failed: "
                              + (r.stderr.strip() or tail(self.maillog, 3)))
        wait_port(self.port, what="the private Postfix")

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        pid = self.master or self._master_pid()
        subprocess.run([tool("postfix"), "-c", self.conf, "stop"],
                       capture_output=True, timeout=60)
        if pid:
            # The master is a session leader; its daemons share its group.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                reap()
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
            kill_group(pid, timeout=3)
        self.master = None
        reap()


# --- Dovecot LMTP -------------------------------------------------------------

class DovecotLmtp:
    """Dovecot 2.3 with only LMTP: a private config, base_dir, state and
    maildirs under work, a static userdb, a TCP listener on loopback.
    Started in the foreground (-F) as its own session."""

    def __init__(self, work):
        self.bin = tool("dovecot")
        if not os.path.exists("/usr/lib/dovecot/lmtp"):
            raise Unavailable("Dovecot's LMTP server is missing "
                              "(package dovecot-lmtpd)")
        self.dir = os.path.join(work, "dovecot")
        for d in ("run", "state", "mail"):
            os.makedirs(os.path.join(self.dir, d))
        os.chmod(self.dir, 0o755)
        if is_root():
            user, group = "nobody", grp.getgrgid(
                pwd.getpwnam("nobody").pw_gid).gr_name
            internal, login = "dovecot", "dovenull"
            try:
                pwd.getpwnam(internal)
                pwd.getpwnam(login)
            except KeyError:
                internal = login = "nobody"
            pw = pwd.getpwnam(user)
            os.chown(os.path.join(self.dir, "mail"), pw.pw_uid, pw.pw_gid)
        else:
            pw = pwd.getpwuid(os.getuid())
            user, group = pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name
            internal = login = user
        self.port = free_port()
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        mail = os.path.join(self.dir, "mail")
        with open(self.conf, "w") as f:
            f.write(f"""base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
instance_name = dovecot-bench
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{mail}/%n
mail_uid = {user}
mail_gid = {group}
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={mail}/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service anvil {{
  chroot =
}}
""")
        self.proc = spawn([self.bin, "-F", "-c", self.conf],
                          os.path.join(self.dir, "stdout.log"))
        on_cleanup(self.stop)
        try:
            wait_port(self.port, self.proc, what="dovecot")
        except Unavailable as e:
            raise Unavailable(f"{e}: {tail(self.log, 3)}")

    def stop(self):
        if self.proc.poll() is None:
            subprocess.run([self.bin, "-c", self.conf, "stop"],
                           capture_output=True, timeout=30)
        stop(self.proc)


# --- nginx and wrk --------------------------------------------------------------

class Nginx:
    """nginx serving the files of docroot over HTTPS with keep-alive, with
    the given certificate chain and key."""

    def __init__(self, work, docroot, cert, key):
        self.bin = tool("nginx")
        self.dir = os.path.join(work, "nginx")
        os.makedirs(os.path.join(self.dir, "tmp"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.log = os.path.join(self.dir, "error.log")
        t = os.path.join(self.dir, "tmp")
        with open(self.conf, "w") as f:
            f.write(f"""worker_processes auto;
pid {self.dir}/nginx.pid;
error_log {self.log} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path {t}/body;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  types {{ text/html html; application/octet-stream bin; }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {docroot};
  }}
}}
""")
        self.proc = spawn([self.bin, "-p", self.dir, "-c", self.conf,
                           "-g", "daemon off;"],
                          os.path.join(self.dir, "stdout.log"))
        on_cleanup(self.stop)
        try:
            wait_port(self.port, self.proc, what="nginx")
        except Unavailable as e:
            raise Unavailable(f"{e}: {tail(self.log, 3)} "
                              f"{tail(os.path.join(self.dir, 'stdout.log'))}")

    def stop(self):
        stop(self.proc)


def wrk(url, cookie=None, conns=16, threads=2, seconds=5):
    """req/s of wrk against url; Unavailable when wrk is missing or when
    the server answered anything but 2xx/3xx."""
    argv = [tool("wrk"), f"-c{conns}", f"-t{threads}", f"-d{seconds}s"]
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    argv.append(url)
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=seconds + 60, start_new_session=True)
    m = re.search(r"Requests/sec:\s*([\d.]+)", r.stdout)
    if r.returncode != 0 or not m:
        raise Unavailable("wrk: " + (r.stderr.strip() or r.stdout.strip()))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if bad:
        raise Unavailable(f"wrk: {bad.group(1)} answers were not 2xx/3xx")
    errs = re.search(r"Socket errors: (.*)", r.stdout)
    if errs and re.search(r"[1-9]", errs.group(1)):
        raise Unavailable(f"wrk: socket errors: {errs.group(1)}")
    return float(m.group(1))


def openssl_sign_rate(seconds=3):
    r = subprocess.run([tool("openssl"), "speed", "-seconds", str(seconds),
                        "rsa2048"], capture_output=True, text=True,
                       timeout=20 * seconds + 60)
    m = re.search(r"^rsa\s+2048 bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)",
                  r.stdout, re.M)
    if not m:
        raise Unavailable("openssl speed: no rsa 2048 line: "
                          + r.stderr.strip()[-200:])
    return float(m.group(1))


# --- HTTPS client for the portal -------------------------------------------

class Browser:
    """Keeps the portal's cookies across requests; one TLS connection per
    request, certificates not verified (loopback, a test PKI)."""

    def __init__(self, port):
        self.port = port
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.cookies = {}

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port,
                                        context=self.ctx, timeout=60)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = self.cookie_header()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, val = v.split(";")[0].split("=", 1)
                if "Max-Age=0" in v or val == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = val
        c.close()
        return r.status, r, data

    def get(self, path):
        st, r, data = self.request("GET", path)
        return st, r, data.decode("utf-8", "replace")

    def post(self, path, fields, page):
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        if m:
            fields = dict(fields, csrf=m.group(1))
        st, r, data = self.request(
            "POST", path, urllib.parse.urlencode(fields),
            {"Content-Type": "application/x-www-form-urlencoded"})
        return st, r, data.decode("utf-8", "replace")


def text_of(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    body = m.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


def sqlite_count(db, sql):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()
