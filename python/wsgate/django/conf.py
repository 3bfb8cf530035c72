"""Turning a PasteDeploy application section into Django settings.

Three modes share this module:

* ``native`` (``egg:wsgate#django``): JSON values, ``${var}``, INI values
  override the settings module, ``extend NAME = [...]`` appends, ``debug``
  sets DEBUG whatever the module says.
* ``twod`` (``egg:twod.wsgi``): twod.wsgi 1.0.1's rules, values are strings
  typecast by setting name.
* ``dpds`` (``egg:django-pastedeploy-settings``): django-pastedeploy-settings
  1.0.2's rules, values are JSON with ``${var}`` from DEFAULT.

Each mode mutates the settings module in place (as the originals did), sets
DJANGO_SETTINGS_MODULE, and records where every setting came from. Every
mistake is a DjangoConfigError naming ``file:line [section] option``.
"""

import importlib
import json
import logging
import os
import re
import sys
import traceback

from ..resolve import is_missing
from .errors import DjangoConfigError
from .sources import Sources

LOG = logging.getLogger("wsgate.django")

NATIVE, TWOD, DPDS = "native", "twod", "dpds"
MODE_NAMES = {
    NATIVE: "egg:wsgate#django",
    TWOD: "egg:twod.wsgi",
    DPDS: "egg:django-pastedeploy-settings",
}

# Options of the application section that are wsgate's, never settings.
RESERVED = ("django_settings_module", "debug", "startup", "serve_static")

_SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_REFERENCE = re.compile(r"(?P<escape>\$)?\$\{(?P<name>.+?)\}")


class Outcome:
    """The result of configuring: the mutated module and where each setting
    came from."""

    def __init__(self, mode, module, sources):
        self.mode = mode
        self.module = module
        self.module_name = module.__name__
        self.sources = sources
        self.origins = {}  # setting name -> origin text
        self.locations = {}  # setting name -> INI location (for errors)
        self.raw_values = {}  # setting name -> raw INI text (for errors)
        self.warnings = []
        self.startup = []  # [(spec, location)]
        self.serve_static = True  # in DEBUG, static files from Django's finders (native mode)

    def warn(self, message):
        self.warnings.append(message)
        LOG.warning("wsgate: warning: %s", message)


# ----------------------------------------------------------------- helpers


def describe_exception(exc):
    """``Type: message (file:line)`` naming the innermost frame outside the
    import machinery, Django and wsgate, so a user sees where their own code
    failed (no location when the failure is in none of it)."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = " (%s:%s)" % (exc.filename, exc.lineno)
    else:
        skipped = [os.sep + "wsgate" + os.sep + "django" + os.sep, os.sep + "importlib" + os.sep]
        django = sys.modules.get("django")
        if django is not None and getattr(django, "__file__", None):
            skipped.append(os.path.dirname(django.__file__) + os.sep)
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith("<frozen") and not any(s in f.filename for s in skipped)
        ]
        if frames:
            where = " (%s:%s)" % (frames[-1].filename, frames[-1].lineno)
    return "%s: %s%s" % (type(exc).__name__, exc, where)


def import_settings_module(name, location):
    """Import the settings module ``name`` or raise a DjangoConfigError
    naming ``location``."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if is_missing(exc, name):
            raise DjangoConfigError(
                "%s: no settings module %r (%s); is the project directory on the Python path "
                "(run from it, or use --chdir/--pythonpath)?" % (location, name, exc)
            ) from None
        raise DjangoConfigError(
            "%s: settings module %r failed to import: %s" % (location, name, describe_exception(exc))
        ) from None
    except Exception as exc:  # the user's module raised: say where
        raise DjangoConfigError(
            "%s: settings module %r failed to import: %s" % (location, name, describe_exception(exc))
        ) from None


def asbool(value, location):
    """PasteDeploy's asbool, with an error naming the option."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "yes", "on", "y", "t", "1"):
            return True
        if v in ("false", "no", "off", "n", "f", "0"):
            return False
        raise DjangoConfigError("%s: %r is not a boolean (true/false, yes/no, on/off, 1/0)" % (location, value))
    return bool(value)


def asint(value, location):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DjangoConfigError("%s: %r is not an integer" % (location, value)) from None


def aslist(value):
    if isinstance(value, str):
        return [v.strip() for v in value.split()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if value is None:
        return []
    return [value]


def _type_name(value):
    return type(value).__name__


def _module_origin(module):
    return "module %s" % module.__name__


def _record_module_settings(outcome):
    for name in dir(outcome.module):
        if name.isupper():
            outcome.origins[name] = _module_origin(outcome.module)


def _wsgate_option(name, sources, global_conf, local_conf):
    """(value, location) of one of wsgate's own options, which the
    application section sets or else [DEFAULT]; (None, None) when unset."""
    if name in local_conf:
        return local_conf[name], sources.local(name)
    if name in global_conf:
        return global_conf[name], sources.global_(name)
    return None, None


def _startup_specs(outcome, global_conf, local_conf):
    value, location = _wsgate_option("startup", outcome.sources, global_conf, local_conf)
    if location is None:
        return
    for spec in str(value).split():
        outcome.startup.append((spec, location))


def module_line(module, name):
    """``file:line`` of the first assignment to ``name`` in the module's
    source, or the module's file (or name) when it cannot be found."""
    path = getattr(module, "__file__", None)
    if not path:
        return module.__name__
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if re.match(r"%s\s*(:[^=]*)?=" % re.escape(name), line):
                    return "%s:%d" % (path, number)
    except OSError:
        pass
    return path


def _require_debug_absent_from_module(module, mode, global_location):
    if hasattr(module, "DEBUG"):
        where = module_line(module, "DEBUG")
        raise DjangoConfigError(
            "%s: settings module %s defines DEBUG; with use = %s DEBUG comes only from `debug` "
            "in [DEFAULT] (%s): remove DEBUG from the module" % (where, module.__name__, MODE_NAMES[mode], global_location)
        )


def _settings_module_name(mode, global_conf, local_conf, sources):
    name = global_conf.get("django_settings_module")
    if mode == NATIVE and local_conf.get("django_settings_module"):
        name = local_conf["django_settings_module"]
        return name.strip(), sources.local("django_settings_module")
    if not name or not name.strip():
        where = sources.section or "[DEFAULT]"
        hint = "in [DEFAULT]" if mode != NATIVE else "in [DEFAULT] or in the application section"
        raise DjangoConfigError(
            "%s: django_settings_module is not set: use = %s needs the settings module's name %s, "
            "e.g. django_settings_module = mysite.settings" % (where, MODE_NAMES[mode], hint)
        )
    return name.strip(), sources.global_("django_settings_module")


def _begin(mode, global_conf, local_conf, node):
    sources = Sources(global_conf, node)
    name, location = _settings_module_name(mode, global_conf, local_conf, sources)
    os.environ["DJANGO_SETTINGS_MODULE"] = name
    module = import_settings_module(name, location)
    outcome = Outcome(mode, module, sources)
    _record_module_settings(outcome)
    _startup_specs(outcome, global_conf, local_conf)
    return outcome


def _begin_compat(mode, global_conf, local_conf, node):
    """_begin for the two compatibility modes, which share their start: the
    settings module must not define DEBUG, and ``startup`` is not a setting.
    Returns the local settings (a copy) and the outcome."""
    local_conf = dict(local_conf)
    outcome = _begin(mode, global_conf, local_conf, node)
    local_conf.pop("startup", None)
    _require_debug_absent_from_module(outcome.module, mode, outcome.sources.global_("debug"))
    return local_conf, outcome


# ------------------------------------------------------------------ twod


# twod.wsgi 1.0.1's typecasting lists (names of Django 1.x settings).
TWOD_BOOLEANS = frozenset("""APPEND_SLASH DEBUG DEBUG_PROPAGATE_EXCEPTIONS EMAIL_USE_TLS FORCE_SCRIPT_NAME
    PREPEND_WWW SEND_BROKEN_LINK_EMAILS SESSION_EXPIRE_AT_BROWSER_CLOSE SESSION_SAVE_EVERY_REQUEST
    TEMPLATE_DEBUG USE_ETAGS USE_I18N USE_L10N USE_THOUSAND_SEPARATOR""".split())
TWOD_INTEGERS = frozenset("""CACHE_MIDDLEWARE_SECONDS EMAIL_PORT FILE_UPLOAD_MAX_MEMORY_SIZE FIRST_DAY_OF_WEEK
    MESSAGE_LEVEL NUMBER_GROUPING SESSION_COOKIE_AGE SESSION_COOKIE_SECURE SITE_ID""".split())
TWOD_TUPLES = frozenset("""ADMIN_FOR AUTHENTICATION_BACKENDS ALLOWED_INCLUDE_ROOTS DATABASE_ROUTERS
    DATE_INPUT_FORMATS DATETIME_INPUT_FORMATS DISALLOWED_USER_AGENTS FILE_UPLOAD_HANDLERS FIXTURE_DIRS
    IGNORABLE_404_ENDS IGNORABLE_404_STARTS INSTALLED_APPS INTERNAL_IPS LOCALE_PATHS MIDDLEWARE_CLASSES
    PROFANITIES_LIST TEMPLATE_CONTEXT_PROCESSORS TEMPLATE_DIRS TEMPLATE_LOADERS TIME_INPUT_FORMATS""".split())
TWOD_NESTED_TUPLES = frozenset(["ADMINS", "MANAGERS"])
TWOD_DICTIONARIES = frozenset(["DATABASE_OPTIONS"])
TWOD_NONE_IF_EMPTY = frozenset("""CSRF_COOKIE_DOMAIN FILE_UPLOAD_TEMP_DIR FORMAT_MODULE_PATH
    SESSION_COOKIE_DOMAIN SESSION_FILE_PATH STATIC_URL""".split())
TWOD_UNSUPPORTED = frozenset(["FILE_UPLOAD_PERMISSIONS", "LANGUAGES", "MESSAGE_TAGS", "SERIALIZATION_MODULES"])

DPDS_UNSUPPORTED = frozenset(["FILE_UPLOAD_PERMISSIONS", "LANGUAGES", "MESSAGE_TAGS"])


def _twod_value(name, raw, kinds, location):
    booleans, integers, tuples, nested, dictionaries, none_if_empty = kinds
    if name in booleans:
        return asbool(raw, location)
    if name in integers:
        return asint(raw, location)
    if name in tuples:
        return tuple(aslist(raw))
    if name in nested:
        # One tuple per line, items separated by ";" (empty items dropped
        # before stripping, exactly as twod.wsgi did).
        return tuple(
            tuple(item.strip() for item in line.strip().split(";") if item)
            for line in raw.strip().splitlines()
        )
    if name in dictionaries:
        result = {}
        for line in raw.strip().splitlines():
            key, sep, value = line.strip().partition("=")
            if not sep:
                raise DjangoConfigError(
                    "%s: dictionary line %r has no `=`: write one `key = value` per line" % (location, line.strip())
                )
            result[key.strip()] = value.strip()
        return result
    if name in none_if_empty:
        return raw.strip() or None
    if name in TWOD_UNSUPPORTED:
        raise DjangoConfigError(
            "%s: Django setting %s is not supported by twod.wsgi's INI settings; define it in the "
            "settings module" % (location, name)
        )
    return raw


def configure_twod(global_conf, local_conf, node=None):
    """twod.wsgi 1.0.1: string values typecast by name, module tuples
    extended, module scalars kept with a warning."""
    local_conf, outcome = _begin_compat(TWOD, global_conf, local_conf, node)
    sources, module = outcome.sources, outcome.module
    if "DEBUG" in global_conf:
        raise DjangoConfigError(
            "%s: do not set Django's DEBUG in the configuration file; use `debug` in [DEFAULT]"
            % sources.global_("DEBUG"))
    if "DEBUG" in local_conf:
        raise DjangoConfigError(
            "%s: do not set Django's DEBUG in the configuration file; use `debug` in [DEFAULT]"
            % sources.local("DEBUG"))
    if "debug" not in global_conf:
        raise DjangoConfigError(
            "%s: `debug` must be set in [DEFAULT] (twod.wsgi makes it Django's DEBUG), e.g. debug = false"
            % (sources.section or "[DEFAULT]"))
    local_conf["DEBUG"] = global_conf["debug"]

    def custom(option):
        return frozenset(aslist(global_conf.get(option, "")))

    kinds = (
        TWOD_BOOLEANS | custom("twod.booleans"),
        TWOD_INTEGERS | custom("twod.integers"),
        TWOD_TUPLES | custom("twod.tuples"),
        TWOD_NESTED_TUPLES | custom("twod.nested_tuples"),
        TWOD_DICTIONARIES | custom("twod.dictionaries"),
        TWOD_NONE_IF_EMPTY | custom("twod.none_if_empty_settings"),
    )
    options = []
    for name, raw in local_conf.items():
        location = sources.global_("debug") if name == "DEBUG" else sources.local(name)
        options.append((name, _twod_value(name, raw, kinds, location), location, raw))
    options.append(("paste_configuration_file", global_conf.get("__file__"), None, None))

    for name, value, location, raw in options:
        if not hasattr(module, name):
            setattr(module, name, value)
            _set_origin(outcome, name, location, raw)
            continue
        existing = getattr(module, name)
        if isinstance(existing, tuple):
            if not isinstance(value, tuple):
                raise DjangoConfigError(
                    "%s: %s defines %s as a tuple, which twod.wsgi extends with the INI value, but the "
                    "INI value is a %s: list %s in twod.tuples (or twod.nested_tuples) in [DEFAULT]"
                    % (location, module.__name__, name, _type_name(value), name))
            setattr(module, name, existing + value)
            _extended_origin(outcome, name, location, raw)
        else:
            _kept(outcome, name, location, existing)
    return outcome


# ------------------------------------------------------------------ dpds


def _dpds_dereference(raw, global_conf, location):
    def replace(match):
        if match.group("escape"):
            return match.group(0)[1:]
        ref = match.group("name")
        if ref not in global_conf:
            raise DjangoConfigError(
                "%s: references ${%s}, which is not defined in [DEFAULT] (write $${%s} for a literal ${%s})"
                % (location, ref, ref, ref))
        return global_conf[ref]

    return _REFERENCE.sub(replace, raw)


def _parse_json(text, location):
    try:
        return json.loads(text)
    except ValueError as exc:
        hint = ""
        stripped = text.strip()
        if stripped and stripped[0] not in '[{"-0123456789' and stripped not in ("true", "false", "null"):
            hint = "; values are JSON: a string needs double quotes, e.g. %s" % json.dumps(stripped)
        raise DjangoConfigError("%s: invalid JSON %r: %s%s" % (location, text, exc, hint)) from None


def configure_dpds(global_conf, local_conf, node=None):
    """django-pastedeploy-settings 1.0.2: JSON values, ${var} from DEFAULT,
    module lists/tuples extended (into a tuple), module scalars kept with a
    warning."""
    local_conf, outcome = _begin_compat(DPDS, global_conf, local_conf, node)
    sources, module = outcome.sources, outcome.module
    if "DEBUG" in local_conf:
        raise DjangoConfigError(
            "%s: Django's DEBUG must not be set in the configuration file; use `debug` in [DEFAULT]"
            % sources.local("DEBUG"))
    if "debug" not in global_conf:
        raise DjangoConfigError(
            "%s: `debug` must be set in [DEFAULT] (it becomes Django's DEBUG), e.g. debug = false"
            % (sources.section or "[DEFAULT]"))
    for name in local_conf:
        if name in DPDS_UNSUPPORTED:
            raise DjangoConfigError(
                "%s: Django setting %s is not supported by django-pastedeploy-settings; define it in the "
                "settings module" % (sources.local(name), name))
    local_conf = dict(local_conf, DEBUG=global_conf["debug"])

    def where(name):
        return sources.global_("debug") if name == "DEBUG" else sources.local(name)

    resolved = [(n, _dpds_dereference(raw, global_conf, where(n)), raw) for n, raw in local_conf.items()]
    options = [(n, _parse_json(text, where(n)), where(n), raw) for n, text, raw in resolved]
    options.append(("paste_configuration_file", global_conf.get("__file__"), None, None))

    for name, value, location, raw in options:
        if not hasattr(module, name):
            setattr(module, name, value)
            _set_origin(outcome, name, location, raw)
            continue
        existing = getattr(module, name)
        if isinstance(existing, (tuple, list)):
            try:
                extension = tuple(value)
            except TypeError:
                raise DjangoConfigError(
                    "%s: %s defines %s as a %s, which django-pastedeploy-settings extends with the INI "
                    "value, but %s is not a JSON list" % (location, module.__name__, name,
                                                          _type_name(existing), json.dumps(value))) from None
            setattr(module, name, tuple(existing) + extension)
            _extended_origin(outcome, name, location, raw)
        else:
            _kept(outcome, name, location, existing)
    return outcome


# ----------------------------------------------------------------- native


def substitute_native(raw, global_conf, location):
    """Replace ``${var}`` with DEFAULT's ``var`` (``$${x}`` is a literal
    ``${x}``). Inside a JSON string the value is JSON-escaped, so a path
    with a quote or a backslash stays one valid string; outside it is
    inserted as is, so ``PORT = ${port}`` gives a number."""
    out = []
    i, n, in_string = 0, len(raw), False
    while i < n:
        c = raw[i]
        if c == "$":
            m = _REFERENCE.match(raw, i)
            if m:
                if m.group("escape"):
                    out.append(m.group(0)[1:])
                else:
                    ref = m.group("name")
                    if ref not in global_conf:
                        raise DjangoConfigError(
                            "%s: references ${%s}, which is not defined in [DEFAULT] "
                            "(write $${%s} for a literal ${%s})" % (location, ref, ref, ref))
                    value = str(global_conf[ref])
                    out.append(json.dumps(value)[1:-1] if in_string else value)
                i = m.end()
                continue
        if in_string and c == "\\":
            out.append(raw[i:i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        out.append(c)
        i += 1
    return "".join(out)


def configure_native(global_conf, local_conf, node=None):
    """wsgate's own mode: JSON values that override the module, explicit
    ``extend NAME``, ``debug`` always wins."""
    local_conf = dict(local_conf)
    outcome = _begin(NATIVE, global_conf, local_conf, node)
    sources, module = outcome.sources, outcome.module

    overrides, extends = [], []
    for key, raw in local_conf.items():
        if key in RESERVED:
            continue
        location = sources.local(key)
        if key.startswith("extend ") or key.startswith("extend\t"):
            name = key[len("extend"):].strip()
            if not _SETTING_NAME.match(name):
                raise DjangoConfigError("%s: `extend` needs a Django setting name (UPPERCASE), got %r" % (location, name))
            extends.append((name, raw, location))
            continue
        if not _SETTING_NAME.match(key):
            raise DjangoConfigError(
                "%s: %r is not a Django setting name: Django reads only UPPERCASE names; the other options "
                "of this section are django_settings_module, debug, startup, serve_static and `extend NAME`" % (location, key))
        overrides.append((key, _parse_json(substitute_native(raw, global_conf, location), location), location, raw))

    for name, value, location, raw in overrides:
        setattr(module, name, value)
        _set_origin(outcome, name, location, raw)

    debug_raw, debug_location = _wsgate_option("debug", sources, global_conf, local_conf)
    if debug_location:
        if any(name == "DEBUG" for name, _, _, _ in overrides):
            outcome.warn("%s is ignored: `debug` (%s) sets DEBUG" % (sources.local("DEBUG"), debug_location))
        value = debug_raw if isinstance(debug_raw, bool) else asbool(debug_raw, debug_location)
        module.DEBUG = value
        _set_origin(outcome, "DEBUG", debug_location, str(debug_raw))
    static_raw, static_location = _wsgate_option("serve_static", sources, global_conf, local_conf)
    if static_location:
        outcome.serve_static = asbool(static_raw, static_location)

    if extends:
        from django.conf import global_settings
    for name, raw, location in extends:
        addition = _parse_json(substitute_native(raw, global_conf, location), location)
        if not isinstance(addition, list):
            raise DjangoConfigError("%s: `extend %s` needs a JSON list, got %s" % (location, name, json.dumps(addition)))
        if hasattr(module, name):
            base = getattr(module, name)
        elif hasattr(global_settings, name):
            base = getattr(global_settings, name)
            outcome.origins[name] = "django default"
        else:
            raise DjangoConfigError(
                "%s: `extend %s`: neither %s nor Django's defaults define %s; set it with `%s = [...]`"
                % (location, name, module.__name__, name, name))
        if isinstance(base, list):
            setattr(module, name, base + addition)
        elif isinstance(base, tuple):
            setattr(module, name, base + tuple(addition))
        else:
            raise DjangoConfigError(
                "%s: `extend %s`: %s is a %s, not a list or tuple" % (location, name, name, _type_name(base)))
        _extended_origin(outcome, name, location, raw)

    module.paste_configuration_file = global_conf.get("__file__")
    return outcome


# ------------------------------------------------------------ bookkeeping


def _set_origin(outcome, name, location, raw):
    if location is None:
        return
    outcome.origins[name] = location
    outcome.locations[name] = location
    outcome.raw_values[name] = raw


def _extended_origin(outcome, name, location, raw):
    before = outcome.origins.get(name, _module_origin(outcome.module))
    outcome.origins[name] = "%s + %s (extend)" % (before, location)
    outcome.locations[name] = location
    outcome.raw_values[name] = raw


def _kept(outcome, name, location, existing):
    if location is None:
        outcome.warn("%r will not be overridden in %s" % (name, outcome.module_name))
        return
    outcome.warn(
        "%s is ignored: %s already defines %s = %s, and use = %s keeps the module's value "
        "(set it in the INI file only, or switch to use = egg:wsgate#django, where the INI file wins)"
        % (location, outcome.module_name, name, _short_repr(existing), MODE_NAMES[outcome.mode]))


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


CONFIGURE = {NATIVE: configure_native, TWOD: configure_twod, DPDS: configure_dpds}


def configure(mode, global_conf, local_conf, node=None):
    """Apply one application section to its settings module; see the
    module's docstring for the three modes."""
    return CONFIGURE[mode](global_conf, local_conf, node)


def blame(outcome, exc):
    """The INI location most likely responsible for ``exc`` raised while
    Django loads the settings or the applications, or the settings module."""
    message = str(exc)
    for name, location in outcome.locations.items():
        if re.search(r"\b%s\b" % re.escape(name), message):
            return location
    missing = getattr(exc, "name", None)
    if missing:
        for name, raw in outcome.raw_values.items():
            if raw and missing in raw:
                return outcome.locations[name]
    module_file = getattr(outcome.module, "__file__", None)
    return module_file or "settings module %s" % outcome.module_name

