import json


class DescribingApp:
    """A WSGI app whose body says which app it is, its configuration and
    the filters (outermost first) the request passed through."""

    def __init__(self, kind, global_conf, local_conf):
        self.kind = kind
        self.global_conf = {k: v for k, v in global_conf.items() if k not in ("here", "__file__")}
        self.local_conf = dict(local_conf)

    def __call__(self, environ, start_response):
        body = json.dumps(
            {
                "app": self.kind,
                "local_conf": self.local_conf,
                "global_conf": self.global_conf,
                "filters": environ.get("fake.filters", []),
            },
            sort_keys=True,
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def make_basic_app(global_conf, **local_conf):
    return DescribingApp("basic", global_conf, local_conf)


def make_other_app(global_conf, **local_conf):
    return DescribingApp("other", global_conf, local_conf)


def make_configed_app(global_conf, greeting="hello", **local_conf):
    local_conf["greeting"] = greeting
    return DescribingApp("configed", global_conf, local_conf)
