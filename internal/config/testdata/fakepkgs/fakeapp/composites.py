def make_switch(loader, global_conf, choose, **local_conf):
    """A composite: serves the application named by the setting `choose`
    names (one level of indirection, like urlmap)."""
    return loader.get_app(local_conf[choose], global_conf=global_conf)
