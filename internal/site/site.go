// Package site loads a site the one way every command reads it (`serve`,
// `check`, `manage`, `test` and `serve --reload`): the application tree of
// CONFIG_URI, its server section, and the three settings that decide how
// Python finds the application — the interpreter, the Python path and the
// working directory — each from the command line, else the server section.
//
// Paths, one meaning for every command (docs/serve.md, "Paths"):
//   - CONFIG_URI is read relative to the directory wsgate was started in.
//   - --chdir (`chdir =` in the server section) is the directory the Python
//     processes run in — the workers, and the processes of check, manage
//     and test — and it is on their sys.path; a relative one is taken from
//     the directory wsgate was started in.
//   - --pythonpath (`pythonpath =`) directories go on sys.path after
//     wsgate's runtime; a relative one is taken from the --chdir directory,
//     where the Python processes run.
package site

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/settings"
	"github.com/wsgate/wsgate/python"
)

// Options are what the command line says; "" and nil mean "not given".
type Options struct {
	URI        string
	Overrides  map[string]string // --set key=value
	Python     string            // --python
	PythonPath []string          // --pythonpath (given: the section's is not read)
	Chdir      string            // --chdir
	LogConfig  string            // --log-config
}

// Site is a loaded, resolved configuration.
type Site struct {
	URI string
	// App is the application tree, every factory resolved.
	App *config.Node
	// Server is the server section ([server:NAME] of the URI's name, else
	// [server:main]); nil when the file has neither.
	Server *config.Node
	// Python is the interpreter: --python, else $WSGATE_PYTHON, else the
	// section's `python`, else python3; an absolute path.
	Python string
	// PythonPath is --pythonpath, else the section's `pythonpath`.
	PythonPath []string
	// Chdir is the Python processes' directory, absolute; "" when neither
	// --chdir nor the section's `chdir` gives one (the current directory).
	Chdir string
	// LogConfig is the file whose [loggers], [handlers] and [formatters]
	// configure Python logging in the Python processes, absolute:
	// --log-config, else the section's log_config (gunicorn's logconfig),
	// else CONFIG_URI's file when it has a [loggers] section, as pserve
	// does; "" for none.
	LogConfig string
	overrides map[string]string
}

// EnvLogConfig names the variable that tells the Python runtime which
// file to hand logging.config.fileConfig (python/wsgate/loader.py).
const EnvLogConfig = "WSGATE_LOG_CONFIG"

// Load reads CONFIG_URI's server section and application and resolves the
// application's factories in the chosen interpreter, from the Python path
// the workers will have.
func Load(o Options) (*Site, error) {
	if _, _, err := config.ParseURI(o.URI); err != nil {
		return nil, err
	}
	opts := config.Options{Overrides: o.Overrides}
	server, err := serverFor(o.URI, opts)
	if err != nil {
		return nil, err
	}
	s := &Site{URI: o.URI, Server: server, PythonPath: o.PythonPath, Chdir: o.Chdir, overrides: o.Overrides}
	fromConfig := func(key string) (string, string) {
		if server == nil {
			return "", ""
		}
		v, _ := server.LocalConf.Get(key)
		return strings.TrimSpace(v), server.LocalConf.Origin(key)
	}
	pyConf, pyOrigin := fromConfig("python")
	s.Python = python.Interpreter(o.Python, pyConf)
	if s.PythonPath == nil {
		if v, _ := fromConfig("pythonpath"); v != "" {
			s.PythonPath = settings.SplitList(v)
		}
	}
	chdirOrigin := "--chdir"
	if s.Chdir == "" {
		s.Chdir, chdirOrigin = fromConfig("chdir")
	}
	if s.Chdir != "" {
		abs, err := filepath.Abs(s.Chdir)
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(abs); err == nil && !fi.IsDir() {
				err = fmt.Errorf("not a directory")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: chdir %s: %v", where(chdirOrigin, "chdir"), s.Chdir, err)
		}
		s.Chdir = abs
	}
	if s.LogConfig, err = logConfig(o, fromConfig); err != nil {
		return nil, err
	}
	interp, err := exec.LookPath(s.Python)
	if err == nil {
		interp, err = filepath.Abs(interp)
	}
	if err != nil {
		from := "the default"
		switch {
		case o.Python != "":
			from = "--python"
		case os.Getenv(python.EnvInterpreter) != "":
			from = "$" + python.EnvInterpreter
		case pyConf != "":
			from = where(pyOrigin, "python")
		}
		return nil, fmt.Errorf("cannot run the Python interpreter %q (%s): %v; choose one with --python, %s or `python =` in the server section",
			s.Python, from, err, python.EnvInterpreter)
	}
	s.Python = interp
	if s.App, err = s.LoadApp(); err != nil {
		return nil, err
	}
	return s, nil
}

func where(origin, key string) string {
	if origin == "" {
		return "[server] " + key
	}
	return origin
}

// LoadApp loads and resolves the application tree again (`--reload`
// after an INI file changed): same interpreter, path and overrides.
func (s *Site) LoadApp() (*config.Node, error) {
	app, err := config.LoadApp(s.URI, config.Options{Overrides: s.overrides})
	if err != nil {
		return nil, err
	}
	if err := config.Resolve(app, s.Python, s.ResolvePath()); err != nil {
		return nil, err
	}
	return app, nil
}

// ResolvePath is the Python path the application is found on, as the
// workers have it: the --pythonpath directories (relative ones from the
// Python processes' directory) and that directory itself.
func (s *Site) ResolvePath() []string {
	dir := s.Chdir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	var out []string
	for _, p := range s.PythonPath {
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		out = append(out, p)
	}
	if dir != "" {
		out = append(out, dir)
	}
	return out
}

// Command prepares `python -m module args…` as the site's Python
// processes run: in Chdir, with ResolvePath on sys.path.
func (s *Site) Command(module string, args ...string) (*exec.Cmd, error) {
	return s.CommandIn(s.Python, module, args...)
}

// CommandIn is Command run by another interpreter (an application's
// wsgate.python).
func (s *Site) CommandIn(interpreter, module string, args ...string) (*exec.Cmd, error) {
	cmd, err := python.Command(interpreter, s.ResolvePath(), module, args...)
	if err != nil {
		return nil, err
	}
	cmd.Dir = s.Chdir
	cmd.Env = append(cmd.Env, s.Env()...)
	return cmd, nil
}

// logConfig picks the logging file (Site.LogConfig). A file given must
// exist and have [loggers]; the configuration's own is used only when it
// has them.
func logConfig(o Options, fromConfig func(string) (string, string)) (string, error) {
	path, from := o.LogConfig, "--log-config"
	if path == "" {
		for _, key := range []string{"log_config", "logconfig"} {
			if v, origin := fromConfig(key); v != "" {
				path, from = v, where(origin, key)
				break
			}
		}
	}
	if path == "" {
		file, _, _ := config.ParseURI(o.URI)
		if ok, _ := hasSection(file, "loggers"); !ok {
			return "", nil
		}
		path = file
	} else if ok, err := hasSection(path, "loggers"); err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	} else if !ok {
		return "", fmt.Errorf("%s: %s has no [loggers] section (logging.config.fileConfig needs [loggers], [handlers] and [formatters])", from, path)
	}
	return filepath.Abs(path)
}

// hasSection reports whether the INI file at path has [name].
func hasSection(path, name string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "["+name+"]" {
			return true, nil
		}
	}
	return false, nil
}

// Env is what the site's Python processes get in their environment on top
// of wsgate's own.
func (s *Site) Env() []string {
	if s.LogConfig == "" {
		return nil
	}
	return []string{EnvLogConfig + "=" + s.LogConfig}
}

// serverFor finds the server section for uri: [server:NAME] of the URI's
// name, else [server:main]; nil when the file has neither.
// ServerSection is CONFIG_URI's server section as Load finds it, without
// loading the application (nil when the file has none): for commands that
// talk to a running server, such as `wsgate status`.
func ServerSection(uri string, overrides map[string]string) (*config.Node, error) {
	return serverFor(uri, config.Options{Overrides: overrides})
}

func serverFor(uri string, opts config.Options) (*config.Node, error) {
	path, name, err := config.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	s, err := config.LoadServerSettings(uri, opts)
	if err != nil || s != nil || name == "main" {
		return s, err
	}
	return config.LoadServerSettings(path+"#main", opts)
}
