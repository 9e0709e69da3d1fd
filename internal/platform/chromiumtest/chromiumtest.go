// Package chromiumtest starts the headless Chromium that the browser tests
// drive with chromedp, with the flags this project's machines need, and
// decides in one place whether a test without Chromium skips or fails.
package chromiumtest

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// PathEnv names the variable that points at the Chromium binary.
const PathEnv = "REALGUARDIO_TEST_CHROMIUM"

// Path returns the Chromium to drive ($REALGUARDIO_TEST_CHROMIUM, else
// /usr/bin/chromium), or skips the test when there is none; under CI=true,
// where nothing may skip, it fails it instead.
func Path(t testing.TB) string {
	t.Helper()
	p := os.Getenv(PathEnv)
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium not found at %s (set %s); under CI=true browser tests may not skip", p, PathEnv)
		}
		t.Skipf("browser test skipped: Chromium not found at %s (set %s or install chromium)", p, PathEnv)
	}
	return p
}

// Start launches a headless Chromium with a fresh profile, 1280×900, and
// returns its context, closed when the test ends. The flags keep it off
// the network: the machines reach nothing but package registries, and
// Chromium's background services would otherwise keep retrying.
func Start(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}
