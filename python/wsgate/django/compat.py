"""Compatibility factories: existing twod.wsgi and django-pastedeploy-settings
configuration files load unchanged.

* ``use = egg:twod.wsgi`` -> make_twod_app (twod.wsgi 1.0.1's rules)
* ``use = egg:django-pastedeploy-settings`` -> make_dpds_app (1.0.2's rules)

Custom factories written for those libraries change one import:
``from twod.wsgi import wsgify_django`` becomes
``from wsgate.django.compat import wsgify_django``, and
``from django_pastedeploy_settings import get_configured_django_wsgi_app``
becomes ``from wsgate.django.compat import get_configured_django_wsgi_app``.
"""

from .conf import DPDS, TWOD
from .factory import build


def make_twod_app(global_conf, **local_conf):
    """PasteDeploy app factory for ``use = egg:twod.wsgi``."""
    return build(TWOD, global_conf, local_conf)


def make_dpds_app(global_conf, **local_conf):
    """PasteDeploy app factory for ``use = egg:django-pastedeploy-settings``."""
    return build(DPDS, global_conf, local_conf)


# The originals' names, for custom factories that call them.
wsgify_django = make_twod_app
get_configured_django_wsgi_app = make_dpds_app
