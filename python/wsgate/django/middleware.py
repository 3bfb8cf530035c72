"""Django middleware implementing ``wsgiorg.routing_args``.

Add ``"wsgate.django.RoutingArgsMiddleware"`` to MIDDLEWARE: before each view
runs, the arguments Django's URL resolver captured are put in
``environ["wsgiorg.routing_args"]`` as ``(positional_args, named_args)``, so
WSGI libraries (and ``request.webob.urlargs`` / ``urlvars``) see them.
"""

from typing import Any, Callable, Dict, Sequence

from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin


class RoutingArgsMiddleware(MiddlewareMixin):
    def process_view(self, request: HttpRequest, view_func: Callable[..., Any], view_args: Sequence[Any],
                     view_kwargs: Dict[str, Any]) -> None:
        request.environ["wsgiorg.routing_args"] = (tuple(view_args), dict(view_kwargs))
        return None
