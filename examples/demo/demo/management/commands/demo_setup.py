"""`wsgate manage development.ini demo_setup`: everything the demo needs on
first run besides `migrate`, idempotent so that it can run on every start.

* the superuser named by the DEMO_ADMIN setting (development.ini fills it in
  from demo_admin_user / demo_admin_password), kept in step with the INI file;
* the Mercurial repository DEMO_VAR_DIR/hg/demo, with one commit, that hgweb
  serves at /hg/demo;
* the Trac environment DEMO_VAR_DIR/trac that Trac serves at /trac/, where
  Django's superusers are TRAC_ADMINs;
* the git repository DEMO_VAR_DIR/git/demo.git that git http-backend serves
  at /git/demo.git;
* the report DEMO_VAR_DIR/downloads/wsgate-demo-report.txt that logged-in
  users download from /downloads/.
"""

import os
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from demo import downloads, git, hg, hgweb, trac, tracweb


class Command(BaseCommand):
    help = "Create the demo's superuser, Mercurial and git repositories, Trac environment and download (idempotent)."

    def handle(self, *args, **options):
        self.ensure_superuser()
        self.ensure_hg_repository()
        self.ensure_trac_environment()
        if git.ensure_repository(git.demo_repository_path()):
            self.stdout.write(f"demo_setup: git repository {git.demo_repository_path()} created")
        if downloads.ensure_sample():
            self.stdout.write(f"demo_setup: download {downloads.downloads_path()}/{downloads.SAMPLE} created")

    def ensure_superuser(self):
        admin = settings.DEMO_ADMIN or {}
        if not admin:
            self.stdout.write(
                "demo_setup: no DEMO_ADMIN in the INI file, no superuser made "
                "(make one with `wsgate manage … createsuperuser`)"
            )
            return
        username, password = admin.get("username"), admin.get("password")
        if not username or not password:
            raise CommandError(
                "DEMO_ADMIN needs a username and a password: set demo_admin_user and "
                "demo_admin_password in the INI file's [DEFAULT] (or with --set)"
            )
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        user.email = admin.get("email", "")
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        verb = "created" if created else "updated from the INI file"
        self.stdout.write(f"demo_setup: superuser {username!r} {verb}")

    def ensure_hg_repository(self):
        path = hg.demo_repository_path()
        if not os.path.isdir(os.path.join(path, ".hg")):
            os.makedirs(path, exist_ok=True)
            run_hg("init", path)
            with open(os.path.join(path, "README.txt"), "w") as f:
                f.write(
                    "A Mercurial repository served by hgweb behind a Django view's login,\n"
                    "served by wsgate. Clone it anonymously; push as a Django user.\n"
                )
            run_hg("--cwd", path, "commit", "--addremove", "--user", "wsgate demo <demo@example.com>",
                   "--message", "Start the demo repository")
            self.stdout.write(f"demo_setup: Mercurial repository {path} created")
        hgweb.write_hgrc(path)

    def ensure_trac_environment(self):
        path = trac.environment_path()
        created = tracweb.ensure_environment(path, settings.DEMO_SITE_TITLE)
        if created:
            self.stdout.write(f"demo_setup: Trac environment {path} created")


def run_hg(*args):
    """Mercurial's own command line, from the interpreter running us (the one
    that has Mercurial installed), whatever is on PATH."""
    cmd = [sys.executable, "-c", "from mercurial import dispatch; dispatch.run()", *args]
    # No user or system hgrc: the demo's commit must not depend on them.
    env = dict(os.environ, HGRCPATH="", HGPLAIN="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise CommandError(f"hg {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
