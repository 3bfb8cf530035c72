from django.shortcuts import render

ITEMS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def page(request):
    """A tiny template with a loop and a variable: the smallest view that exercises Django's full path."""
    return render(request, "page.html", {"title": "wsgate bench", "items": ITEMS, "path": request.path})
