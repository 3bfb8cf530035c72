"""Where each option of a Django application's configuration comes from.

Error messages and ``wsgate check`` name options as ``file:line [section]
option``. The worker-form node carries ``local_conf_sources`` and
``global_conf_sources`` (``{"NAME": "file:line [section] NAME"}``); when it does not,
or when a factory is called without a node (PasteDeploy itself, tests), the INI
files are scanned here: the application's section first, then the sections its
``use =`` chain names, then the DEFAULT sections of those files.
"""

import os
import re

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]")
_OPTION = re.compile(r"^(?P<key>[^\s#;=:][^=:]*?)\s*[=:]")
_APP_PREFIXES = ("app", "application", "composite", "composit", "pipeline", "filter-app")


class _IniIndex:
    """The sections of one INI file, each mapping its keys to line numbers."""

    def __init__(self, path):
        self.path = path
        self.sections = {}  # name -> {key: line}
        self.section_lines = {}
        self.values = {}  # (section, key) -> first line of the value
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return
        current = None
        for number, line in enumerate(lines, 1):
            m = _SECTION.match(line)
            if m:
                current = m.group("name").strip()
                self.sections.setdefault(current, {})
                self.section_lines.setdefault(current, number)
                continue
            if current is None or not line or line[0] in " \t#;":
                continue
            m = _OPTION.match(line)
            if m:
                key = m.group("key").strip()
                self.sections[current][key] = number
                self.values[(current, key)] = line[m.end():].strip()

    def find_section(self, name):
        """The section PasteDeploy would use for application ``name``."""
        for section in self.sections:
            if ":" not in section:
                continue
            prefix, _, sname = section.partition(":")
            if prefix.strip() in _APP_PREFIXES and sname.strip() == name:
                return section
        return None


_cache = {}


def _index(path):
    path = os.path.abspath(path)
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError:
        key = (path, None)
    if key not in _cache:
        _cache[key] = _IniIndex(path)
    return _cache[key]


_SOURCE = re.compile(r"^(?P<path>.*?):(?P<line>\d+) \[(?P<section>[^\]]*)\]$")


def _with_option(source, name):
    """A node's source for an option, with the option's name at the end
    (config writes ``file:line [section] option``, or ``--set key``)."""
    return source if not source.endswith("]") else "%s %s" % (source, name)


def _fmt(path, line, section):
    return "%s:%d [%s]" % (path, line, section)


class Sources:
    """Names the place each option of one application node comes from."""

    def __init__(self, global_conf, node=None):
        node = node or {}
        self.node_source = node.get("source")
        self.local_sources = dict(node.get("local_conf_sources") or {})
        self.global_sources = dict(node.get("global_conf_sources") or {})
        self.chain = []  # [(path, section)], outermost first
        start = None
        if self.node_source:
            m = _SOURCE.match(self.node_source)
            if m:
                start = (m.group("path"), m.group("section"))
        if start is None and global_conf.get("__file__"):
            path = global_conf["__file__"]
            section = _index(path).find_section("main")
            start = (path, section)
        if start:
            self._walk(start)

    def _walk(self, start):
        seen = set()
        path, section = start
        while path and (path, section) not in seen:
            seen.add((path, section))
            self.chain.append((path, section))
            if section is None:
                return
            index = _index(path)
            use = index.values.get((section, "use"))
            if not use:
                return
            if use.startswith("config:"):
                target = use[len("config:"):]
                target, _, name = target.partition("#")
                target = os.path.join(os.path.dirname(path), target.strip())
                path = target
                section = _index(path).find_section(name.strip() or "main")
            elif ":" not in use and "#" not in use:
                section = index.find_section(use.strip())
            else:
                return

    @property
    def section(self):
        """``file:line [section]`` of the application, or None."""
        if self.node_source:
            return self.node_source
        if self.chain and self.chain[0][1]:
            path, section = self.chain[0]
            line = _index(path).section_lines.get(section, 0)
            return _fmt(path, line, section)
        return None

    def local(self, name):
        """``file:line [section] name`` for a local_conf option."""
        if name in self.local_sources:
            return _with_option(self.local_sources[name], name)
        found = self._in_chain(name)
        if found:
            return found
        if self.section:
            return "%s %s" % (self.section, name)
        return name

    def _in_chain(self, option):
        """``file:line [section] option`` of the first section of the chain
        that sets option, or None."""
        for path, section in self.chain:
            if section is None:
                continue
            line = _index(path).sections.get(section, {}).get(option)
            if line:
                return "%s %s" % (_fmt(path, line, section), option)
        return None

    def global_(self, name):
        """``file:line [section] name`` for a global_conf (DEFAULT) option."""
        if name in self.global_sources:
            return _with_option(self.global_sources[name], name)
        found = self._in_chain("set " + name)
        if found:
            return found
        for path, _ in self.chain:
            line = _index(path).sections.get("DEFAULT", {}).get(name)
            if line:
                return "%s %s" % (_fmt(path, line, "DEFAULT"), name)
        if self.chain:
            return "%s [DEFAULT] %s" % (self.chain[0][0], name)
        return "[DEFAULT] %s" % name
