def make_server(global_conf, **local_conf):
    return lambda app: None


def run_server(app, global_conf, **local_conf):
    return None
