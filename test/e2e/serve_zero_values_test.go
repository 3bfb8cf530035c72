package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// Zero means what gunicorn users expect or is refused, never silently
// replaced (docs/serve.md, "Options"): --timeout 0 is no timeout,
// --queue-size 0 no queue.
func TestServeZeroTimeoutIsNone(t *testing.T) {
	s := gwStart(t, "--workers", "1", "--timeout", "0")
	if line := s.WaitLog(`msg="pool settings"`); !strings.Contains(line, "timeout=none") {
		t.Errorf("settings line %q: want timeout=none", line)
	}
	// A request with no deadline is served (a deadline of "0 seconds from
	// now" would have cut it).
	_, done := s.gwBlock(t, "untimed")
	s.gwRelease(t, "untimed")
	gwOK(t, "blocked request under --timeout 0", <-done)
}

func TestServeZeroQueueAnswers503AtOnce(t *testing.T) {
	s := gwStart(t, "--workers", "1", "--pipeline", "1", "--queue-size", "0")
	if line := s.WaitLog(`msg="pool settings"`); !strings.Contains(line, "queue_size=none") {
		t.Errorf("settings line %q: want queue_size=none", line)
	}
	_, done := s.gwBlock(t, "busy")
	// The only worker is busy and nothing may wait: 503 now, not after a wait
	// in a queue of 1024.
	_, _, early := s.gwTryBlock(t, "second")
	if early == nil || early.status != 503 || early.header.Get("Retry-After") == "" {
		t.Fatalf("second request while the only worker is busy: %+v, want an immediate 503 with Retry-After", early)
	}
	s.gwRelease(t, "busy")
	gwOK(t, "first request", <-done)
}

// Values that mean nothing are refused, on the command line (status 2,
// naming the flag) as in the server section (status 1, naming file:line).
func TestServeRefusesMeaninglessNumbers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "-1"}, "flag -timeout: -1 is not a number of seconds ≥ 0"},
		{[]string{"--graceful-timeout", "0"}, "flag -graceful-timeout: 0 must be more than 0 seconds"},
		{[]string{"--queue-size", "-5"}, "flag -queue-size: -5 is not a whole number ≥ 0"},
		{[]string{"--workers", "0"}, "flag -workers: 0 is not a whole number ≥ 1"},
		{[]string{"--threads", "-2"}, "flag -threads: -2 is not a whole number ≥ 1"},
	} {
		r := harness.Run(t, harness.Options{Args: append([]string{"--app", "pep3333:app", "--pythonpath", gwAppsDir()}, tc.args...)})
		if r.ExitCode != 2 || !strings.Contains(r.Output, tc.want) {
			t.Errorf("%q: exit %d, output %q; want status 2 and %q", tc.args, r.ExitCode, r.Output, tc.want)
		}
	}
	dir := t.TempDir()
	ini := "[app:main]\nuse = call:pep3333:make_app\n\n[server:main]\nworkers = 1\ngraceful_timeout = 0\n"
	if err := os.WriteFile(filepath.Join(dir, "site.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	r := harness.Run(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", gwAppsDir()}})
	if want := "site.ini:6 [server:main] graceful_timeout: 0 must be more than 0 seconds"; r.ExitCode != 1 || !strings.Contains(r.Output, want) {
		t.Errorf("graceful_timeout = 0 in the file: exit %d, output %q; want status 1 and %q", r.ExitCode, r.Output, want)
	}
}
