# A project's own factory wrapping wsgate's, as twod.wsgi's manual suggests.
from wsgate.django import get_configured_django_wsgi_app

STEPS = []


def make_app(global_conf, **local_conf):
    STEPS.append("before")
    app = get_configured_django_wsgi_app(global_conf, **local_conf)
    STEPS.append("after")

    def wrapped(environ, start_response):
        def marked(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Custom-Factory", ",".join(STEPS))], exc_info)

        return app(environ, marked)

    return wrapped


def make_twod_style(global_conf, **local_conf):
    # A twod.wsgi user's factory after the one-line migration of its import.
    from wsgate.django.compat import wsgify_django

    STEPS.append("twod")
    return wsgify_django(global_conf, **local_conf)


def make_dpds_style(global_conf, **local_conf):
    # A django-pastedeploy-settings user's factory after the migration of its import.
    from wsgate.django.compat import get_configured_django_wsgi_app

    STEPS.append("dpds")
    return get_configured_django_wsgi_app(global_conf, **local_conf)
