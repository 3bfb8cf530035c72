"""Django middleware implementing ``wsgiorg.routing_args``.

Add ``"wsgate.django.RoutingArgsMiddleware"`` to MIDDLEWARE: before each view
runs, the arguments Django's URL resolver captured are put in
``environ["wsgiorg.routing_args"]`` as ``(positional_args, named_args)``, so
WSGI libraries (and ``request.webob.urlargs`` / ``urlvars``) see them.
"""

from django.utils.deprecation import MiddlewareMixin


class RoutingArgsMiddleware(MiddlewareMixin):
    def process_view(self, request, view_func, view_args, view_kwargs):
        request.environ["wsgiorg.routing_args"] = (tuple(view_args), dict(view_kwargs))
        return None
