package main

// runTest runs Django's test runner with the settings a configuration
// gives: wsgate test [options] CONFIG_URI [labels… and test options]
func runTest(args []string) int {
	return runDjangoCommand(djangoCommand{
		name:    "test",
		module:  "wsgate.django.test",
		argsFor: "[TEST_LABEL…] [Django test options]",
		about: "Runs Django's test runner (the `test` command: --keepdb, --parallel, -k … work) with the settings\n" +
			"CONFIG_URI gives, after the application's start-up hooks; exits 0 when every test passed, 1 otherwise.",
	}, args)
}
