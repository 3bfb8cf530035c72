package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/wsgate/wsgate/internal/reload"
	"github.com/wsgate/wsgate/internal/site"
	"github.com/wsgate/wsgate/internal/watch"
)

// newReloader turns serve's options into an internal/reload Reloader. st is
// nil with --app.
func newReloader(st *site.Site, o serveOptions, log *slog.Logger) (*reload.Reloader, error) {
	interval, err := reloadInterval()
	if err != nil {
		return nil, err
	}
	opts := reload.Options{WorkDir: o.Chdir, PythonPath: o.PythonPath, Suffixes: o.ReloadSuffixes, Interval: interval, Log: log}
	if st != nil {
		opts.App, opts.LoadApp = st.App, st.LoadApp
	}
	return reload.New(opts)
}

// reloadInterval is the time between two polls: WSGATE_RELOAD_INTERVAL (a
// Go duration, "250ms"), else watch.DefaultInterval.
func reloadInterval() (time.Duration, error) {
	v := os.Getenv("WSGATE_RELOAD_INTERVAL")
	if v == "" {
		return watch.DefaultInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("WSGATE_RELOAD_INTERVAL=%q: want a duration such as 250ms or 2s", v)
	}
	return d, nil
}
