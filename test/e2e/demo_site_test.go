package e2e

import "testing"

// TestDemoSite runs the demo as `make demo` serves it, against the real
// `wsgate serve` and real clients. The first-run preparation (migrate,
// demo_setup) is done once into a template; every subtest serves a copy of
// its own, var/ included, so no subtest sees another's state. (The first run
// itself is tested by TestDemoScriptFirstAndSecondRun.)
func TestDemoSite(t *testing.T) {
	tmpl := demoNewTemplate(t)
	for _, sub := range []struct {
		name string
		run  func(*testing.T, *demoTemplate)
	}{
		{"HomePageShowsINISettings", demoHomePageShowsINISettings},
		{"AdminLoginOverHTTP", demoAdminLoginOverHTTP},
		{"HgCloneAndPush", demoHgCloneAndPush},
		{"TracSingleSignOn", demoTracSingleSignOn},
		{"GitCloneAndPush", demoGitCloneAndPush},
		{"DownloadThroughGo", demoDownloadThroughGo},
		{"BrowserAdminLogin", demoBrowserAdminLogin},
		{"ReloadsOnTemplateEdit", demoReloadsOnTemplateEdit},
	} {
		t.Run(sub.name, func(t *testing.T) { sub.run(t, tmpl) })
	}
}
