"""The preloader: `python -m wsgate.worker --preload-fd N` (serve --preload).

It loads the application once, moves every object it made to the garbage
collector's permanent generation (gc.freeze: a collection in a worker then
never writes to them, so their pages stay shared), tells the master, and
forks a worker each time the master asks. The workers share its memory
copy-on-write. Each fork request brings the new worker's own sockets (one
stream and one dispatch socket per thread), its stacks pipe and its stderr
pipe as SCM_RIGHTS, so a forked worker talks to the master exactly as an
exec'd one does (docs/architecture.md, "Preload").

Messages on the control socket (SOCK_SEQPACKET, one per datagram), a kind
byte then JSON or text:
  master → preloader  F {"id": N, "threads": T}  + fds: fork worker N
  preloader → master  R                           the application is loaded
                      E text                      it cannot be: the load error
                      F {"id": N, "pid": P}       worker N is process P
                      X {"pid": P, "status": S}   P exited: S ≥ 0 exit code, < 0 signal
End of file from the master: no worker of this preloader is left; it exits.
The workers die with it (PR_SET_PDEATHSIG), as exec'd workers die with the
master.
"""

import gc
import json
import os
import select
import signal
import socket
import sys

from wsgate import worker as W

_PR_SET_PDEATHSIG = 1


def run(fd, workers):
    ctl = socket.socket(fileno=fd)
    ctl.set_inheritable(False)
    node = W.read_node()
    try:
        app = W.load_app(node)
    except BaseException as exc:  # SystemExit too: the master says why
        ctl.send(b"E" + W.load_error_message(exc))
        return 3
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    ctl.send(b"R")
    while True:
        ready, _, _ = select.select([ctl, wake_r], [], [])
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            _reap(ctl)
        if ctl not in ready:
            continue
        msg, fds, _flags, _addr = socket.recv_fds(ctl, 4096, 256)
        if not msg:
            return 0  # the master has no worker of ours left
        req = json.loads(msg[1:])
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            ctl.close()
            signal.set_wakeup_fd(-1)
            os.close(wake_r)
            os.close(wake_w)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            return _worker(os.getppid(), fds, req["threads"], app, workers)
        for f in fds:
            os.close(f)
        ctl.send(b"F" + json.dumps({"id": req["id"], "pid": pid}).encode())


def _reap(ctl):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ctl.send(b"X" + json.dumps({"pid": pid, "status": os.waitstatus_to_exitcode(status)}).encode())


def _worker(parent, fds, threads, app, workers):
    """In the forked child: become a worker on the sockets the master sent."""
    _die_with(parent)
    stacks_fd, stderr_fd = fds[2 * threads], fds[2 * threads + 1]
    os.dup2(stderr_fd, 2)
    os.close(stderr_fd)
    W.arm_stacks(stacks_fd)
    chans = [W.channel(fds[2 * i], fds[2 * i + 1]) for i in range(threads)]
    return W.run(chans, app, workers)


def _die_with(parent):
    """SIGKILL this process when the preloader dies (Linux), as an exec'd
    worker dies with the master."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)  # it died before the prctl
