"""git behind Django's users: `git http-backend` run by wsgate's cgi
component (base.ini's [app:git]), reached through the view at /git/.

The view decides who the client is, as the one at /hg/ does (basic
credentials checked against Django's users, or the Django session), and
hands the request to git with the user as REMOTE_USER. Anyone may clone; a
push (git-receive-pack) needs a Django user: git http-backend accepts pushes
only from a REMOTE_USER, and the view challenges anonymous ones so that the
git client sends the credentials of its URL.
"""

import os
import subprocess
import tempfile

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt

from demo.gate import version_control

REPOSITORIES = "git"  # under DEMO_VAR_DIR


def repositories_path():
    return os.path.join(settings.DEMO_VAR_DIR, REPOSITORIES)


def demo_repository_path():
    return os.path.join(repositories_path(), "demo.git")


@csrf_exempt  # the git client posts packs; it has no CSRF token, and no session either
def git_view(request, path_info):
    push = path_info.endswith("/git-receive-pack") or request.GET.get("service") == "git-receive-pack"
    return version_control(request, "git", path_info, repositories_path(), push)


def ensure_repository(path):
    """Make the bare repository path with one commit, if it is missing. True
    when it was made."""
    if os.path.isfile(os.path.join(path, "HEAD")):
        return False
    env = dict(
        os.environ,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="wsgate demo",
        GIT_AUTHOR_EMAIL="demo@example.com",
        GIT_COMMITTER_NAME="wsgate demo",
        GIT_COMMITTER_EMAIL="demo@example.com",
    )

    def git(*args):
        subprocess.run(["git", *args], check=True, capture_output=True, env=env)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    git("init", "--quiet", "--bare", path)
    with tempfile.TemporaryDirectory() as work:
        git("init", "--quiet", work)
        with open(os.path.join(work, "README.txt"), "w") as f:
            f.write(
                "A git repository served by git http-backend, mounted through wsgate's cgi\n"
                "component behind Django's users. Clone it anonymously; push as a Django user.\n"
            )
        git("-C", work, "add", "README.txt")
        git("-C", work, "commit", "--quiet", "-m", "Start the demo repository")
        git("-C", work, "push", "--quiet", path, "HEAD:refs/heads/main")
    git("--git-dir", path, "symbolic-ref", "HEAD", "refs/heads/main")
    # No http.receivepack: git http-backend then takes pushes from a
    # REMOTE_USER only, whatever reaches it.
    return True
