// Package config reads PasteDeploy configuration files exactly as Python's
// PasteDeploy 3 does (configparser rules, then loadwsgi's resolution) and
// returns the composed tree of nodes that wsgate serves.
//
// Entry points:
//
//   - ParseURI splits a CONFIG_URI ("file.ini", "file.ini#name",
//     "config:file.ini#name"; the name defaults to "main").
//   - LoadApp / LoadFilter / LoadServer build the *Node tree of the section a
//     URI names, as paste.deploy.loadwsgi.loadcontext would: section kinds,
//     `use` (config:, egg:, call:, another section), paste.*_factory keys,
//     set/get, filter-with, filter-app's next, pipelines, global_conf
//     inheritance across files (the including file wins), Options.Overrides
//     (--set). Cycles are reported, not followed.
//   - Resolve fills Factory ("module:qualname") on every node by running
//     `python -m wsgate.resolve` once per level of composites (egg entry
//     points through importlib.metadata, call: and module:object through
//     importlib), and loads what composites name (Node.Loadable);
//     ResolveEach does the same for several trees in one interpreter run.
//     RegisterNative lets a Go component claim a `use` name ("go:NAME");
//     internal/component.Register calls it for every registered component.
//   - Node.ContractJSON is what `wsgate check --json` prints (the contract
//     form of docs/architecture.md, "The node tree"); Node.WorkerJSON is
//     what Python workers receive (the worker form there;
//     wsgate.loader.load builds the application from it).
//
// Conf is the ordered dict PasteDeploy's global_conf and local_conf are;
// Conf.Origin tells where each value was written.
//
// Every mistake is an *Error whose Error() is one line:
// "path/file.ini:LINE [section] option: what is wrong (and what would be
// right)". The user's manual for the format is docs/config.md.
package config
