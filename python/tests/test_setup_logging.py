"""wsgate.loader.setup_logging: the INI logging sections, as pserve applies them."""
import logging
import os

from wsgate import loader

INI = """
[app:main]
use = egg:whatever

[loggers]
keys = root, myapp

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = file

[logger_myapp]
level = DEBUG
handlers =
qualname = myapp

[handler_file]
class = FileHandler
args = ('%(here)s/out.log', 'a')
formatter = plain

[formatter_plain]
format = MYFMT %(levelname)s [%(name)s] %(message)s
"""


def test_logging_sections_apply_with_here(tmp_path, monkeypatch):
    ini = tmp_path / "development.ini"
    ini.write_text(INI)
    existing = logging.getLogger("already.there")
    monkeypatch.setenv("WSGATE_LOG_CONFIG", str(ini))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        loader.setup_logging()
        assert "WSGATE_LOG_CONFIG" not in os.environ
        logging.getLogger("myapp.views").info("hello %s", "there")
        assert not existing.disabled  # disable_existing_loggers=False, as pserve
        for h in root.handlers:
            h.flush()
        assert (tmp_path / "out.log").read_text() == "MYFMT INFO [myapp.views] hello there\n"
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:], root.level = saved


def test_nothing_named_nothing_done(monkeypatch):
    monkeypatch.delenv("WSGATE_LOG_CONFIG", raising=False)
    before = logging.getLogger().handlers[:]
    loader.setup_logging()
    assert logging.getLogger().handlers == before
