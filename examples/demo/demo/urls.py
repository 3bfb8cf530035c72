from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path, re_path

from demo import downloads, git, hg, trac, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # These views check who the client is and hand the request to Mercurial,
    # Trac or git (wsgate's delegate composite, development.ini): those get
    # what follows the mount point as PATH_INFO, the mount as SCRIPT_NAME.
    re_path(r"^hg(?P<path_info>/.*)$", hg.hg_view, name="hg"),
    re_path(r"^trac(?P<path_info>/.*)$", trac.trac_view, name="trac"),
    re_path(r"^git(?P<path_info>/.*)$", git.git_view, name="git"),
    # Authorised by Django, sent by Go (X-Accel-Redirect).
    path("downloads/<str:name>", downloads.download, name="download"),
]

# Django's static files (the admin's CSS) while DEBUG is on; production.ini
# has wsgate serve them.
urlpatterns += staticfiles_urlpatterns()
