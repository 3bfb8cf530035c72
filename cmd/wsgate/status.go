package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/control"
	"github.com/wsgate/wsgate/internal/gateway"
	"github.com/wsgate/wsgate/internal/site"
)

// controlOff is the --control-socket value that opens none.
const controlOff = "off"

// controlPath is the control socket of the site `serve` runs (or `status`
// and `dump` ask): the option's value, else control.DefaultPath of the
// site's identity; "" when it is off.
func controlPath(option, uri, app string) (string, error) {
	switch option {
	case controlOff:
		return "", nil
	case "":
	default:
		return filepath.Abs(option)
	}
	if uri != "" {
		path, name, err := config.ParseURI(uri)
		if err != nil {
			return "", err
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		base := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
		return control.DefaultPath(base, abs+"#"+name), nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return control.DefaultPath("app", wd+" "+app), nil
}

// openControl opens the control socket of a running site: `status` and
// `dump` answer there. A socket another wsgate serves is left to it (the
// same site started twice): this one runs without, and says so.
func openControl(running *runningSite, path string, log *slog.Logger) func() {
	if path == "" {
		return func() {}
	}
	srv, err := control.Listen(path, map[string]control.Handler{
		"status": func(context.Context) (any, error) { return running.Status(), nil },
		"dump": func(context.Context) (any, error) {
			running.DumpStacks("wsgate dump")
			return running.Status(), nil
		},
	}, log)
	if err != nil {
		if errors.Is(err, control.ErrInUse) {
			log.Warn("no control socket for this server (wsgate status and dump will not see it): give it one with --control-socket", "error", err.Error())
		} else {
			log.Warn("cannot open the control socket", "error", err.Error())
		}
		return func() {}
	}
	log.Info("control socket", "path", srv.Path())
	return srv.Close
}

// Status is every pool and its workers (`wsgate status`).
func (s *runningSite) Status() []gateway.PoolStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]gateway.PoolStatus, 0, len(s.order))
	for _, name := range s.order {
		st := s.pools[name].Status()
		st.Name = name
		out = append(out, st)
	}
	return out
}

// controlFlags are the options `status` and `dump` share: which server to
// ask, named as `serve` was given it.
type controlFlags struct {
	socket, app string
	sets        stringList
}

func (c *controlFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "control-socket", "", "the server's control socket `PATH` (default: the one `serve` opens for CONFIG_URI or --app)")
	fs.StringVar(&c.app, "app", "", "the server runs `module:callable` (serve --app), from this directory")
	fs.Var(&c.sets, "set", "as given to serve, if the server section's control_socket uses it: `key=value`")
}

// path finds the control socket from the command line, the positional
// CONFIG_URI, and its server section's control_socket.
func (c *controlFlags) path(prog string, positional []string) (string, int) {
	if len(positional) > 1 || (len(positional) == 1) == (c.app != "") && c.socket == "" {
		fmt.Fprintf(os.Stderr, "%s: give CONFIG_URI, --app module:callable or --control-socket PATH\n", prog)
		return "", exitUsage
	}
	option := c.socket
	uri := ""
	if len(positional) == 1 {
		uri = positional[0]
		if option == "" {
			overrides, err := parseSets(c.sets)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
				return "", exitUsage
			}
			server, err := site.ServerSection(uri, overrides)
			if err != nil {
				fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
				return "", exitConfig
			}
			if server != nil {
				if v, ok := server.LocalConf.Get("control_socket"); ok {
					option = strings.TrimSpace(v)
				}
			}
		}
	}
	if option == controlOff {
		fmt.Fprintf(os.Stderr, "%s: the server's control socket is off\n", prog)
		return "", exitConfig
	}
	path, err := controlPath(option, uri, c.app)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return "", exitConfig
	}
	return path, exitOK
}

func runStatus(args []string) int {
	var asJSON bool
	pools, code := askServer("status", "[--json] ", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	})
	if pools == nil {
		return code // an error, or -h
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(pools)
		return exitOK
	}
	printStatus(os.Stdout, pools)
	return exitOK
}

func runDump(args []string) int {
	pools, code := askServer("dump", "", args, nil)
	if pools == nil {
		return code // an error, or -h
	}
	n := 0
	for _, p := range pools {
		n += len(p.Live)
	}
	fmt.Printf("the stacks of %d workers are in the server's log (msg=\"worker stacks\")\n", n)
	return exitOK
}

// askServer is `wsgate COMMAND`: it parses the command line (more flags
// from moreFlags), finds the server's control socket and asks it COMMAND.
func askServer(command, usage string, args []string, moreFlags func(*flag.FlagSet)) ([]gateway.PoolStatus, int) {
	prog := "wsgate " + command
	var c controlFlags
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	c.add(fs)
	if moreFlags != nil {
		moreFlags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s %sCONFIG_URI | --app module:callable | --control-socket PATH\n", prog, usage)
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	path, code := c.path(prog, positional)
	if code != exitOK {
		return nil, code
	}
	pools := []gateway.PoolStatus{}
	if err := control.Ask(path, command, &pools); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return nil, exitConfig
	}
	return pools, exitOK
}

// printStatus writes the human form of `wsgate status`: a line per pool,
// then a row per worker and one more per request beyond a worker's first.
func printStatus(w io.Writer, pools []gateway.PoolStatus) {
	for i, p := range pools {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "pool %s (%s): generation %d, %d/%d workers ready, %d threads each, %d busy, %d queued, %d restarts, %d reloads\n",
			p.Name, p.App, p.Generation, p.Ready, p.Workers, p.Threads, p.Busy, p.Queued, p.Restarts, p.Reloads)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  WORKER\tPID\tSTATE\tGEN\tRSS\tSERVED\tREQUEST\tAGE")
		for _, wk := range p.Live {
			state := wk.State
			if wk.Reason != "" {
				state += " (" + wk.Reason + ")"
			}
			req, age := "-", "-"
			if len(wk.Requests) > 0 {
				req, age = requestCell(wk.Requests[0])
			}
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%d\t%s\t%d\t%s\t%s\n", wk.ID, wk.PID, state, wk.Generation, humanBytes(wk.RSS), wk.Served, req, age)
			for _, r := range wk.Requests[min(1, len(wk.Requests)):] {
				req, age := requestCell(r)
				fmt.Fprintf(tw, "  \t\t\t\t\t\t%s\t%s\n", req, age)
			}
		}
		tw.Flush()
	}
}

func requestCell(r gateway.RequestInfo) (req, age string) {
	req = r.Method + " " + r.URI
	if r.RequestID != "" {
		req += " [" + r.RequestID + "]"
	}
	return req, strconv.FormatFloat(r.AgeSec, 'f', 1, 64) + "s"
}

func humanBytes(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "G"
	default:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "M"
	}
}
