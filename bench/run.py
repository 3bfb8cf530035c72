"""`make bench`: wsgate against gunicorn (sync, gthread), uWSGI and granian, in the same run.

For each case, every server is started in turn on 127.0.0.1 with the same number of worker processes, awaited
until it answers, warmed up, loaded with wrk, measured (throughput, latency, RSS and CPU of its process tree) and
stopped. One table per case compares them; the issue's targets are checked at the end. docs/bench.md explains
the cases, the server command lines and how to read the output.

Standard library only; run with the project's .venv interpreter (the peers are installed there).
"""

import argparse
import datetime
import http.client
import http.cookies
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
VENV_BIN = os.path.dirname(sys.executable)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
HOST = "127.0.0.1"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, BENCH_DIR)
import wrkparse  # noqa: E402


NOISY_OTHERS_PCT = 50  # other processes' CPU (of 100% per core) past which a comparison is flagged as noisy


class Case:
    """One workload. `ready_path` is polled until it answers 2xx (default: `path`); `prepare` runs once per run
    before the case's first server; `login(port)` returns the headers wrk sends (a session cookie) and
    `marker` is a text the logged-in page must contain; `slow` = (path, connections) is loaded by a second wrk
    at the same time as `path`, whose latency is then the one reported. `per_worker` sets wrk's connections
    per worker process when --connections is not given, fewer for a slow page where 16 per worker would only
    measure a queue. `servers`: {name: argv function} when the case needs its own command lines (static);
    else SERVERS."""

    def __init__(self, name, title, app, path, script=None, ready_path=None, prepare=None, login=None,
                 marker=None, slow=None, per_worker=16, servers=None):
        self.name, self.title, self.app, self.path, self.script = name, title, app, path, script
        self.per_worker = per_worker
        self.ready_path = ready_path or path
        self.prepare, self.login, self.marker, self.slow = prepare, login, marker, slow
        self.headers = []  # set by login, once per run
        self.servers = servers

    def argv_functions(self):
        return self.servers or SERVERS


# --- the admin case: database and login ------------------------------------------------------------------------

ADMIN_USER, ADMIN_PASSWORD = "bench", "bench-password-not-secret"
ADMIN_CHANGELIST = "/admin/djadmin/book/"


def prepare_admin(opts):
    """A fresh SQLite database for bench/djadmin (`migrate`, 100 books, a superuser), the same for every server."""
    out = subprocess.run([sys.executable, "-m", "djadmin.setup", ADMIN_USER, ADMIN_PASSWORD], cwd=BENCH_DIR,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        raise ServerFailed("djadmin.setup failed: %s" % out.stdout.strip()[-600:])


def cookies_of(resp):
    jar = http.cookies.SimpleCookie()
    for header in resp.headers.get_all("Set-Cookie") or ():
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def admin_login(port):
    """Logs in through the admin's real login form (CSRF token and cookie, POST, redirect) and returns the
    Cookie header that makes wrk's requests those of a logged-in user."""
    login = "/admin/login/?" + urllib.parse.urlencode({"next": ADMIN_CHANGELIST})
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", login)
        resp = conn.getresponse()
        page = resp.read().decode("utf-8", "replace")
        csrf_cookie = cookies_of(resp).get("csrftoken")
        token = page.partition('name="csrfmiddlewaretoken" value="')[2].partition('"')[0]
        if resp.status != 200 or not csrf_cookie or not token:
            raise ServerFailed("admin login page: HTTP %d, csrftoken cookie %s, form token %s" % (
                resp.status, bool(csrf_cookie), bool(token)))
        form = urllib.parse.urlencode({"username": ADMIN_USER, "password": ADMIN_PASSWORD,
                                       "csrfmiddlewaretoken": token, "next": ADMIN_CHANGELIST})
        conn.request("POST", login, body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": "csrftoken=" + csrf_cookie})
        resp = conn.getresponse()
        resp.read()
        session = cookies_of(resp).get("sessionid")
        if resp.status != 302 or not session:
            raise ServerFailed("admin login: HTTP %d, sessionid cookie %s" % (resp.status, bool(session)))
    except (OSError, http.client.HTTPException) as e:
        raise ServerFailed("admin login: %s" % e)
    finally:
        conn.close()
    return ["Cookie: csrftoken=%s; sessionid=%s" % (csrf_cookie, session)]


def drain(case, port, timeout):
    """One GET of the ready path after the warm-up: it queues behind the requests wrk left unanswered when it
    stopped, so the measurement starts once the server has worked through them (seconds, for a slow page)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", case.ready_path, headers=dict(h.split(": ", 1) for h in case.headers))
        conn.getresponse().read()
    except (OSError, http.client.HTTPException) as e:
        raise ServerFailed("after the warm-up, %s did not answer: %s" % (case.ready_path, e))
    finally:
        conn.close()


def check_page(case, port):
    """GETs the case's page with its headers: it must answer 200 and contain `marker` (logged in, all rows).
    Returns the page's size in bytes, headers included, to compare with what wrk reads per request."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", case.path, headers=dict(h.split(": ", 1) for h in case.headers))
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or case.marker.encode() not in body:
            raise ServerFailed("%s answered HTTP %d without %r (not logged in?)" % (case.path, resp.status,
                                                                                    case.marker))
        return len(body) + sum(len(k) + len(v) + 4 for k, v in resp.getheaders())
    except (OSError, http.client.HTTPException) as e:
        raise ServerFailed("checking %s: %s" % (case.path, e))
    finally:
        conn.close()


CASES = {
    c.name: c
    for c in (
        Case("hello", "hello world (13-byte text response)", "benchapps:hello", "/"),
        Case("django", "Django view rendering a tiny template", "djbench.wsgi:application", "/"),
        Case("djadmin", "Django admin change list, 100 rows from SQLite, logged in (sessions, CSRF); 4 connections "
                        "per worker",
             "djadmin.wsgi:application", ADMIN_CHANGELIST, ready_path="/admin/login/", prepare=prepare_admin,
             login=admin_login, marker="Book number 099", per_worker=4),
        Case("big", "1 MiB response", "benchapps:big", "/big"),
        Case("upload", "10 MiB upload (POST, app reads all of wsgi.input)", "benchapps:upload", "/upload",
             script=os.path.join(BENCH_DIR, "upload.lua")),
        Case("mixed", "fast view (its p99) while a second wrk's 4 connections load a 200 ms view",
             "benchapps:mixed", "/fast",
             slow=("/slow", 4)),
        Case("static", "a 16 KiB stylesheet from disk, beside a WSGI app", "benchapps:hello", "/static/bench.css",
             servers={}),  # filled below, once the argv functions exist
    )
}


# --- the servers: each is started as its documentation recommends for production -------------------------------

def wsgate_argv(opts, app, port):
    return [opts.wsgate_bin, "serve", "--app", app, "--python", sys.executable, "--chdir", BENCH_DIR,
            "--bind", "%s:%d" % (HOST, port), "--workers", str(opts.workers)]


def wsgate_nolend_argv(opts, app, port):
    # Every request through the master (no lent connections): what a site with Go components on its routes gets.
    return wsgate_argv(opts, app, port) + ["--lend=false"]


def wsgate_chain_argv(opts, app, port, log_buffer="0"):
    # The same application behind bench/chain.ini's five Go components: its master CPU per request minus plain
    # wsgate's is what the chain costs (target: < 5 µs).
    module, _, name = app.partition(":")
    if module != "benchapps":
        raise ServerFailed("wsgate-chain serves bench/benchapps.py's callables only, not %s" % app)
    return [opts.wsgate_bin, "serve", os.path.join(BENCH_DIR, "chain.ini"), "--set", "chain_app=" + name,
            "--set", "chain_log_buffer=" + log_buffer, "--python", sys.executable, "--chdir", BENCH_DIR,
            "--bind", "%s:%d" % (HOST, port), "--workers", str(opts.workers)]


def wsgate_chain_buffered_argv(opts, app, port):
    # The same chain with the access log gathering lines (buffer = 64k): one write(2) for hundreds of lines.
    return wsgate_chain_argv(opts, app, port, log_buffer="64k")


def gunicorn_sync_argv(opts, app, port):
    return [os.path.join(VENV_BIN, "gunicorn"), "--worker-class", "sync", "--workers", str(opts.workers),
            "--bind", "%s:%d" % (HOST, port), "--chdir", BENCH_DIR, app]


def gunicorn_gthread_argv(opts, app, port):
    return [os.path.join(VENV_BIN, "gunicorn"), "--worker-class", "gthread", "--workers", str(opts.workers),
            "--threads", str(opts.gthread_threads), "--bind", "%s:%d" % (HOST, port), "--chdir", BENCH_DIR, app]


def uwsgi_argv(opts, app, port):
    # --http: uWSGI's own HTTP router process owns the client connections and talks to the workers over the
    # uwsgi protocol, which is what uWSGI documents for serving HTTP clients directly and the same shape as
    # wsgate's (a front process + workers). --http-socket makes each worker parse HTTP itself, with no
    # keep-alive: every wrk request would reconnect and count as a read error (see docs/bench.md).
    return [os.path.join(VENV_BIN, "uwsgi"), "--master", "--http", "%s:%d" % (HOST, port), "--http-keepalive",
            "--processes", str(opts.workers), "--chdir", BENCH_DIR, "--module", app,
            "--thunder-lock", "--disable-logging", "--need-app", "--die-on-term", "--strict"]


def uwsgi_socket_argv(opts, app, port):
    # uWSGI as its docs advise behind a front web server: the workers speak HTTP themselves. Reported for
    # reference (it is uWSGI's fastest raw mode); it closes every connection, which wrk counts as read errors.
    return [os.path.join(VENV_BIN, "uwsgi"), "--master", "--http-socket", "%s:%d" % (HOST, port),
            "--processes", str(opts.workers), "--thunder-lock", "--chdir", BENCH_DIR, "--module", app,
            "--disable-logging", "--need-app", "--die-on-term", "--strict"]


def granian_argv(opts, app, port):
    # One Python (blocking) thread per worker like the others; granian's WSGI default would be 256 of them.
    return [os.path.join(VENV_BIN, "granian"), "--interface", "wsgi", "--host", HOST, "--port", str(port),
            "--workers", str(opts.workers), "--blocking-threads", "1", "--no-ws", "--log-level", "warning",
            "--working-dir", BENCH_DIR, app]


# --- the static case: the same file under /static, served by each server's own static-file support -----------

STATIC_DIR = os.path.join(RESULTS_DIR, "static")
STATIC_FILES = os.path.join(STATIC_DIR, "files")
STATIC_SIZE = 16 * 1024


def prepare_static():
    """Writes the file the static case serves, and wsgate's configuration, under bench/results/static/."""
    os.makedirs(STATIC_FILES, exist_ok=True)
    line = b"body .bench { color: #123456; margin: 0 auto; } /* padding to a realistic stylesheet size */\n"
    with open(os.path.join(STATIC_FILES, "bench.css"), "wb") as f:
        f.write((line * (STATIC_SIZE // len(line) + 1))[:STATIC_SIZE])
    with open(os.path.join(STATIC_DIR, "site.ini"), "w") as f:
        f.write("# bench/run.py's static case: Paste's layout, served by wsgate's Go components\n"
                "[composite:main]\nuse = egg:Paste#urlmap\n/ = hello\n/static = static\n\n"
                "[app:hello]\nuse = call:benchapps:make_hello\n\n"
                "[app:static]\nuse = egg:wsgate#static\ndocument_root = %s\n" % STATIC_FILES)


def wsgate_static_argv(opts, app, port):
    return [opts.wsgate_bin, "serve", "--python", sys.executable, "--chdir", BENCH_DIR,
            "--bind", "%s:%d" % (HOST, port), "--workers", str(opts.workers), os.path.join(STATIC_DIR, "site.ini")]


def nginx_static_argv(opts, app, port):
    # nginx as Debian ships it, as a site would configure it for static files: sendfile, keep-alive without a
    # request limit (wsgate has none), no access log (as every server here), one worker process per --workers.
    prefix = os.path.join(STATIC_DIR, "nginx-%d" % port)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes %(workers)d;
pid %(prefix)s/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    server {
        listen %(host)s:%(port)d;
        location /static/ { alias %(files)s/; }
    }
}
""" % {"workers": opts.workers, "prefix": prefix, "host": HOST, "port": port, "files": STATIC_FILES})
    return ["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"]


def uwsgi_static_argv(opts, app, port):
    # uWSGI's documented way: --static-map (its workers send the file, behind the --http router).
    return uwsgi_argv(opts, app, port) + ["--static-map", "/static=" + STATIC_FILES]


def granian_static_argv(opts, app, port):
    return granian_argv(opts, app, port) + ["--static-path-route", "/static", "--static-path-mount", STATIC_FILES]


SERVERS = {
    "wsgate": wsgate_argv,
    "wsgate-nolend": wsgate_nolend_argv,
    "wsgate-chain": wsgate_chain_argv,
    "wsgate-chain-buffered": wsgate_chain_buffered_argv,
    "uwsgi": uwsgi_argv,
    "gunicorn-sync": gunicorn_sync_argv,
    "granian": granian_argv,
    "gunicorn-gthread": gunicorn_gthread_argv,
    "uwsgi-socket": uwsgi_socket_argv,
}
DEFAULT_ORDER = ["wsgate", "uwsgi", "gunicorn-sync", "granian", "gunicorn-gthread", "uwsgi-socket", "nginx"]
CASES["static"].servers.update({"wsgate": wsgate_static_argv, "nginx": nginx_static_argv,
                                "uwsgi": uwsgi_static_argv, "granian": granian_static_argv})
KNOWN_SERVERS = sorted(set(SERVERS) | set(CASES["static"].servers))


# --- /proc: the server's process tree, its RSS and CPU time ------------------------------------------------------

def read_stat(pid):
    """(ppid, rss_bytes, cpu_seconds) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is field 3 of proc(5): state; ppid=4, utime=14, stime=15, rss=24
    return int(fields[1]), int(fields[21]) * PAGE_SIZE, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid):
    """CPU seconds of a process's live threads, to the nanosecond (/proc/PID/task/TID/schedstat), or None.
    /proc/PID/stat counts in clock ticks (10 ms): a slow case's few requests would each carry a tick's error.
    A thread that exits takes its time along; the servers here keep their threads for their whole life."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid), "rb") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def process_tree(root):
    """{pid: (ppid, rss, cpu)} for root and all its descendants (cpu to the nanosecond where the kernel tells)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st:
                stats[int(entry)] = st
    tree, todo = {}, [root]
    children = {}
    for pid, st in stats.items():
        children.setdefault(st[0], []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in tree:
            ppid, rss, cpu = stats[pid]
            precise = thread_cpu_seconds(pid)
            tree[pid] = (ppid, rss, cpu if precise is None else precise)
            todo.extend(children.get(pid, ()))
    return tree


class Sampler(threading.Thread):
    """Samples the RSS of the master (the process we started) and of the rest of its tree until stopped."""

    def __init__(self, root, interval=0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.master_peak = self.workers_peak = 0
        self.samples = 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def sample(self):
        tree = process_tree(self.root)
        if self.root in tree:
            self.master_peak = max(self.master_peak, tree[self.root][1])
        self.workers_peak = max(self.workers_peak, sum(st[1] for pid, st in tree.items() if pid != self.root))
        self.samples += 1

    def stop(self):
        self._done.set()
        self.join()
        self.sample()


def busy_cpu_seconds():
    """CPU seconds all CPUs of the machine have spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user and nice
    return (sum(fields) - idle - guest) / CLOCK_TICKS


def children_cpu_seconds():
    """CPU seconds of our reaped children (wrk runs are the only ones reaped during a measurement)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_split(root, before, after):
    """CPU seconds used between two process_tree snapshots: (master, workers)."""
    master = after.get(root, (0, 0, 0))[2] - before.get(root, (0, 0, 0))[2]
    workers = sum(st[2] - before.get(pid, (0, 0, 0))[2] for pid, st in after.items() if pid != root)
    return master, workers


# --- running one server ------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ServerFailed(Exception):
    pass


def log_tail(path, lines=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).strip()
    except OSError:
        return ""


def wait_ready(proc, port, path, log_path, timeout):
    """Polls the port with GET requests until the application answers 2xx (the server has loaded it)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed("exited with status %s before answering: %s" % (proc.returncode, log_tail(log_path)))
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if 200 <= resp.status < 300:
                return
            last = "HTTP %d" % resp.status
        except OSError as e:
            last = str(e) or type(e).__name__
        except http.client.HTTPException as e:
            last = "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
        time.sleep(0.05)
    raise ServerFailed("not ready after %ss (%s): %s" % (timeout, last, log_tail(log_path)))


def stop(proc, grace=15):
    """SIGTERM (every server here drains on it), then SIGKILL the process group we created if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: leftovers of this server only
    except ProcessLookupError:
        pass
    proc.wait()


def case_connections(opts, case):
    """wrk's connections: --connections, else the case's number per worker times --workers (32 for 2 workers)."""
    return opts.connections or case.per_worker * opts.workers


def wrk_argv(opts, case, port, duration, path=None, connections=None, threads=None):
    connections = connections or case_connections(opts, case)
    argv = ["wrk", "-t%d" % (threads or opts.wrk_threads), "-c%d" % connections,
            "-d%ds" % duration, "--latency", "--timeout", "%ds" % opts.wrk_timeout]
    for header in case.headers:
        argv += ["-H", header]
    if case.script:
        argv += ["-s", case.script]
    argv.append("http://%s:%d%s" % (HOST, port, path or case.path))
    return argv


def wrk(opts, case, port, duration):
    out = subprocess.run(wrk_argv(opts, case, port, duration), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    return out.stdout


def load(opts, case, port, duration):
    """wrk on the case's path; for a case with a slow path, a second wrk on it over the same seconds, its
    connections taken from the total. Returns (text, slow text or None)."""
    if not case.slow:
        return wrk(opts, case, port, duration), None
    slow_path, slow_connections = case.slow
    slow = subprocess.Popen(wrk_argv(opts, case, port, duration, slow_path, slow_connections, threads=1),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        fast = subprocess.run(wrk_argv(opts, case, port, duration,
                                       connections=max(1, case_connections(opts, case) - slow_connections)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    finally:
        slow_text = slow.communicate()[0]
    return fast, slow_text


def run_one(opts, case, server, log_dir):
    port = free_port()
    log_path = os.path.join(log_dir, "%s-%s.log" % (case.name, server))
    result = {"case": case.name, "server": server, "log": log_path}
    try:
        argv = case.argv_functions()[server](opts, case.app, port)
    except ServerFailed as e:
        result["failed"] = str(e)
        return result
    result["argv"] = argv
    result["master_cores"] = master_cores(server)
    result["connections"] = case_connections(opts, case)
    try:
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, cwd=BENCH_DIR, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:  # e.g. the peer is not installed in the interpreter's environment
        result["failed"] = "cannot start %s: %s" % (argv[0], e)
        return result
    try:
        started = time.monotonic()
        wait_ready(proc, port, case.ready_path, log_path, opts.ready_timeout)
        result["ready_s"] = round(time.monotonic() - started, 2)
        if case.login and not case.headers:
            case.headers = case.login(port)  # once per run: the same session for every server
        if case.marker:
            result["page_bytes"] = check_page(case, port)
        idle = process_tree(proc.pid)
        result["master_idle_mb"] = idle.get(proc.pid, (0, 0, 0))[1] / 2**20
        result["processes"] = len(idle)
        sampler = Sampler(proc.pid)
        sampler.start()
        if opts.warmup > 0:
            load(opts, case, port, opts.warmup)
            drain(case, port, opts.wrk_timeout * 3)
        before = process_tree(proc.pid)
        result["loadavg"] = open("/proc/loadavg").read().split()[0]
        busy0, wrk0 = busy_cpu_seconds(), children_cpu_seconds()
        text, slow_text = load(opts, case, port, opts.duration)
        busy1, wrk1 = busy_cpu_seconds(), children_cpu_seconds()
        after = process_tree(proc.pid)
        sampler.stop()
        try:
            result.update(wrkparse.parse(text))
            if slow_text is not None:
                slow = wrkparse.parse(slow_text)
                result["slow"] = {k: slow[k] for k in ("rps", "requests", "p50_ms", "p99_ms", "non2xx")}
                result["slow"]["errors"] = slow["errors"]["total"]
        except wrkparse.WrkParseError as e:
            raise ServerFailed(str(e))
        if result["requests"] == 0:
            raise ServerFailed("no request completed in %d s (a longer --duration?)" % opts.duration)
        if case.marker and result["bytes_read"] < 0.9 * result["page_bytes"] * result["requests"]:
            raise ServerFailed("wrk read %.0f bytes per response, the logged-in page is %d: it was not served" % (
                result["bytes_read"] / max(1, result["requests"]), result["page_bytes"]))
        served = result["requests"] + result.get("slow", {}).get("requests", 0)
        master_cpu, workers_cpu = cpu_split(proc.pid, before, after)
        result["master_cpu_pct"] = 100.0 * master_cpu / result["seconds"]
        result["workers_cpu_pct"] = 100.0 * workers_cpu / result["seconds"]
        result["wrk_cpu_pct"] = 100.0 * (wrk1 - wrk0) / result["seconds"]
        # CPU per request hardly depends on how many cycles others left us: the steadiest figure of a noisy run
        result["cpu_us_per_req"] = 1e6 * (master_cpu + workers_cpu) / max(1, served)
        result["master_us_per_req"] = 1e6 * master_cpu / max(1, served)
        result["workers_us_per_req"] = 1e6 * workers_cpu / max(1, served)
        # everything else the machine did meanwhile: other people's builds and tests, this script
        result["other_cpu_pct"] = max(0.0, 100.0 * ((busy1 - busy0) - (wrk1 - wrk0) - master_cpu - workers_cpu)
                                      / result["seconds"])
        result["master_peak_mb"] = sampler.master_peak / 2**20
        result["workers_peak_mb"] = sampler.workers_peak / 2**20
        result["master_growth_mb"] = result["master_peak_mb"] - result["master_idle_mb"]
        if proc.poll() is not None:
            raise ServerFailed("exited with status %s during the run: %s" % (proc.returncode, log_tail(log_path)))
    except ServerFailed as e:
        result["failed"] = str(e)
    finally:
        stop(proc)
    return result


# --- profile mode: where wsgate's time goes ---------------------------------------------------------------------

def start_wsgate(opts, app, port, log_path, env=None):
    argv = wsgate_argv(opts, app, port)
    with open(log_path, "w") as log:
        return subprocess.Popen(argv, cwd=BENCH_DIR, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=dict(os.environ, **(env or {})))


def run_profile(opts, case, out_dir):
    """Two runs of wsgate under wrk: (1) a Go CPU profile of the master (WSGATE_PPROF) and a system-wide perf
    sample split by process, (2) the same load with cProfile inside each worker. Prints the top of each."""
    import urllib.request

    print("\n== profile: %s (%s), wsgate %d workers, wrk -t%d -c%d -d%ds" % (
        case.name, case.title, opts.workers, opts.wrk_threads, case_connections(opts, case), opts.duration))
    # (1) the master: pprof over HTTP while wrk runs; perf for the CPU split between processes
    port, pprof_port = free_port(), free_port()
    log_path = os.path.join(out_dir, "%s-master.log" % case.name)
    proc = start_wsgate(opts, case.app, port, log_path, {"WSGATE_PPROF": "%s:%d" % (HOST, pprof_port)})
    pprof_path = os.path.join(out_dir, "%s-master.pprof" % case.name)
    perf_path = os.path.join(out_dir, "%s-perf.data" % case.name)
    perf = None
    try:
        wait_ready(proc, port, case.ready_path, log_path, opts.ready_timeout)
        if case.login and not case.headers:
            case.headers = case.login(port)
        wrk(opts, case, port, opts.warmup or 1)
        seconds = max(1, opts.duration - 1)
        counters = []
        if shutil.which("perf"):
            perf = subprocess.Popen(["perf", "record", "-a", "-e", "cpu-clock", "-F", "499", "-o", perf_path],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            workers = [pid for pid, st in process_tree(proc.pid).items() if st[0] == proc.pid]
            for label, pid in [("master", proc.pid)] + [("worker", pid) for pid in workers[:1]]:
                counters.append((label, subprocess.Popen(
                    ["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter,context-switches", "-p", str(pid),
                     "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
        report = {}
        load = threading.Thread(target=lambda: report.update(text=wrk(opts, case, port, opts.duration)))
        load.start()
        url = "http://%s:%d/debug/pprof/profile?seconds=%d" % (HOST, pprof_port, seconds)
        with urllib.request.urlopen(url, timeout=seconds + 30) as resp, open(pprof_path, "wb") as f:
            f.write(resp.read())
        load.join()
        print(summarize_wrk(report["text"]))
        rps = wrkparse.parse(report["text"])["rps"]
        for label, counter in counters:
            counts = {}
            for line in counter.communicate()[1].splitlines():
                fields = line.split(",")
                if len(fields) > 2 and fields[0].isdigit():
                    counts[fields[2]] = int(fields[0])
            per = rps * seconds / (1 if label == "master" else opts.workers)
            if per and counts:
                print("  %s: %.1f syscalls and %.1f context switches per request (perf stat, %d s)" % (
                    label, counts.get("raw_syscalls:sys_enter", 0) / per, counts.get("context-switches", 0) / per,
                    seconds))
    except (ServerFailed, OSError, wrkparse.WrkParseError) as e:
        print("  master profile failed: %s" % e)
        pprof_path = None
    finally:
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        stop(proc)
    if pprof_path:
        print("\n-- Go CPU profile of the master (%s): top functions by flat time" % os.path.relpath(pprof_path))
        out = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=%d" % opts.profile_top, opts.wsgate_bin,
                              pprof_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(out.stdout.rstrip())
        print("\n-- the same profile by cumulative time (what calls the syscalls)")
        out = subprocess.run(["go", "tool", "pprof", "-top", "-cum", "-nodecount=%d" % opts.profile_top,
                              opts.wsgate_bin, pprof_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print("\n".join(out.stdout.rstrip().splitlines()[5:]))
    if perf:
        print("\n-- CPU split between processes during the run (perf, all CPUs; idle is the rest)")
        out = subprocess.run(["perf", "report", "-i", perf_path, "--stdio", "--sort", "comm", "--percent-limit", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        print("\n".join(line for line in out.stdout.splitlines() if line.strip() and not line.startswith("#")))
        print("\n-- where the master's own samples land (perf: share of its samples, by shared object and symbol)")
        comm = os.path.basename(opts.wsgate_bin)[:15]  # the kernel keeps 15 characters of a command name
        out = subprocess.run(["perf", "report", "-i", perf_path, "--stdio", "--comms", comm,
                              "--sort", "dso,sym", "--percentage", "relative", "--percent-limit", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        print("\n".join(line for line in out.stdout.splitlines() if line.strip() and not line.startswith("#")))
    # (2) the workers: cProfile inside, same load
    port = free_port()
    log_path = os.path.join(out_dir, "%s-workers.log" % case.name)
    for old in os.listdir(out_dir):
        if old.startswith("worker-") and old.endswith(".prof"):
            os.unlink(os.path.join(out_dir, old))
    proc = start_wsgate(opts, "benchprofile:app", port, log_path,
                        {"BENCH_PROFILE_TARGET": case.app, "BENCH_PROFILE_DIR": out_dir})
    dumps = set()
    try:
        wait_ready(proc, port, case.ready_path, log_path, opts.ready_timeout)
        if case.login and not case.headers:
            case.headers = case.login(port)
        print("\n-- under cProfile (slower):", summarize_wrk(wrk(opts, case, port, opts.duration)))
        for _ in range(4 * opts.workers):
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            conn.request("GET", "/__cprofile/dump")
            dumps.add(conn.getresponse().read().decode().strip())
            conn.close()
    except (ServerFailed, OSError, http.client.HTTPException) as e:
        print("  worker profile failed: %s" % e)
    finally:
        stop(proc)
    if dumps:
        import pstats

        first = sorted(dumps)[0]
        print("\n-- cProfile of one worker (%s), top %d by own time" % (os.path.relpath(first), opts.profile_top))
        stats = pstats.Stats(first)
        stats.sort_stats("tottime").print_stats(opts.profile_top)
        stats.sort_stats("cumulative").print_stats(12)


def summarize_wrk(text):
    try:
        r = wrkparse.parse(text)
    except wrkparse.WrkParseError as e:
        return "wrk: %s" % e
    return "%.0f rps, p50 %s, p99 %s, socket errors %d, non-2xx %d" % (
        r["rps"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), r["errors"]["total"], r["non2xx"])


# --- output ------------------------------------------------------------------------------------------------------

def median_result(runs):
    """One result per server out of several rounds: medians of the rates and latencies, peaks of the memory."""
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return runs[-1]
    merged = dict(ok[0])
    for key in ("rps", "p50_ms", "p99_ms", "avg_ms", "master_cpu_pct", "workers_cpu_pct", "wrk_cpu_pct",
                "other_cpu_pct"):
        merged[key] = statistics.median(r[key] for r in ok)
    # CPU per request and its split from one round, the one with the median total, so master + workers add up
    middle = sorted(ok, key=lambda r: r["cpu_us_per_req"])[(len(ok) - 1) // 2]
    for key in ("cpu_us_per_req", "master_us_per_req", "workers_us_per_req"):
        merged[key] = middle[key]
    for key in ("master_peak_mb", "workers_peak_mb", "master_growth_mb"):
        merged[key] = max(r[key] for r in ok)
    merged["requests"] = sum(r["requests"] for r in ok)
    merged["non2xx"] = sum(r["non2xx"] for r in ok)
    merged["errors"] = {"total": sum(r["errors"]["total"] for r in ok)}
    if "slow" in merged:
        merged["slow"] = {key: statistics.median(r["slow"][key] for r in ok) for key in ("rps", "p50_ms", "p99_ms")}
        for key in ("requests", "non2xx", "errors"):
            merged["slow"][key] = sum(r["slow"][key] for r in ok)
    merged["rounds"] = [{k: r.get(k) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "master_us_per_req",
                                               "workers_us_per_req", "other_cpu_pct", "failed")}
                        for r in runs]
    merged["rounds_ok"] = len(ok)
    return merged


def noisy(r):
    """True when the rest of the machine took much CPU while this row was measured (median of its rounds)."""
    return r.get("other_cpu_pct", 0) > NOISY_OTHERS_PCT


def cpu_per_req(r):
    """The whole server's CPU per request and its split: '56 µs (30 + 26)' = master + workers."""
    return "%.0f µs (%.0f + %.0f)" % (r["cpu_us_per_req"], r["master_us_per_req"], r["workers_us_per_req"])


def master_cores(server):
    """How many cores a master can use at most: wsgate's Go master runs max(1, cores/4) threads unless
    GOMAXPROCS says otherwise (cmd/wsgate/serve.go); None for the other servers."""
    if not server.startswith("wsgate"):
        return None
    env = os.environ.get("GOMAXPROCS", "")
    return int(env) if env.isdigit() and int(env) > 0 else max(1, (os.cpu_count() or 1) // 4)


def master_lines(results):
    """For every wsgate row: the master's CPU per request, what rate it alone would saturate at, and whether it
    was the ceiling in this run (its CPU near all the cores it may use)."""
    lines = []
    for name, r in results.items():
        cores = r.get("master_cores")
        if cores is None or "failed" in r or not r["master_us_per_req"]:
            continue
        ceiling = 1e6 * cores / r["master_us_per_req"]
        verdict = ("THE MASTER WAS THE CEILING" if r["master_cpu_pct"] >= 90 * cores
                   else "the master was not the ceiling")
        lines.append("%s master: %.1f µs of CPU per request, %.0f%% of a core (it may use %d): alone it would "
                     "saturate at ~%.0f rps; %s" % (name, r["master_us_per_req"], r["master_cpu_pct"], cores,
                                                    ceiling, verdict))
    return lines


def slow_lines(results):
    """The mixed case's second load: what the slow view's connections got meanwhile."""
    return ["%s: slow view %.1f rps, p99 %s, errors %d / %d" % (
        name, r["slow"]["rps"], fmt_ms(r["slow"]["p99_ms"]), r["slow"]["errors"], r["slow"]["non2xx"])
        for name, r in results.items() if "failed" not in r and "slow" in r]


def fmt_ms(ms):
    return "%.2fms" % ms if ms < 100 else "%.0fms" % ms


def print_table(case, results, out=sys.stdout):
    base = results.get("wsgate")
    base_rps = base["rps"] if base and "failed" not in base else None
    conns = next((r["connections"] for r in results.values() if "connections" in r), None)
    print("\n== %s: %s%s" % (case.name, case.title, " (wrk -c%d)" % conns if conns else ""), file=out)
    header = "%-17s %9s %9s %9s %8s %7s %9s %9s %11s %7s %7s %7s %8s %8s %8s  %s" % (
        "server", "rps", "p50", "p99", "sock err", "non-2xx", "master", "workers", "master grow", "mst CPU",
        "wkr CPU", "others", "CPU/req", "mst/req", "wkr/req", "wsgate/peer")
    print(header, file=out)
    print("-" * len(header), file=out)
    for name, r in results.items():
        if "failed" in r:
            print("%-17s FAILED: %s" % (name, r["failed"].splitlines()[0][:150] if r["failed"] else ""), file=out)
            continue
        ratio = "—" if name == "wsgate" or base_rps is None else "%.2f×" % (base_rps / r["rps"])
        print("%-17s %9.0f %9s %9s %8d %7d %7.1fMB %7.1fMB %9.1fMB %6.0f%% %6.0f%% %6.0f%% %6.0fµs %6.0fµs %6.0fµs"
              "  %s%s" % (
                  name, r["rps"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), r["errors"]["total"], r["non2xx"],
                  r["master_peak_mb"], r["workers_peak_mb"], r["master_growth_mb"], r["master_cpu_pct"],
                  r["workers_cpu_pct"], r["other_cpu_pct"], r["cpu_us_per_req"], r["master_us_per_req"],
                  r["workers_us_per_req"], ratio, "  NOISY" if noisy(r) else ""), file=out)
    for line in slow_lines(results) + master_lines(results):
        print("  " + line, file=out)


def markdown_report(path, out=sys.stdout):
    """The tables and targets of a saved run (--json output) as Markdown, for docs/bench.md."""
    with open(path) as f:
        saved = json.load(f)
    info, table = saved["info"], saved["results"]
    m, st = info["machine"], info["settings"]
    print("Run of %s on %s (%d CPUs, %s, Linux %s), shared with other work. %d workers per server, wrk -t%d, "
          "%d s per server and case after %d s of warm-up, %d round(s). Versions: %s." % (
              info["date"], m["host"], m["cpus"], m["cpu"], m["kernel"], st["workers"], st["wrk_threads"],
              st["duration"], st["warmup"], st["rounds"],
              ", ".join("%s %s" % kv for kv in info["versions"].items())), file=out)
    for case_name, results in table.items():
        case = CASES[case_name]
        base = results.get("wsgate")
        base_rps = base["rps"] if base and "failed" not in base else None
        conns = next((r["connections"] for r in results.values() if "connections" in r), None)
        print("\n**%s** — %s%s\n" % (case.name, case.title, " (wrk -c%d)" % conns if conns else ""), file=out)
        print("| server | rps | p50 | p99 | errors (socket / non-2xx) | master RSS (growth) | workers RSS | "
              "CPU/req (master + workers) | others' CPU | wsgate/peer |", file=out)
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", file=out)
        for name, r in results.items():
            if "failed" in r:
                print("| %s | failed: %s | | | | | | | | |" % (name, r["failed"].splitlines()[0][:80]), file=out)
                continue
            ratio = "—" if name == "wsgate" or base_rps is None else "%.2f×" % (base_rps / r["rps"])
            print("| %s | %.0f | %s | %s | %d / %d | %.1f MB (%+.1f) | %.1f MB | %s | %.0f%%%s | %s |" % (
                name, r["rps"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), r["errors"]["total"], r["non2xx"],
                r["master_peak_mb"], r["master_growth_mb"], r["workers_peak_mb"], cpu_per_req(r),
                r["other_cpu_pct"], " (noisy)" if noisy(r) else "", ratio), file=out)
        extra = slow_lines(results) + master_lines(results)
        if extra:
            print("", file=out)
            for line in extra:
                print("* " + line, file=out)
    print("\n| target | verdict | measured |\n| --- | --- | --- |", file=out)
    for desc, verdict, detail in saved["targets"]:
        print("| %s | %s | %s |" % (desc, verdict, detail), file=out)


def check_targets(table):
    """The issue's targets: [(description, verdict, detail)]. verdict is 'met', 'not met' or 'n/a'."""
    def get(case, server):
        r = table.get(case, {}).get(server)
        return r if r and "failed" not in r else None

    targets = []

    def noise(*rows):
        """A warning when the rest of the machine took much CPU while these rows were measured."""
        worst = max(r.get("other_cpu_pct", 0) for r in rows)
        return "; noisy: others used %.0f%% CPU" % worst if worst > NOISY_OTHERS_PCT else ""

    def ratio_target(case, peer, minimum):
        w, p = get(case, "wsgate"), get(case, peer)
        desc = "%s: wsgate rps ≥ %.1f× %s" % (case, minimum, peer)
        if case not in table:
            return
        if not w or not p:
            targets.append((desc, "n/a", "not measured"))
        else:
            ratio = w["rps"] / p["rps"]
            targets.append((desc, "met" if ratio >= minimum else "not met", "%.2f× (CPU/req %.0f vs %.0f µs%s)" % (
                ratio, w["cpu_us_per_req"], p["cpu_us_per_req"], noise(w, p))))

    def p99_target(case, peer, factor, label=None):
        w, p = get(case, "wsgate"), get(case, peer)
        desc = label or "%s: wsgate p99 ≤ %s%s's" % (case, "" if factor == 1 else "%g× " % factor, peer)
        if case not in table:
            return
        if not w or not p:
            targets.append((desc, "n/a", "not measured"))
        else:
            targets.append((desc, "met" if w["p99_ms"] <= factor * p["p99_ms"] else "not met",
                            "%s vs %s%s" % (fmt_ms(w["p99_ms"]), fmt_ms(p["p99_ms"]), noise(w, p))))

    # issue 12: faster than granian
    ratio_target("hello", "granian", 0.8)
    ratio_target("django", "granian", 1.0)
    ratio_target("django", "uwsgi", 1.0)
    ratio_target("djadmin", "granian", 1.0)
    ratio_target("big", "granian", 1.0)
    ratio_target("upload", "granian", 1.0)
    p99_target("django", "granian", 1)
    p99_target("mixed", "granian", 1, "mixed: wsgate's fast-view p99 ≤ granian's")
    # issue 8: static files
    ratio_target("static", "nginx", 0.8)
    # issue 3: the floor
    ratio_target("hello", "uwsgi", 0.9)
    ratio_target("hello", "gunicorn-sync", 2.0)
    for case in CASES:
        if case != "static":  # files are compared with nginx's rps above
            p99_target(case, "uwsgi", 2)
    for chain in ("wsgate-chain", "wsgate-chain-buffered"):
        w, c = get("hello", "wsgate"), get("hello", chain)
        desc = "hello: five Go components add < 5 µs master CPU/req"
        if chain != "wsgate-chain":
            desc += " (%s)" % chain
        if "hello" in table and chain in table["hello"]:
            if not w or not c:
                targets.append((desc, "n/a", "not measured"))
            else:
                added = c["master_us_per_req"] - w["master_us_per_req"]
                targets.append((desc, "met" if added < 5 else "not met", "%+.1f µs (%.1f vs %.1f µs%s)" % (
                    added, c["master_us_per_req"], w["master_us_per_req"], noise(w, c))))
    w = get("upload", "wsgate")
    desc = "upload: wsgate master RSS growth < 16 MB"
    if "upload" in table:
        if not w:
            targets.append((desc, "n/a", "not measured"))
        else:
            targets.append((desc, "met" if w["master_growth_mb"] < 16 else "not met",
                            "%.1f MB" % w["master_growth_mb"]))
    return targets


def versions(opts):
    def cmd(argv):
        try:
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
            if out.returncode != 0 and argv[-1] != "--version":  # wrk --version exits 1
                return "not found"
            return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "not found"

    def last_word(text):
        if text in ("not found", "?"):
            return text
        return text.replace("(version ", "").strip("() ").split()[-1]

    return {
        "wsgate": last_word(cmd([opts.wsgate_bin, "version"])),
        "gunicorn": last_word(cmd([os.path.join(VENV_BIN, "gunicorn"), "--version"])),
        "uwsgi": cmd([os.path.join(VENV_BIN, "uwsgi"), "--version"]),
        "granian": last_word(cmd([os.path.join(VENV_BIN, "granian"), "--version"])),
        "django": cmd([sys.executable, "-c", "import django; print(django.get_version())"]),
        "python": platform.python_version(),
        "wrk": cmd(["wrk", "--version"]).split()[1],
        "nginx": cmd(["nginx", "-v"]).split("/")[-1],
    }


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"host": socket.gethostname(), "cpus": os.cpu_count(), "cpu": model, "kernel": platform.release()}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=int, default=6, help="seconds of measured load per server and case")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load before each measurement")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated cases: " + ", ".join(CASES))
    p.add_argument("--servers", default=",".join(DEFAULT_ORDER),
                   help="comma-separated servers, run in this order (interleaved per case; a case runs those "
                        "it has command lines for: nginx only serves the static case): " + ", ".join(KNOWN_SERVERS))
    p.add_argument("--workers", type=int, default=2, help="worker processes of every server")
    p.add_argument("--gthread-threads", type=int, default=4, help="threads per gunicorn gthread worker")
    p.add_argument("--rounds", type=int, default=3,
                   help="repeat each case's server sequence (alternating its order); medians are reported")
    p.add_argument("--connections", type=int, default=None,
                   help="wrk -c (default: 16 per worker, 4 per worker for djadmin; a mixed case's slow view "
                        "takes 4 of them)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk -t")
    p.add_argument("--wrk-timeout", type=int, default=10, help="wrk --timeout, seconds")
    p.add_argument("--ready-timeout", type=int, default=60, help="seconds to wait for a server to answer")
    p.add_argument("--wsgate-bin", default=os.environ.get("WSGATE_BIN", os.path.join(REPO_DIR, "bin", "wsgate")))
    p.add_argument("--profile", action="store_true",
                   help="instead of the comparison, profile wsgate on --cases (default hello): pprof of the master, "
                        "perf split between processes, cProfile of a worker; files in bench/results/profile/")
    p.add_argument("--profile-top", type=int, default=25, help="rows of each profile to print")
    p.add_argument("--markdown", metavar="JSON", help="print a saved run (a --json file) as Markdown and exit")
    p.add_argument("--json", metavar="FILE",
                   help="write all results here (default: bench/results/bench-<UTC time>.json)")
    opts = p.parse_args(argv)
    if opts.profile and opts.cases == p.get_default("cases"):
        opts.cases = "hello"
    opts.cases = [c for c in opts.cases.split(",") if c]
    opts.servers = [s for s in opts.servers.split(",") if s]
    for c in opts.cases:
        if c not in CASES:
            p.error("unknown case %r (known: %s)" % (c, ", ".join(CASES)))
    for s in opts.servers:
        if s not in KNOWN_SERVERS:
            p.error("unknown server %r (known: %s)" % (s, ", ".join(KNOWN_SERVERS)))
    if opts.workers < 1 or opts.duration < 1 or opts.rounds < 1:
        p.error("--workers, --duration and --rounds must be at least 1")
    opts.wsgate_bin = os.path.abspath(opts.wsgate_bin)
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.markdown:
        markdown_report(opts.markdown)
        return 0
    if not shutil.which("wrk"):
        print("bench: wrk is not installed; ./scripts/system-deps.sh wrk installs it (make bench does)",
              file=sys.stderr)
        return 2
    if any(s.startswith("wsgate") for s in opts.servers) and not os.access(opts.wsgate_bin, os.X_OK):
        print("bench: %s is not an executable; build it (make build) or leave wsgate out with --servers"
              % opts.wsgate_bin, file=sys.stderr)
        return 2
    if opts.profile:
        out_dir = os.path.join(RESULTS_DIR, "profile")
        os.makedirs(out_dir, exist_ok=True)
        for case_name in opts.cases:
            case = CASES[case_name]
            if case.prepare:
                case.prepare(opts)
            run_profile(opts, case, out_dir)
        return 0
    stamp = datetime.datetime.now(datetime.timezone.utc)
    log_dir = os.path.join(RESULTS_DIR, "logs")
    os.makedirs(log_dir, exist_ok=True)
    json_path = opts.json or os.path.join(RESULTS_DIR, "bench-%s.json" % stamp.strftime("%Y%m%dT%H%M%SZ"))
    runs = sum(len([s for s in opts.servers if s in CASES[c].argv_functions()]) for c in opts.cases) * opts.rounds
    info = {"date": stamp.isoformat(timespec="seconds"), "machine": machine(), "versions": versions(opts),
            "settings": {k: getattr(opts, k) for k in ("duration", "warmup", "workers", "gthread_threads", "rounds",
                                                      "connections", "wrk_threads", "cases", "servers")}}
    print("wsgate bench %s on %s (%s CPUs, %s), load %s" % (
        info["date"], info["machine"]["host"], info["machine"]["cpus"], info["machine"]["cpu"],
        open("/proc/loadavg").read().split()[0]))
    print("%d workers each (gunicorn gthread: %d threads per worker; others: one), wrk -t%d -d%ds "
          "after %ds of warm-up; %d runs, about %d s" % (
              opts.workers, opts.gthread_threads, opts.wrk_threads, opts.duration, opts.warmup,
              runs, runs * (opts.duration + opts.warmup + 2)))
    print("versions: " + ", ".join("%s %s" % kv for kv in info["versions"].items()))
    table = {}
    if "static" in opts.cases:
        prepare_static()
    for case_name in opts.cases:
        case = CASES[case_name]
        servers = [s for s in opts.servers if s in case.argv_functions()]
        per_server = {s: [] for s in servers}
        if case.prepare:
            try:
                case.prepare(opts)
            except ServerFailed as e:
                print("  %s: %s" % (case.name, e), flush=True)
                table[case_name] = {s: {"case": case.name, "server": s, "failed": str(e)} for s in servers}
                continue
        for rnd in range(opts.rounds):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            for server in order:
                print("  %s / %s%s ..." % (case.name, server, " (round %d)" % (rnd + 1) if opts.rounds > 1 else ""),
                      end="", flush=True)
                r = run_one(opts, case, server, log_dir)
                per_server[server].append(r)
                print(" FAILED" if "failed" in r else " %.0f rps" % r["rps"], flush=True)
        table[case_name] = {s: median_result(rs) for s, rs in per_server.items()}
        print_table(case, table[case_name])
    targets = check_targets(table)
    print("\n== targets (issue 12, issue 8, then issue 3's floor), same run; medians of %d round(s)" % opts.rounds)
    for desc, verdict, detail in targets:
        print("  %-44s %-8s %s" % (desc, verdict, detail))
    with open(json_path, "w") as f:
        json.dump({"info": info, "results": table, "targets": targets}, f, indent=1)
    print("\nresults: %s; server logs: %s" % (os.path.relpath(json_path), os.path.relpath(log_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
