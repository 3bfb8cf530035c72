package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// The demo's admin, logged into by a real browser: headless Chromium driven
// through the DevTools protocol types the credentials into the login form and
// presses Enter, as a person would.
func demoBrowserAdminLogin(t *testing.T, tmpl *demoTemplate) {
	browser := demoStartChromium(t)
	site := tmpl.start(t)
	page := browser.newPage(t)

	page.navigate(t, site.URL+"/admin/login/?next=/admin/")
	page.typeInto(t, "#id_username", site.AdminUser)
	page.typeInto(t, "#id_password", "not-"+site.AdminPassword)
	page.pressEnterAndWaitForLoad(t)
	if path := page.evalString(t, "location.pathname"); path != "/admin/login/" {
		t.Fatalf("a wrong password left the login page for %q", path)
	}
	if note := page.evalString(t, `(document.querySelector(".errornote") || {textContent: ""}).textContent`); !strings.Contains(note, "correct username and password") {
		t.Fatalf("a wrong password gave no error note; page says %q", note)
	}

	page.typeInto(t, "#id_username", site.AdminUser)
	page.typeInto(t, "#id_password", site.AdminPassword)
	page.pressEnterAndWaitForLoad(t)
	if path := page.evalString(t, "location.pathname"); path != "/admin/" {
		t.Fatalf("after logging in the browser is at %q, want /admin/\n%s", path, page.evalString(t, "document.body.innerText"))
	}
	if who := page.evalString(t, `(document.querySelector("#user-tools strong") || {textContent: ""}).textContent`); who != site.AdminUser {
		t.Fatalf("the admin index greets %q, want %q", who, site.AdminUser)
	}
	// The same session is the Trac user: single sign-on seen by a browser.
	page.navigate(t, site.URL+"/trac/")
	if who := page.evalString(t, `(document.querySelector("#metanav .trac-author-user") || {textContent: ""}).textContent`); who != site.AdminUser {
		t.Fatalf("Trac shows the browser's user as %q, want %q", who, site.AdminUser)
	}
}

// demoChromium is a headless Chromium with its DevTools endpoint connected.
type demoChromium struct {
	cdp *demoCDP
}

// demoPage is one browser tab, attached with a flat CDP session.
type demoPage struct {
	cdp     *demoCDP
	session string
}

const demoChromiumPath = "/usr/bin/chromium"

func demoStartChromium(t *testing.T) *demoChromium {
	t.Helper()
	if _, err := os.Stat(demoChromiumPath); err != nil {
		testutil.Skip(t, "%s missing: run ./scripts/system-deps.sh chromium (make test does)", demoChromiumPath)
	}
	cmd := exec.Command(demoChromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--remote-debugging-port=0", "--user-data-dir="+t.TempDir(), "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers die with it
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(harness.Deadline):
			t.Errorf("chromium (pid %d) still running after SIGKILL to its group", cmd.Process.Pid)
		}
	})

	// Chromium announces its DevTools endpoint on stderr; keep draining the
	// rest so it never blocks on a full pipe, and keep it for failure reports.
	var logMu sync.Mutex
	var log strings.Builder
	endpoint := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			fmt.Fprintln(&log, line)
			logMu.Unlock()
			if rest, ok := strings.CutPrefix(line, "DevTools listening on "); ok {
				select {
				case endpoint <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		cmd.Wait()
	}()
	var wsURL string
	select {
	case wsURL = <-endpoint:
	case <-exited:
		t.Fatalf("chromium exited before announcing its DevTools endpoint:\n%s", log.String())
	case <-time.After(harness.Deadline):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("chromium announced no DevTools endpoint within %s:\n%s", harness.Deadline, log.String())
	}
	cdp, err := demoConnectCDP(wsURL, harness.Deadline)
	if err != nil {
		t.Fatalf("connecting to chromium's DevTools: %v", err)
	}
	t.Cleanup(func() { cdp.Close() })
	return &demoChromium{cdp: cdp}
}

func (b *demoChromium) newPage(t *testing.T) *demoPage {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.cdp.Call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.cdp.Call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	p := &demoPage{cdp: b.cdp, session: attached.SessionID}
	if err := p.cdp.Call(p.session, "Page.enable", nil, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *demoPage) navigate(t *testing.T, url string) {
	t.Helper()
	loaded := p.cdp.Expect(p.session, "Page.loadEventFired")
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.cdp.Call(p.session, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		t.Fatal(err)
	}
	if nav.ErrorText != "" {
		t.Fatalf("navigating to %s: %s", url, nav.ErrorText)
	}
	if _, err := p.cdp.Wait(loaded); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
}

func (p *demoPage) evalString(t *testing.T, expression string) string {
	t.Helper()
	var s string
	if err := p.cdp.Evaluate(p.session, expression, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// typeInto empties a form field, focuses it and types text one key at a time.
func (p *demoPage) typeInto(t *testing.T, selector, text string) {
	t.Helper()
	var found bool
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.value = ""; e.focus(); return document.activeElement === e; })()`, selector)
	if err := p.cdp.Evaluate(p.session, js, &found); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("no focusable %s on %s", selector, p.evalString(t, "location.href"))
	}
	for _, r := range text {
		for _, typ := range []string{"keyDown", "keyUp"} {
			ev := map[string]any{"type": typ, "key": string(r)}
			if typ == "keyDown" {
				ev["text"] = string(r)
			}
			if err := p.cdp.Call(p.session, "Input.dispatchKeyEvent", ev, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := p.evalString(t, fmt.Sprintf(`document.querySelector(%q).value`, selector)); got != text {
		t.Fatalf("typed %q into %s, the field holds %q", text, selector, got)
	}
}

// pressEnterAndWaitForLoad presses Enter in the focused field, which submits
// its form, and waits for the page the submission leads to.
func (p *demoPage) pressEnterAndWaitForLoad(t *testing.T) {
	t.Helper()
	loaded := p.cdp.Expect(p.session, "Page.loadEventFired")
	enter := map[string]any{"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
	down := map[string]any{"type": "keyDown", "text": "\r"}
	up := map[string]any{"type": "keyUp"}
	for _, ev := range []map[string]any{down, up} {
		for k, v := range enter {
			ev[k] = v
		}
		if err := p.cdp.Call(p.session, "Input.dispatchKeyEvent", ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.cdp.Wait(loaded); err != nil {
		t.Fatalf("after pressing Enter: %v", err)
	}
}
