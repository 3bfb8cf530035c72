"""Exceptions raised by wsgate.django."""


class DjangoConfigError(Exception):
    """A mistake in the configuration of a Django application.

    str(exc) is the complete one-line message, already naming
    ``file:line [section] option``; wsgate prints it without a traceback
    (``wsgate_config_error`` tells the loader so).
    """

    wsgate_config_error = True


class ApplicationCallError(Exception):
    """An embedded WSGI application was called with a path that is not the
    end of the request's PATH_INFO, or with a body Django already consumed."""
